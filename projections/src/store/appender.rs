//! Single commands arriving together, written in one statement.

use std::collections::HashMap;

use sqlx::{PgPool, Row};

use super::*;

/// Appends the events of independent commands that arrive together, several
/// in one statement: a one-row command costs a round trip, an insert and a
/// commit, and most of that can be shared, as a basket shares it between
/// its lines. Each command keeps its own optimistic check: when a shared
/// insert fails (a stream that moved, say), its commands are written again
/// one by one, so each gets its own answer.
///
/// A few writers take commands from one queue; an idle writer takes a
/// command at once, so a lone command waits for nobody.
#[derive(Clone)]
pub struct Appender {
    pub(super) queue: tokio::sync::mpsc::Sender<Pending>,
}

pub(super) struct Pending {
    pub(super) streams: Vec<StreamAppend>,
    pub(super) metadata: Metadata,
    pub(super) answer: tokio::sync::oneshot::Sender<Result<Option<Position>, StoreError>>,
}

impl Appender {
    /// At most this many commands share a statement.
    const GROUP: usize = 64;

    /// Starts `writers` writers on `pool`; they stop when the last clone
    /// is dropped.
    pub fn start(pool: PgPool, writers: usize) -> Appender {
        let (queue, taken) = tokio::sync::mpsc::channel(1024);
        let taken = std::sync::Arc::new(tokio::sync::Mutex::new(taken));
        for _ in 0..writers.max(1) {
            let (pool, taken) = (pool.clone(), taken.clone());
            tokio::spawn(async move {
                loop {
                    let group = {
                        let mut taken = taken.lock().await;
                        let Some(first) = taken.recv().await else { return };
                        let mut group = vec![first];
                        while group.len() < Self::GROUP {
                            match taken.try_recv() {
                                Ok(next) => group.push(next),
                                Err(_) => break,
                            }
                        }
                        group
                    };
                    write_group(&pool, group).await;
                }
            });
        }
        Appender { queue }
    }

    /// Appends one command's streams, committed when this returns; the
    /// position of its last event. [`StoreError::Conflict`] as [`append`].
    pub async fn append(
        &self,
        streams: Vec<StreamAppend>,
        metadata: Metadata,
    ) -> Result<Option<Position>, StoreError> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let stopped = || StoreError::Corrupt("the event writer stopped".into());
        self.queue
            .send(Pending {
                streams,
                metadata,
                answer,
            })
            .await
            .map_err(|_| stopped())?;
        answered.await.map_err(|_| stopped())?
    }
}

pub(super) async fn write_group(pool: &PgPool, group: Vec<Pending>) {
    if group.len() > 1 {
        match append_together(pool, &group).await {
            Ok(positions) => {
                for (pending, position) in group.into_iter().zip(positions) {
                    let _ = pending.answer.send(Ok(position));
                }
                return;
            }
            Err(error) => tracing::debug!(%error, commands = group.len(), "shared insert failed; one by one"),
        }
    }
    for pending in group {
        let written = async {
            let mut conn = pool.acquire().await?;
            append(&mut conn, &pending.streams, &pending.metadata).await
        }
        .await;
        let _ = pending.answer.send(written);
    }
}

/// One statement for every command of `group`, each row with its own
/// command's metadata; each command's last position, in order.
pub(super) async fn append_together(
    pool: &PgPool,
    group: &[Pending],
) -> Result<Vec<Option<Position>>, StoreError> {
    let mut conn = pool.acquire().await?;
    let commands: Vec<(&[StreamAppend], &Metadata)> = group
        .iter()
        .map(|pending| (pending.streams.as_slice(), &pending.metadata))
        .collect();
    append_many(&mut conn, &commands).await
}

/// Appends the streams of several commands, each with its own metadata
/// and its own optimistic checks, in one statement through `conn` (the
/// caller's transaction, say); each command's last position, in order.
/// One stream that moved fails them all ([`StoreError::Conflict`]).
pub async fn append_many(
    conn: &mut sqlx::PgConnection,
    commands: &[(&[StreamAppend], &Metadata)],
) -> Result<Vec<Option<Position>>, StoreError> {
    let mut all: Option<Rows> = None;
    let mut metadata: Vec<String> = Vec::new();
    let mut owner: HashMap<(String, String, i64), usize> = HashMap::new();
    for (n, (streams, command_metadata)) in commands.iter().enumerate() {
        let rows = Rows::prepare(&mut *conn, streams, command_metadata).await?;
        for i in 0..rows.types.len() {
            metadata.push(rows.metadata.clone());
            owner.insert((rows.types[i].clone(), rows.ids[i].clone(), rows.sequences[i]), n);
        }
        match all.as_mut() {
            None => all = Some(rows),
            Some(all) => all.absorb(rows),
        }
    }
    let mut positions = vec![None; commands.len()];
    let Some(all) = all else { return Ok(positions) };
    let written = all
        .bind_columns(sqlx::query(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
             SELECT t, i, s, e, v, p::json, m::json
             FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[], $7::text[])
                  AS u(t, i, s, e, v, p, m)
             RETURNING aggregate_type, aggregate_id, sequence,
                       transaction_id::text::bigint AS transaction_id, global_position",
        ))
        .bind(&metadata)
        .fetch_all(&mut *conn)
        .await
        .map_err(conflict_or_database)?;
    for row in &written {
        let key: (String, String, i64) = (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
        let position = Position {
            transaction_id: row.try_get("transaction_id")?,
            global_position: row.try_get("global_position")?,
        };
        let n = *owner
            .get(&key)
            .ok_or_else(|| StoreError::Corrupt("a written event matches no command".into()))?;
        positions[n] = positions[n].max(Some(position));
    }
    Ok(positions)
}
