//! Loading aggregates: one stream, several at once, a stream's version,
//! position and history, and whether an id is claimed.

use std::collections::HashMap;

use cqrs_es::persist::PersistedEventRepository;
use cqrs_es::{Aggregate, EventEnvelope};
use espace_famille_domain::family::Family;
use espace_famille_domain::upcast;
use postgres_es::PostgresEventRepository;
use serde_json::Value;
use sqlx::{PgConnection, PgPool, Row};
use uuid::Uuid;

use super::*;
use crate::personal::{self, FamilyKey};

/// An aggregate as its events built it, with the sequence of its last event
/// (0 for a stream that does not exist yet).
#[derive(Debug, Clone)]
pub struct Loaded<A> {
    pub aggregate: A,
    pub version: usize,
}

/// A stored event as a stream's fold reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub sequence: i64,
    /// Its `event_version`: an older one is upcast as it is decoded.
    pub version: String,
    /// As JSON text.
    pub payload: String,
}

impl<A: Aggregate> Loaded<A> {
    /// A stream without events.
    pub fn new() -> Self {
        Loaded {
            aggregate: A::default(),
            version: 0,
        }
    }

    /// Applies the events that follow this state in stream `aggregate_id`,
    /// in order, opening sealed personal values with `key` (none: they
    /// read as erased). A gap in the sequences is refused: the state would
    /// silently miss an event.
    pub fn apply_stored(
        &mut self,
        aggregate_id: &str,
        events: impl IntoIterator<Item = StoredEvent>,
        key: Option<&FamilyKey>,
    ) -> Result<(), StoreError> {
        for event in events {
            if event.sequence as usize != self.version + 1 {
                return Err(StoreError::Corrupt(format!(
                    "{} {aggregate_id}: event #{} follows #{}",
                    A::TYPE,
                    event.sequence,
                    self.version
                )));
            }
            self.aggregate
                .apply(decode_stored::<A>(aggregate_id, &event, key)?);
            self.version = event.sequence as usize;
        }
        Ok(())
    }
}

impl<A: Aggregate> Default for Loaded<A> {
    fn default() -> Self {
        Loaded::new()
    }
}

/// A stored event as the aggregate's event: sealed personal values opened
/// with `key` first, then brought up to the event's current version.
pub(super) fn decode_stored<A: Aggregate>(
    aggregate_id: &str,
    event: &StoredEvent,
    key: Option<&FamilyKey>,
) -> Result<A::Event, StoreError> {
    let sequence = event.sequence;
    let corrupt =
        |e: serde_json::Error| StoreError::Corrupt(format!("{} {aggregate_id} #{sequence}: {e}", A::TYPE));
    // Only a payload with a "sealed" entry needs opening, and only one of
    // an older version upcasting: the rest is decoded straight from its
    // text.
    let opened;
    let mut payload = event.payload.as_str();
    if payload.contains("\"sealed\"") {
        let mut value: Value = serde_json::from_str(payload).map_err(corrupt)?;
        personal::open(&mut value, key)?;
        opened = value.to_string();
        payload = &opened;
    }
    match upcast::upcast_untyped(A::TYPE, &event.version, payload)
        .map_err(upcast_failed(aggregate_id, sequence))?
    {
        None => serde_json::from_str(payload).map_err(corrupt),
        Some((_, current)) => serde_json::from_str(&current).map_err(corrupt),
    }
}

/// An event no upcaster could bring to its current version: the store
/// holds what the code cannot read.
pub(super) fn upcast_failed(
    aggregate_id: &str,
    sequence: i64,
) -> impl Fn(upcast::UpcastError) -> StoreError + '_ {
    move |e| StoreError::Corrupt(format!("{aggregate_id} #{sequence}: {e}"))
}

/// A row's `sequence`, `event_version` and `payload` (text), from column
/// `first` on.
fn stored_at(row: &sqlx::postgres::PgRow, first: usize) -> Result<StoredEvent, StoreError> {
    Ok(StoredEvent {
        sequence: row.try_get(first)?,
        version: row.try_get(first + 1)?,
        payload: row.try_get(first + 2)?,
    })
}

