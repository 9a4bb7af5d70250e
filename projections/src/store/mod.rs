//! The event store: postgres-es's `events` table, read through its
//! repository, and a multi-stream append for baskets.
//!
//! postgres-es commits one aggregate per transaction. A basket must commit
//! many reservation streams at once, each with its own optimistic check, so
//! [`append`] writes the same rows postgres-es writes (same columns, same
//! serialisation) for several streams in the caller's transaction.
//!
//! # Layout
//!
//! - here: positions, metadata, recorded events and how they are read;
//! - `load`: loading one stream or several, a stream's version, position
//!   and history, claimed ids;
//! - `append`: the multi-stream append and its rows;
//! - `appender`: single commands arriving together, in one statement;
//! - `commit_order`: the events after a position, in commit order, below
//!   the horizon (what the projections read);
//! - `feed`: every event of one commune, for its auditors;
//! - [`integrity`]: the hash chains and seals, and their verification;
//! - [`personal`]: the families' keys, and sealing and opening personal
//!   values with them;
//! - the errors are [`crate::error`]'s, so that the encryption of personal
//!   values, which the store uses, names them without a cycle.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
#[cfg(test)]
use cqrs_es::DomainEvent;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::Row;
use uuid::Uuid;

use personal::FamilyKey;

/// A place in commit order: the writing transaction, then the position
/// within it. Every event below a projection's checkpoint has been applied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Position {
    pub transaction_id: i64,
    pub global_position: i64,
}

mod append;
mod appender;
mod commit_order;
mod feed;
pub mod integrity;
mod load;
pub mod personal;
#[cfg(test)]
mod tests;

pub use crate::error::{conflict_or_database, StoreError};
pub use append::{append, append_alongside, last_position, Alongside, NewEvent, Query, Rows, StreamAppend};
pub use appender::{append_many, Appender};
pub use commit_order::{
    all_below_horizon, fetch_after, first_events, has_events_after, head, projections_behind, read_after,
    read_after_of_types, Behind, Passed, EVENTS_AFTER, PASS_OVER,
};
pub use feed::{commune_events, Commune, FeedFilter, Window, WINDOW};
pub use load::{
    correlated, events_after_each, find_allocation_run, first_correlations, fold_many, id_claimed, load,
    load_families, load_many, sql, state_as_of, stream_history, stream_page, stream_position, stream_version,
    streams_sql, Loaded, StoredEvent,
};
// The parts share their helpers through this module (each does `use
// super::*`).
#[allow(unused_imports)]
use {append::*, appender::*, commit_order::*, load::*};

/// Who did what, and why: stored with every event of a command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metadata {
    /// The account (or system component) that issued the command.
    pub actor_id: String,
    /// The actor's role at the time: parent, agent, auditor, system.
    pub actor_role: String,
    /// The business operation the command belongs to (a basket id, say).
    pub correlation_id: Uuid,
    /// What caused the command: the command id of a user request, or the
    /// event id that a process manager reacted to.
    pub causation_id: Uuid,
    pub command_id: Uuid,
    /// When the request reached the server.
    pub requested_at: DateTime<Utc>,
}

impl Metadata {
    /// postgres-es stores metadata as a map of strings.
    pub fn to_map(&self) -> HashMap<String, String> {
        HashMap::from([
            ("actor_id".to_string(), self.actor_id.clone()),
            ("actor_role".to_string(), self.actor_role.clone()),
            ("correlation_id".to_string(), self.correlation_id.to_string()),
            ("causation_id".to_string(), self.causation_id.to_string()),
            ("command_id".to_string(), self.command_id.to_string()),
            ("requested_at".to_string(), self.requested_at.to_rfc3339()),
        ])
    }
}

/// An event as stored, for projections and history.
#[derive(Debug, Clone)]
pub struct RecordedEvent {
    pub position: Position,
    pub event_id: Uuid,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub sequence: i64,
    pub event_type: String,
    pub event_version: String,
    /// The payload as JSON text, personal values opened: decoded only by
    /// the projections that need it (see [`RecordedEvent::decode`]).
    pub payload: String,
    /// The metadata as JSON text; `None` when the reader did not ask for it
    /// (a projection reads only the metadata it names, see
    /// [`crate::engine::Projection::metadata_of`]).
    pub metadata: Option<String>,
    pub recorded_at: DateTime<Utc>,
}

