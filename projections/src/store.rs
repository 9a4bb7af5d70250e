//! The event store: postgres-es's `events` table, read through its
//! repository, and a multi-stream append for baskets.
//!
//! postgres-es commits one aggregate per transaction. A basket must commit
//! many reservation streams at once, each with its own optimistic check, so
//! [`append`] writes the same rows postgres-es writes (same columns, same
//! serialisation) for several streams in the caller's transaction.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use cqrs_es::persist::PersistedEventRepository;
use cqrs_es::{Aggregate, DomainEvent, EventEnvelope};
use postgres_es::PostgresEventRepository;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::{PgConnection, PgPool, Row};
use uuid::Uuid;

use crate::personal::{self, FamilyKey};

/// A place in commit order: the writing transaction, then the position
/// within it. Every event below a projection's checkpoint has been applied.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Position {
    pub transaction_id: i64,
    pub global_position: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another writer appended to one of the streams since it was loaded.
    #[error("a stream changed while the command ran")]
    Conflict,
    /// An event would introduce an id that already names something else
    /// (the `claimed_ids` table).
    #[error("this id is already used")]
    IdTaken,
    #[error("stored event cannot be read: {0}")]
    Corrupt(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

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
}

impl RecordedEvent {
    /// The `SELECT ... FROM` that [`RecordedEvent::from_row`] reads, with the
    /// family key that opens personal values and every event's metadata;
    /// add `WHERE`/`ORDER BY`, naming the events table `e`.
    pub const SELECT: &'static str = "SELECT e.transaction_id, e.global_position, \
        e.event_id, e.aggregate_type, e.aggregate_id, e.sequence, e.event_type, e.event_version, e.payload::text AS payload, \
        e.metadata::text AS metadata, e.recorded_at, \
        CASE WHEN e.aggregate_type = 'Family' THEN \
          (SELECT k.key FROM family_keys k WHERE k.family_id = e.aggregate_id::uuid) END AS family_key \
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
    /// marked erased). Columns are taken by position, in the order of
    /// [`RecordedEvent::SELECT`]: by name, each is a hash lookup, and a
    /// rebuild reads twelve of them for every event.
    pub fn from_row(row: &sqlx::postgres::PgRow) -> Result<Self, StoreError> {
        let mut payload: String = row.try_get(column::PAYLOAD)?;
        let aggregate_type: String = row.try_get(column::AGGREGATE_TYPE)?;
        let aggregate_id: String = row.try_get(column::AGGREGATE_ID)?;
        // Only a family's events hold sealed values.
        if aggregate_type == "Family" && payload.contains("\"sealed\"") {
            let family_id: Uuid = aggregate_id
                .parse()
                .map_err(|_| StoreError::Corrupt(format!("sealed values in stream {aggregate_id}")))?;
            let key: Option<Vec<u8>> = row.try_get(column::FAMILY_KEY)?;
            let key = key.map(|k| FamilyKey::from_bytes(family_id, &k)).transpose()?;
            let mut value: Value =
                serde_json::from_str(&payload).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            personal::open(&mut value, key.as_ref())?;
            payload = value.to_string();
        }
        Ok(RecordedEvent {
            position: Self::position_of_row(row)?,
            event_id: row.try_get(column::EVENT_ID)?,
            aggregate_type,
            aggregate_id,
            sequence: row.try_get(column::SEQUENCE)?,
            event_type: row.try_get(column::EVENT_TYPE)?,
            event_version: row.try_get(column::EVENT_VERSION)?,
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

/// An aggregate as its events built it, with the sequence of its last event
/// (0 for a stream that does not exist yet).
#[derive(Debug, Clone)]
pub struct Loaded<A> {
    pub aggregate: A,
    pub version: usize,
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
    /// given as (sequence, payload as JSON text) in order, opening sealed
    /// personal values with `key` (none: they read as erased). A gap in the
    /// sequences is refused: the state would silently miss an event.
    pub fn apply_stored(
        &mut self,
        aggregate_id: &str,
        events: impl IntoIterator<Item = (i64, String)>,
        key: Option<&FamilyKey>,
    ) -> Result<(), StoreError> {
        for (sequence, payload) in events {
            if sequence as usize != self.version + 1 {
                return Err(StoreError::Corrupt(format!(
                    "{} {aggregate_id}: event #{sequence} follows #{}",
                    A::TYPE,
                    self.version
                )));
            }
            self.aggregate
                .apply(decode_stored::<A>(aggregate_id, sequence, &payload, key)?);
            self.version = sequence as usize;
        }
        Ok(())
    }
}

impl<A: Aggregate> Default for Loaded<A> {
    fn default() -> Self {
        Loaded::new()
    }
}

/// A stored payload (JSON text) as the aggregate's event; sealed personal
/// values are opened with `key` first.
fn decode_stored<A: Aggregate>(
    aggregate_id: &str,
    sequence: i64,
    payload: &str,
    key: Option<&FamilyKey>,
) -> Result<A::Event, StoreError> {
    let corrupt =
        |e: serde_json::Error| StoreError::Corrupt(format!("{} {aggregate_id} #{sequence}: {e}", A::TYPE));
    // Only a payload with a "sealed" entry needs opening: the rest is
    // decoded straight from its text.
    if !payload.contains("\"sealed\"") {
        return serde_json::from_str(payload).map_err(corrupt);
    }
    let mut value: Value = serde_json::from_str(payload).map_err(corrupt)?;
    personal::open(&mut value, key)?;
    serde_json::from_value(value).map_err(corrupt)
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
                let family_id: Uuid = aggregate_id
                    .parse()
                    .map_err(|_| StoreError::Corrupt(format!("sealed values in stream {aggregate_id}")))?;
                let mut conn = pool.acquire().await?;
                key = Some(personal::family_key(&mut conn, family_id).await?);
            }
            personal::open(&mut event.payload, key.as_ref().and_then(Option::as_ref))?;
        }
        version = event.sequence;
        let envelope = EventEnvelope::<A>::try_from(event).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        aggregate.apply(envelope.payload);
    }
    Ok(Loaded { aggregate, version })
}

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
    queue: tokio::sync::mpsc::Sender<Pending>,
}