/// The events of several streams of one type, each after its own
/// version, through `conn` (a caller's transaction, say): by stream, in
/// order, for [`Loaded::apply_stored`].
pub async fn events_after_each(
    conn: &mut PgConnection,
    aggregate_type: &str,
    ids: &[String],
    after: &[i64],
) -> Result<HashMap<String, Vec<StoredEvent>>, StoreError> {
    let rows = sqlx::query(
        "SELECT e.aggregate_id, e.sequence, e.event_version, e.payload::text AS payload
         FROM UNNEST($2::text[], $3::bigint[]) AS k(id, after)
         JOIN events e ON e.aggregate_type = $1 AND e.aggregate_id = k.id AND e.sequence > k.after
         ORDER BY e.aggregate_id, e.sequence",
    )
    .bind(aggregate_type)
    .bind(ids)
    .bind(after)
    .fetch_all(&mut *conn)
    .await?;
    let mut events: HashMap<String, Vec<StoredEvent>> = HashMap::new();
    for row in rows {
        events
            .entry(row.try_get(0)?)
            .or_default()
            .push(stored_at(&row, 1)?);
    }
    Ok(events)
}

/// Loads one aggregate through postgres-es's repository.
pub async fn load<A: Aggregate>(pool: &PgPool, aggregate_id: &str) -> Result<Loaded<A>, StoreError> {
    let repository = PostgresEventRepository::new(pool.clone());
    let serialized = repository
        .get_events::<A>(aggregate_id)
        .await
        .map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let mut aggregate = A::default();
    let mut version = 0;
    let mut key: Option<Option<FamilyKey>> = None;
    for mut event in serialized {
        if has_sealed(&event.payload) {
            if key.is_none() {
                let mut conn = pool.acquire().await?;
                key = Some(personal::stream_key(&mut conn, A::TYPE, aggregate_id).await?);
            }
            personal::open(&mut event.payload, key.as_ref().and_then(Option::as_ref))?;
        }
        version = event.sequence;
        event.event_version = upcast::upcast(
            A::TYPE,
            &event.event_type,
            &event.event_version,
            &mut event.payload,
        )
        .map_err(upcast_failed(aggregate_id, event.sequence as i64))?;
        let envelope = EventEnvelope::<A>::try_from(event).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        aggregate.apply(envelope.payload);
    }
    Ok(Loaded { aggregate, version })
}

/// Whether a client-chosen id (of a commune, service, unit, family or
/// child) already names something: ids are global, claimed by the event
/// that introduces them.
pub async fn id_claimed(pool: &PgPool, id: Uuid) -> Result<bool, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT EXISTS (SELECT FROM claimed_ids WHERE id = $1)")
            .bind(id)
            .fetch_one(pool)
            .await?,
    )
}