/// A reservation event as the store would hand it to a projection, for the
/// projections' unit tests: `actor` is its metadata's actor id.
#[cfg(test)]
pub(crate) fn recorded_reservation(
    id: Uuid,
    sequence: i64,
    event: &espace_famille_domain::reservation::ReservationEvent,
    actor: &str,
) -> RecordedEvent {
    RecordedEvent {
        position: Position {
            transaction_id: 1,
            global_position: sequence,
        },
        event_id: Uuid::new_v4(),
        aggregate_type: "Reservation".into(),
        aggregate_id: id.to_string(),
        sequence,
        event_type: event.event_type(),
        event_version: "1".into(),
        payload: serde_json::to_string(event).unwrap(),
        metadata: Some(serde_json::json!({ "actor_id": actor }).to_string()),
        recorded_at: Utc::now(),
    }
}

/// A transaction id as PostgreSQL's `xid8` sends it, read without a cast:
/// `xid8::text::bigint` on the server cost a rebuild's reader about a tenth
/// of its time. An `xid8` is unsigned; one past `i64::MAX` would take
/// billions of transactions for each of billions of wraparounds.
struct Xid8(i64);

impl sqlx::Type<sqlx::Postgres> for Xid8 {
    fn type_info() -> sqlx::postgres::PgTypeInfo {
        sqlx::postgres::PgTypeInfo::with_oid(sqlx::postgres::types::Oid(XID8_OID))
    }
}

/// `xid8`'s type oid, fixed in PostgreSQL's catalog.
const XID8_OID: u32 = 5069;

impl<'r> sqlx::Decode<'r, sqlx::Postgres> for Xid8 {
    fn decode(value: sqlx::postgres::PgValueRef<'r>) -> Result<Self, sqlx::error::BoxDynError> {
        let id = match value.format() {
            sqlx::postgres::PgValueFormat::Binary => u64::from_be_bytes(value.as_bytes()?.try_into()?),
            sqlx::postgres::PgValueFormat::Text => value.as_str()?.parse()?,
        };
        Ok(Xid8(i64::try_from(id)?))
    }
}

/// The positions of [`RecordedEvent::SELECT`]'s columns.
mod column {
    pub const TRANSACTION_ID: usize = 0;
    pub const GLOBAL_POSITION: usize = 1;
    pub const EVENT_ID: usize = 2;
    pub const AGGREGATE_TYPE: usize = 3;
    pub const AGGREGATE_ID: usize = 4;
    pub const SEQUENCE: usize = 5;
    pub const EVENT_TYPE: usize = 6;
    pub const EVENT_VERSION: usize = 7;
    pub const PAYLOAD: usize = 8;
    pub const METADATA: usize = 9;
    pub const RECORDED_AT: usize = 10;
    pub const FAMILY_KEY: usize = 11;
    /// The family a request's stream is sealed for (a family's own stream
    /// is sealed for itself).
    pub const SEALED_FOR: usize = 12;
}

impl RecordedEvent {
    /// The `SELECT ... FROM` that [`RecordedEvent::from_row`] reads, with the
    /// family key that opens personal values and every event's metadata;
    /// add `WHERE`/`ORDER BY`, naming the events table `e`.
    pub const SELECT: &'static str = "SELECT e.transaction_id, e.global_position, \
        e.event_id, e.aggregate_type, e.aggregate_id, e.sequence, e.event_type, e.event_version, e.payload::text AS payload, \
        e.metadata::text AS metadata, e.recorded_at, \
        CASE WHEN e.aggregate_type = 'Family' THEN \
          (SELECT k.key FROM family_keys k WHERE k.family_id = e.aggregate_id::uuid) \
             WHEN e.aggregate_type = 'Request' THEN \
          (SELECT k.key FROM request_families r JOIN family_keys k ON k.family_id = r.family_id \
           WHERE r.request_id = e.aggregate_id::uuid) END AS family_key, \
        CASE WHEN e.aggregate_type = 'Request' THEN \
          (SELECT r.family_id FROM request_families r WHERE r.request_id = e.aggregate_id::uuid) END AS sealed_for \
        FROM events e";

    /// [`RecordedEvent::SELECT`] reading the metadata only of the events of
    /// the types in the text array `types` names (a parameter; NULL: every
    /// event's). Metadata is about half of a stored event's text.
    pub fn select_with_metadata_of(types: &str) -> String {
        Self::SELECT.replacen(
            "e.metadata::text AS metadata",
            &format!("CASE WHEN {types}::text[] IS NULL OR e.event_type = ANY({types}) THEN e.metadata::text END AS metadata"),
            1,
        )
    }