struct Pending {
    streams: Vec<StreamAppend>,
    metadata: Metadata,
    answer: tokio::sync::oneshot::Sender<Result<Option<Position>, StoreError>>,
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

async fn write_group(pool: &PgPool, group: Vec<Pending>) {
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
async fn append_together(pool: &PgPool, group: &[Pending]) -> Result<Vec<Option<Position>>, StoreError> {
    let mut conn = pool.acquire().await?;
    let mut all: Option<Rows> = None;
    let mut metadata: Vec<String> = Vec::new();
    let mut owner: HashMap<(String, String, i64), usize> = HashMap::new();
    for (n, pending) in group.iter().enumerate() {
        let rows = Rows::prepare(&mut conn, &pending.streams, &pending.metadata).await?;
        for i in 0..rows.types.len() {
            metadata.push(rows.metadata.clone());
            owner.insert((rows.types[i].clone(), rows.ids[i].clone(), rows.sequences[i]), n);
        }
        match all.as_mut() {
            None => all = Some(rows),
            Some(all) => all.absorb(rows),
        }
    }
    let mut positions = vec![None; group.len()];
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

/// The rows [`append`] writes, ready to bind to its `INSERT`, for a caller
/// that writes them in a statement of its own (with another insert in the
/// same statement, say, so that both commit without a transaction block).
pub struct Rows {
    types: Vec<String>,
    ids: Vec<String>,
    sequences: Vec<i64>,
    event_types: Vec<String>,
    versions: Vec<String>,
    payloads: Vec<String>,
    metadata: String,
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
    fn absorb(&mut self, other: Rows) {
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
    fn bind_columns<'q>(
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

/// A unique key violated by an insert means another writer got there first;
/// a transaction refused by the projections' fence (SQLSTATE 40001, see
/// `engine::fence`) lost a race too: both are tried again.
pub fn conflict_or_database(error: sqlx::Error) -> StoreError {
    match &error {
        sqlx::Error::Database(db) if db.constraint() == Some("claimed_ids_pkey") => StoreError::IdTaken,
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict,
        sqlx::Error::Database(db) if db.code().as_deref() == Some("40001") => StoreError::Conflict,
        _ => StoreError::Database(error),
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

/// The events of several streams of one type, one index lookup per stream
/// whatever the statistics say: at the start of a rush they describe a
/// table without these streams, and a plain `aggregate_id = ANY(...)` (or a
/// join the planner may flatten: `OFFSET 0` forbids it) was then planned as
/// a scan of every stream of the type, filtered: tens of milliseconds per
/// basket, growing with the store. `{type}` and `{ids}` name the statement's
/// parameters (a text and a text array); rows come as `aggregate_id`,
/// `sequence`, `payload` (text), in stream order.
pub fn streams_sql(aggregate_type: &str, ids: &str) -> String {
    format!(
        "SELECT e.aggregate_id, e.sequence, e.payload::text AS payload
         FROM (SELECT DISTINCT unnest({ids}::text[])) AS wanted(id),
         LATERAL (SELECT aggregate_id, sequence, payload FROM events
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
                "SELECT aggregate_id, sequence, payload::text AS payload FROM events
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
        events.push((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?));
    }
    fold_many(aggregate_ids, events)
}

/// Builds several aggregates of one type from their events, given as
/// (stream id, sequence, payload as JSON text) in stream order; ids without
/// events come back as new aggregates at version 0, in the order asked.
pub fn fold_many<A: Aggregate>(
    aggregate_ids: &[String],
    events: Vec<(String, i64, String)>,
) -> Result<Vec<Loaded<A>>, StoreError> {
    let mut by_id: HashMap<String, Loaded<A>> = HashMap::new();
    for (id, sequence, payload) in events {
        let event = decode_stored::<A>(&id, sequence, &payload, None)?;
        let loaded = by_id.entry(id).or_default();
        loaded.aggregate.apply(event);
        loaded.version = sequence as usize;
    }
    Ok(aggregate_ids
        .iter()
        .map(|id| by_id.remove(id).unwrap_or_default())
        .collect())
}

/// Whether a payload holds sealed personal values.
fn has_sealed(value: &Value) -> bool {
    match value {
        Value::Object(map) => map.contains_key("sealed") || map.values().any(has_sealed),
        Value::Array(items) => items.iter().any(has_sealed),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;
    use espace_famille_domain::reservation::{Reservation, ReservationEvent, ReservationStatus, Slot};

    use super::*;

    fn requested() -> String {
        let slot = Slot {
            family_id: Uuid::from_u128(1),
            child_id: Uuid::from_u128(2),
            collectivity_id: Uuid::from_u128(3),
            service_id: Uuid::from_u128(4),
            unit_id: Uuid::from_u128(5),
            date: NaiveDate::from_ymd_opt(2026, 12, 7).unwrap(),
        };
        serde_json::to_string(&ReservationEvent::ReservationRequested { slot }).unwrap()
    }

    fn confirmed() -> String {
        serde_json::to_string(&ReservationEvent::ReservationConfirmed).unwrap()
    }

    #[test]
    fn streams_are_folded_each_on_its_own_and_returned_in_the_order_asked() {
        let ids = ["b", "a", "c"].map(String::from);
        let events = vec![
            ("a".to_string(), 1, requested()),
            ("a".to_string(), 2, confirmed()),
            ("b".to_string(), 1, requested()),
        ];
        let loaded = fold_many::<Reservation>(&ids, events).unwrap();
        let states: Vec<(usize, bool, ReservationStatus)> = loaded
            .iter()
            .map(|l| (l.version, l.aggregate.slot.is_some(), l.aggregate.status))
            .collect();
        assert_eq!(
            states,
            [
                (1, true, ReservationStatus::Free),
                (2, true, ReservationStatus::Confirmed),
                (0, false, ReservationStatus::Free),
            ]
        );
    }

    #[test]
    fn a_kept_state_takes_the_events_that_follow_it_and_refuses_a_gap() {
        let mut kept = Loaded::<Reservation>::new();
        kept.apply_stored("r", [(1, requested())], None).unwrap();
        kept.apply_stored("r", [(2, confirmed())], None).unwrap();
        assert_eq!(
            (kept.version, kept.aggregate.status),
            (2, ReservationStatus::Confirmed)
        );

        let mut behind = Loaded::<Reservation>::new();
        behind.apply_stored("r", [(1, requested())], None).unwrap();
        let gap = behind.apply_stored("r", [(3, confirmed())], None);
        assert!(matches!(gap, Err(StoreError::Corrupt(_))), "{gap:?}");
        assert_eq!(behind.version, 1, "nothing past the gap applied");

        let garbled = Loaded::<Reservation>::new().apply_stored("r", [(1, "{}".to_string())], None);
        assert!(matches!(garbled, Err(StoreError::Corrupt(m)) if m.contains("r #1")));
    }
}