/// The sequence of a stream's last event; 0 when the stream does not exist.
pub async fn stream_version(
    pool: &PgPool,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Result<usize, StoreError> {
    let version: Option<i64> = sqlx::query_scalar(
        "SELECT max(sequence) FROM events WHERE aggregate_type = $1 AND aggregate_id = $2",
    )
    .bind(aggregate_type)
    .bind(aggregate_id)
    .fetch_one(pool)
    .await?;
    Ok(version.unwrap_or(0) as usize)
}

/// The position of the last event of a stream, once it is committed.
pub async fn stream_position(
    pool: &PgPool,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Result<Option<Position>, StoreError> {
    let row = sqlx::query(
        "SELECT transaction_id::text::bigint AS transaction_id, global_position FROM events
         WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence DESC LIMIT 1",
    )
    .bind(aggregate_type)
    .bind(aggregate_id)
    .fetch_optional(pool)
    .await?;
    row.map(|row| {
        Ok(Position {
            transaction_id: row.try_get("transaction_id")?,
            global_position: row.try_get("global_position")?,
        })
    })
    .transpose()
}

/// Every event of one stream, in order: the history an auditor reads.
pub async fn stream_history(
    pool: &PgPool,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let sql = format!(
        "{} WHERE e.aggregate_type = $1 AND e.aggregate_id = $2 ORDER BY e.sequence",
        RecordedEvent::SELECT
    );
    let rows = sqlx::query(&sql)
        .bind(aggregate_type)
        .bind(aggregate_id)
        .fetch_all(pool)
        .await?;
    rows.iter().map(RecordedEvent::from_row).collect()
}

/// Events of one stream after sequence `after`, at most `limit`, recorded
/// at or before `until` if given: a page of its history, or the events a
/// state as of an instant folds.
pub async fn stream_page(
    pool: &PgPool,
    aggregate_type: &str,
    aggregate_id: &str,
    after: i64,
    limit: i64,
    until: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let sql = format!(
        "{} WHERE e.aggregate_type = $1 AND e.aggregate_id = $2 AND e.sequence > $3
           AND ($4::timestamptz IS NULL OR e.recorded_at <= $4)
         ORDER BY e.sequence LIMIT $5",
        RecordedEvent::SELECT
    );
    let rows = sqlx::query(&sql)
        .bind(aggregate_type)
        .bind(aggregate_id)
        .bind(after)
        .bind(until)
        .bind(limit)
        .fetch_all(pool)
        .await?;
    rows.iter().map(RecordedEvent::from_row).collect()
}

/// The correlation id each of these streams of one type was started under
/// (its first event's), for the process that carries it on.
pub async fn first_correlations(
    pool: &PgPool,
    aggregate_type: &str,
    aggregate_ids: &[String],
) -> Result<Vec<(String, Option<Uuid>)>, StoreError> {
    // One index lookup per stream, as `streams_sql` does: planned as
    // `aggregate_id = ANY($2)`, the lookup read the first event of every
    // stream of the type (the key's first and last columns as its bounds,
    // the ids as a filter), and each payment notification took longer as
    // payments accumulated.
    let rows = sqlx::query(
        "SELECT first.aggregate_id, first.metadata ->> 'correlation_id' AS correlation
         FROM unnest($2::text[]) AS wanted(id),
           LATERAL (SELECT aggregate_id, metadata FROM events
                    WHERE aggregate_type = $1 AND aggregate_id = wanted.id AND sequence = 1
                    OFFSET 0) AS first",
    )
    .bind(aggregate_type)
    .bind(aggregate_ids)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            let correlation: Option<String> = row.try_get("correlation")?;
            Ok((
                row.try_get("aggregate_id")?,
                correlation.and_then(|c| c.parse().ok()),
            ))
        })
        .collect()
}

/// The events of one correlation id (one basket, one billing run, one
/// payment, across streams) after `after`, in commit order, at most
/// `limit`.
pub async fn correlated(
    pool: &PgPool,
    correlation_id: Uuid,
    after: Position,
    limit: i64,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let sql = format!(
        "{} WHERE e.metadata ->> 'correlation_id' = $1
           AND (e.transaction_id, e.global_position) > ($2::text::xid8, $3)
         ORDER BY e.transaction_id, e.global_position LIMIT $4",
        RecordedEvent::SELECT
    );
    let rows = sqlx::query(&sql)
        .bind(correlation_id.to_string())
        .bind(after.transaction_id.to_string())
        .bind(after.global_position)
        .bind(limit)
        .fetch_all(pool)
        .await?;
    rows.iter().map(RecordedEvent::from_row).collect()
}

/// The state of one stream as its events recorded up to `until` built it
/// (`None`: all of them), and how many it folded.
pub async fn state_as_of<A: Aggregate>(
    pool: &PgPool,
    aggregate_id: &str,
    until: Option<chrono::DateTime<chrono::Utc>>,
) -> Result<(A, usize), StoreError> {
    let events = stream_page(pool, A::TYPE, aggregate_id, 0, i64::MAX, until).await?;
    let mut aggregate = A::default();
    for event in &events {
        aggregate.apply(event.decode::<A>()?);
    }
    Ok((aggregate, events.len()))
}

