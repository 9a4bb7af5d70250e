//! The multi-stream append: the rows postgres-es writes, for several
//! streams in the caller's transaction, each with its own optimistic check.

use cqrs_es::{Aggregate, DomainEvent};
use serde_json::Value;
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use super::*;
use crate::personal;

/// New events for one stream, to be appended after `expected_version`.
#[derive(Debug, Clone)]
pub struct StreamAppend {
    pub aggregate_type: &'static str,
    pub aggregate_id: String,
    pub expected_version: usize,
    pub events: Vec<NewEvent>,
    /// The family whose key encrypts the personal values of these events.
    pub sealed_for: Option<Uuid>,
}

/// An event to append, serialised.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub sequence: usize,
    pub event_type: String,
    pub event_version: String,
    /// The payload as JSON text, personal values still in clear.
    pub payload: String,
}

impl StreamAppend {
    pub fn new<A: Aggregate>(
        aggregate_id: String,
        expected_version: usize,
        events: &[A::Event],
    ) -> Result<Self, StoreError> {
        let events = events
            .iter()
            .enumerate()
            .map(|(offset, event)| {
                Ok(NewEvent {
                    sequence: expected_version + offset + 1,
                    event_type: event.event_type(),
                    event_version: event.event_version(),
                    payload: serde_json::to_string(event).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(StreamAppend {
            aggregate_type: A::TYPE,
            aggregate_id,
            expected_version,
            events,
            sealed_for: None,
        })
    }

    /// Encrypt the events' personal values with this family's key.
    pub fn sealed_for(mut self, family_id: Uuid) -> Self {
        self.sealed_for = Some(family_id);
        self
    }
}

/// Appends the events of several streams in the caller's transaction, with
/// one multi-row insert. Each stream's events take the sequences right after
/// its expected version; the events table's primary key turns a stream that
/// moved meanwhile into [`StoreError::Conflict`] (and the caller's
/// transaction is then unusable: roll it back and retry).
///
/// Returns the position of the last event written.
pub async fn append(
    conn: &mut PgConnection,
    streams: &[StreamAppend],
    metadata: &Metadata,
) -> Result<Option<Position>, StoreError> {
    let rows = Rows::prepare(conn, streams, metadata).await?;
    if rows.is_empty() {
        return Ok(None);
    }
    let written = rows
        .bind(sqlx::query(&format!("{} {}", Rows::INSERT, Rows::RETURNING)))
        .fetch_all(&mut *conn)
        .await
        .map_err(conflict_or_database)?;
    last_position(&written)
}

/// A row written in the same statement as a write's events, so that both
/// commit together without a transaction block (one round trip): a
/// basket's receipt, say. `statement` is a data-modifying statement for a
/// `WITH` clause whose parameters start at `$8`; `bind` binds them.
pub struct Alongside {
    pub statement: &'static str,
    pub bind: Box<dyn for<'q> FnOnce(Query<'q>) -> Query<'q> + Send + Sync>,
}

/// A statement of [`Rows`], as [`Alongside::bind`] receives it.
pub type Query<'q> = sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;

impl std::fmt::Debug for Alongside {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alongside")
            .field("statement", &self.statement)
            .finish()
    }
}

/// Appends as [`append`], with `alongside` in the same statement: it
/// commits on its own, events and row together or neither (a broken key
/// of either is [`StoreError::Conflict`]).
pub async fn append_alongside(
    conn: &mut PgConnection,
    streams: &[StreamAppend],
    metadata: &Metadata,
    alongside: Alongside,
) -> Result<Option<Position>, StoreError> {
    let rows = Rows::prepare(conn, streams, metadata).await?;
    let sql = format!(
        "WITH appended AS ({} {}), alongside AS ({})
         SELECT transaction_id, global_position FROM appended",
        Rows::INSERT,
        Rows::RETURNING,
        alongside.statement
    );
    let written = (alongside.bind)(rows.bind(sqlx::query(&sql)))
        .fetch_all(&mut *conn)
        .await
        .map_err(conflict_or_database)?;
    last_position(&written)
}

/// The rows [`append`] writes, ready to bind to its `INSERT`, for a caller
/// that writes them in a statement of its own (with another insert in the
/// same statement, say, so that both commit without a transaction block).
pub struct Rows {
    pub(super) types: Vec<String>,
    pub(super) ids: Vec<String>,
    pub(super) sequences: Vec<i64>,
    pub(super) event_types: Vec<String>,
    pub(super) versions: Vec<String>,
    pub(super) payloads: Vec<String>,
    pub(super) metadata: String,
}

impl Rows {
    /// The insert; binds `$1` to `$7`.
    pub const INSERT: &'static str =
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         SELECT t, i, s, e, v, p::json, $7::json
         FROM UNNEST($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[], $6::text[]) AS u(t, i, s, e, v, p)";
    /// What [`last_position`] reads.
    pub const RETURNING: &'static str =
        "RETURNING transaction_id::text::bigint AS transaction_id, global_position";

    /// Serialises the streams' events, personal values sealed with their
    /// family's key (read through `conn`).
    pub async fn prepare(
        conn: &mut PgConnection,
        streams: &[StreamAppend],
        metadata: &Metadata,
    ) -> Result<Rows, StoreError> {
        let count: usize = streams.iter().map(|s| s.events.len()).sum();
        let mut rows = Rows {
            types: Vec::with_capacity(count),
            ids: Vec::with_capacity(count),
            sequences: Vec::with_capacity(count),
            event_types: Vec::with_capacity(count),
            versions: Vec::with_capacity(count),
            payloads: Vec::with_capacity(count),
            metadata: serde_json::to_string(&metadata.to_map())
                .map_err(|e| StoreError::Corrupt(e.to_string()))?,
        };
        for stream in streams {
            let mut key = None;
            for event in &stream.events {
                // Serialised events are written as they are, unless their
                // text may hold a personal value: only then is it parsed.
                let mut payload = event.payload.clone();
                let value = if payload.contains("\"personal\"") {
                    Some(
                        serde_json::from_str::<Value>(&payload)
                            .map_err(|e| StoreError::Corrupt(e.to_string()))?,
                    )
                } else {
                    None
                };
                if let Some(mut value) = value.filter(personal::has_personal) {
                    let family_id = stream.sealed_for.ok_or_else(|| {
                        StoreError::Corrupt(format!(
                            "{} {} carries personal data but no family key was named",
                            stream.aggregate_type, stream.aggregate_id
                        ))
                    })?;
                    if key.is_none() {
                        key = Some(personal::family_key_for_writing(conn, family_id).await?);
                    }
                    if let Some(key) = &key {
                        personal::seal(&mut value, key)?;
                    }
                    payload = value.to_string();
                }
                rows.types.push(stream.aggregate_type.to_string());
                rows.ids.push(stream.aggregate_id.clone());
                rows.sequences.push(event.sequence as i64);
                rows.event_types.push(event.event_type.clone());
                rows.versions.push(event.event_version.clone());
                rows.payloads.push(payload);
            }
        }
        Ok(rows)
    }

    pub fn is_empty(&self) -> bool {
        self.types.is_empty()
    }

    /// Adds `other`'s rows after these; the metadata stays this one's.
    pub(super) fn absorb(&mut self, other: Rows) {
        self.types.extend(other.types);
        self.ids.extend(other.ids);
        self.sequences.extend(other.sequences);
        self.event_types.extend(other.event_types);
        self.versions.extend(other.versions);
        self.payloads.extend(other.payloads);
    }

    /// Binds `$1` to `$7` of [`Rows::INSERT`].
    pub fn bind<'q>(
        &'q self,
        query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
        self.bind_columns(query).bind(&self.metadata)
    }

    /// Binds the rows' columns, `$1` to `$6`: the metadata is the caller's.
    pub(super) fn bind_columns<'q>(
        &'q self,
        query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
        query
            .bind(&self.types)
            .bind(&self.ids)
            .bind(&self.sequences)
            .bind(&self.event_types)
            .bind(&self.versions)
            .bind(&self.payloads)
    }
}

/// The highest position among rows returned with [`Rows::RETURNING`].
pub fn last_position(rows: &[sqlx::postgres::PgRow]) -> Result<Option<Position>, StoreError> {
    let mut last = None;
    for row in rows {
        let position = Position {
            transaction_id: row.try_get("transaction_id")?,
            global_position: row.try_get("global_position")?,
        };
        last = last.max(Some(position));
    }
    Ok(last)
}

/// Whether a payload holds sealed personal values.
pub(super) fn has_sealed(value: &Value) -> bool {
    match value {
        Value::Object(map) => map.contains_key("sealed") || map.values().any(has_sealed),
        Value::Array(items) => items.iter().any(has_sealed),
        _ => false,
    }
}