    /// Reads a row of [`RecordedEvent::SELECT`], personal values opened (or
    /// marked erased), brought up to its event's current version. Columns are taken by position, in the order of
    /// [`RecordedEvent::SELECT`]: by name, each is a hash lookup, and a
    /// rebuild reads twelve of them for every event.
    pub fn from_row(row: &sqlx::postgres::PgRow) -> Result<Self, StoreError> {
        let mut payload: String = row.try_get(column::PAYLOAD)?;
        let aggregate_type: String = row.try_get(column::AGGREGATE_TYPE)?;
        let aggregate_id: String = row.try_get(column::AGGREGATE_ID)?;
        // Only a family's events, and its requests', hold sealed values.
        if (aggregate_type == "Family" || aggregate_type == "Request") && payload.contains("\"sealed\"") {
            let family_id: Uuid = match aggregate_type.as_str() {
                "Family" => aggregate_id.parse().ok(),
                _ => row.try_get(column::SEALED_FOR)?,
            }
            .ok_or_else(|| StoreError::Corrupt(format!("sealed values in stream {aggregate_id}")))?;
            let key: Option<Vec<u8>> = row.try_get(column::FAMILY_KEY)?;
            let key = key.map(|k| FamilyKey::from_bytes(family_id, &k)).transpose()?;
            let mut value: Value =
                serde_json::from_str(&payload).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            personal::open(&mut value, key.as_ref())?;
            payload = value.to_string();
        }
        let sequence: i64 = row.try_get(column::SEQUENCE)?;
        let event_type: String = row.try_get(column::EVENT_TYPE)?;
        let mut event_version: String = row.try_get(column::EVENT_VERSION)?;
        // An event of an older version reads as the current one, for
        // every reader alike.
        if let Some((current, upcast)) =
            espace_famille_domain::upcast::upcast_text(&aggregate_type, &event_type, &event_version, &payload)
                .map_err(load::upcast_failed(&aggregate_id, sequence))?
        {
            event_version = current;
            payload = upcast;
        }
        Ok(RecordedEvent {
            position: Self::position_of_row(row)?,
            event_id: row.try_get(column::EVENT_ID)?,
            aggregate_type,
            aggregate_id,
            sequence,
            event_type,
            event_version,
            payload,
            metadata: row.try_get(column::METADATA)?,
            recorded_at: row.try_get(column::RECORDED_AT)?,
        })
    }

    /// The position of a row of [`RecordedEvent::SELECT`], read alone.
    pub fn position_of_row(row: &sqlx::postgres::PgRow) -> Result<Position, StoreError> {
        Ok(Position {
            transaction_id: row.try_get::<Xid8, _>(column::TRANSACTION_ID)?.0,
            global_position: row.try_get(column::GLOBAL_POSITION)?,
        })
    }

    /// The payload as JSON, for readers that show it as is.
    pub fn payload_value(&self) -> Value {
        serde_json::from_str(&self.payload).unwrap_or(Value::Null)
    }

    /// One string field of the metadata (`actor_id`, `correlation_id`...);
    /// `None` also when the metadata was not read.
    pub fn metadata_field(&self, key: &str) -> Option<String> {
        let metadata: Value = serde_json::from_str(self.metadata.as_deref()?).ok()?;
        metadata.get(key)?.as_str().map(str::to_string)
    }

    /// Who wrote the event (`actor_id`), for a projection that names its
    /// type among those whose metadata it reads; an event read without its
    /// metadata is an error of the engine, not an unknown actor.
    pub fn actor_id(&self) -> Result<String, StoreError> {
        match &self.metadata {
            Some(_) => Ok(self.metadata_field("actor_id").unwrap_or_default()),
            None => Err(StoreError::Corrupt(format!(
                "{} #{}: read without its metadata",
                self.aggregate_id, self.sequence
            ))),
        }
    }

    /// The payload as the aggregate's event type.
    pub fn decode<A: Aggregate>(&self) -> Result<A::Event, StoreError> {
        serde_json::from_str(&self.payload).map_err(|e| {
            StoreError::Corrupt(format!(
                "{} {} #{}: {e}",
                self.aggregate_type, self.aggregate_id, self.sequence
            ))
        })
    }
}