/// The event of allocation run `run_id` (a `Places` stream's
/// `AllocationRun`): its stream, its position and its payload as JSON
/// text (at its current version). A scan of the events, for an auditor.
pub async fn find_allocation_run(
    pool: &PgPool,
    run_id: &str,
) -> Result<Option<(String, Position, String)>, StoreError> {
    let row = sqlx::query(
        "SELECT aggregate_id, sequence, transaction_id::text::bigint AS transaction_id, global_position,
                payload::text AS payload, event_version
         FROM events
         WHERE aggregate_type = 'Places' AND event_type = 'AllocationRun'
           AND payload -> 'AllocationRun' ->> 'run_id' = $1",
    )
    .bind(run_id)
    .fetch_optional(pool)
    .await?;
    row.map(|row| {
        let stream: String = row.try_get("aggregate_id")?;
        let sequence: i64 = row.try_get("sequence")?;
        let version: String = row.try_get("event_version")?;
        let mut payload: String = row.try_get("payload")?;
        if let Some((_, current)) = upcast::upcast_text("Places", "AllocationRun", &version, &payload)
            .map_err(upcast_failed(&stream, sequence))?
        {
            payload = current;
        }
        Ok((
            stream,
            Position {
                transaction_id: row.try_get("transaction_id")?,
                global_position: row.try_get("global_position")?,
            },
            payload,
        ))
    })
    .transpose()
}

/// SQL over the events table for statements that read a stream together
/// with something else in one round trip (a basket's prelude, a child's
/// calendar): the store writes it, its callers compose it. Arguments are
/// SQL expressions (a literal, a column, a parameter).
pub mod sql {
    /// The sequence of a stream's last event; NULL when it has none.
    pub fn version(aggregate_type: &str, aggregate_id: &str) -> String {
        format!(
            "(SELECT max(sequence) FROM events \
              WHERE aggregate_type = {aggregate_type} AND aggregate_id = {aggregate_id})"
        )
    }

    /// A stream's events after sequence `after`, as `sequence`,
    /// `event_version`, `payload` (JSON text); add the `ORDER BY`.
    pub fn events_after(aggregate_type: &str, aggregate_id: &str, after: &str) -> String {
        format!(
            "SELECT sequence, event_version, payload::text AS payload FROM events \
             WHERE aggregate_type = {aggregate_type} AND aggregate_id = {aggregate_id} AND sequence > {after}"
        )
    }

    /// Whether one of the next `limit` events after a position (given as
    /// an `xid8` and a global position) is of the aggregate types in the
    /// text array `types` (NULL: of any type): a walk along the
    /// commit-order index, ordered and limited in a subquery of its own.
    pub fn any_ahead(transaction_id: &str, global_position: &str, types: &str, limit: &str) -> String {
        format!(
            "EXISTS (SELECT 1 FROM (SELECT aggregate_type FROM events \
               WHERE (transaction_id, global_position) > ({transaction_id}, {global_position}) \
               ORDER BY transaction_id, global_position LIMIT {limit}) ahead \
             WHERE {types}::text[] IS NULL OR ahead.aggregate_type = ANY({types}))"
        )
    }

    /// How many events follow a position in commit order.
    pub fn count_after(transaction_id: &str, global_position: &str) -> String {
        format!(
            "(SELECT count(*) FROM events e \
              WHERE (e.transaction_id, e.global_position) > ({transaction_id}, {global_position}))"
        )
    }

    /// The key that opens a family's personal values; NULL once erased.
    pub fn family_key(family_id: &str) -> String {
        format!("(SELECT key FROM family_keys WHERE family_id = {family_id})")
    }
}

/// The events of several streams of one type, one index lookup per stream
/// whatever the statistics say: at the start of a rush they describe a
/// table without these streams, and a plain `aggregate_id = ANY(...)` (or a
/// join the planner may flatten: `OFFSET 0` forbids it) was then planned as
/// a scan of every stream of the type, filtered: tens of milliseconds per
/// basket, growing with the store. `{type}` and `{ids}` name the statement's
/// parameters (a text and a text array); rows come as `aggregate_id`,
/// `sequence`, `event_version`, `payload` (text), in stream order.
pub fn streams_sql(aggregate_type: &str, ids: &str) -> String {
    format!(
        "SELECT e.aggregate_id, e.sequence, e.event_version, e.payload::text AS payload
         FROM (SELECT DISTINCT unnest({ids}::text[])) AS wanted(id),
         LATERAL (SELECT aggregate_id, sequence, event_version, payload FROM events
                  WHERE aggregate_type = {aggregate_type} AND aggregate_id = wanted.id OFFSET 0) e
         ORDER BY e.aggregate_id, e.sequence"
    )
}

/// Loads several aggregates of one type in one query; ids without events
/// come back as new aggregates at version 0, in the order asked.
pub async fn load_many<A: Aggregate>(
    pool: &PgPool,
    aggregate_ids: &[String],
) -> Result<Vec<Loaded<A>>, StoreError> {
    let rows = match aggregate_ids {
        // One stream (an agent's decision): a statement PostgreSQL plans
        // once per connection. The general one is planned again on every
        // call (its cost depends on the ids), which took longer than
        // running it.
        [id] => {
            sqlx::query(
                "SELECT aggregate_id, sequence, event_version, payload::text AS payload FROM events
                 WHERE aggregate_type = $1 AND aggregate_id = $2 ORDER BY sequence",
            )
            .bind(A::TYPE)
            .bind(id)
            .fetch_all(pool)
            .await?
        }
        _ => {
            sqlx::query(&streams_sql("$1", "$2"))
                .bind(A::TYPE)
                .bind(aggregate_ids)
                .fetch_all(pool)
                .await?
        }
    };
    let mut events = Vec::with_capacity(rows.len());
    for row in rows {
        events.push((row.try_get(0)?, stored_at(&row, 1)?));
    }
    fold_many(aggregate_ids, events)
}

/// Loads several families in two statements (their events, their keys),
/// personal values opened; ids without events come back as new families
/// at version 0, in the order asked.
pub async fn load_families(
    conn: &mut PgConnection,
    family_ids: &[Uuid],
) -> Result<Vec<Loaded<Family>>, StoreError> {
    let ids: Vec<String> = family_ids.iter().map(Uuid::to_string).collect();
    let rows = sqlx::query(&streams_sql("$1", "$2"))
        .bind(Family::TYPE)
        .bind(&ids)
        .fetch_all(&mut *conn)
        .await?;
    let keys = personal::family_keys(&mut *conn, family_ids).await?;
    let mut by_id: HashMap<String, Loaded<Family>> = HashMap::new();
    for row in rows {
        let id: String = row.try_get(0)?;
        let stored = stored_at(&row, 1)?;
        let key = id.parse::<Uuid>().ok().and_then(|family| keys.get(&family));
        let event = decode_stored::<Family>(&id, &stored, key)?;
        let loaded = by_id.entry(id).or_default();
        loaded.aggregate.apply(event);
        loaded.version = stored.sequence as usize;
    }
    Ok(ids
        .iter()
        .map(|id| by_id.remove(id).unwrap_or_default())
        .collect())
}

/// Builds several aggregates of one type from their events, given as
/// (stream id, event) in stream order; ids without events come back as
/// new aggregates at version 0, in the order asked.
pub fn fold_many<A: Aggregate>(
    aggregate_ids: &[String],
    events: Vec<(String, StoredEvent)>,
) -> Result<Vec<Loaded<A>>, StoreError> {
    let mut by_id: HashMap<String, Loaded<A>> = HashMap::new();
    for (id, stored) in events {
        let event = decode_stored::<A>(&id, &stored, None)?;
        let loaded = by_id.entry(id).or_default();
        loaded.aggregate.apply(event);
        loaded.version = stored.sequence as usize;
    }
    Ok(aggregate_ids
        .iter()
        .map(|id| by_id.remove(id).unwrap_or_default())
        .collect())
}
