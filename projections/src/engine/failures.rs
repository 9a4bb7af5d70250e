//! A projection that cannot apply an event stops at that event, and says
//! so: its checkpoint stays before the event, the failure is kept in
//! `projection_failures` (projection, position, event id, error, attempts,
//! first and last time), and the other projections of its group go on.
//! The runner tries it again later, waiting longer after each attempt (up
//! to five minutes); [`retry`] makes it try at once, after a fix. Once the
//! event is applied the failure is gone.
//!
//! A failure of the database itself (an outage, a serialization failure)
//! is not the event's fault: the whole batch is tried again, as before.

use chrono::{DateTime, Utc};
use sqlx::{Connection, PgConnection, PgPool, Row};
use uuid::Uuid;

use super::{apply_its_events, Mode, Projection, EVENTS_CHANNEL};
use crate::store::{Position, RecordedEvent, StoreError};

/// The longest wait between two attempts, in seconds.
const MAX_BACKOFF_SECONDS: i32 = 300;

/// Whether an error is the database's rather than the event's: the batch
/// is tried again whole, and no projection is stopped for it.
pub fn is_transient(error: &StoreError) -> bool {
    match error {
        StoreError::Database(error) => match error {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => true,
            sqlx::Error::Database(db) => db.code().is_some_and(|code| {
                // Connection lost, shutting down, serialization failure,
                // deadlock, lock not available, out of resources.
                code.starts_with("08")
                    || code.starts_with("57P")
                    || code.starts_with("53")
                    || code == "40001"
                    || code == "40P01"
                    || code == "55P03"
            }),
            _ => false,
        },
        StoreError::Conflict => true,
        StoreError::IdTaken | StoreError::Corrupt(_) => false,
    }
}

/// How far a projection got through events it was given one by one.
pub(super) enum Applied {
    All,
    /// It failed on `event`; the events before it are applied.
    StoppedAt {
        last_applied: Option<Position>,
        event: Box<RecordedEvent>,
        error: String,
    },
}

/// Applies `events` to `projection` inside a savepoint; when that fails
/// for the event's sake, again one event at a time, each in its own
/// savepoint, to apply those before the one that fails and stop there.
pub(super) async fn apply_until_failure(
    conn: &mut PgConnection,
    projection: &dyn Projection,
    events: &[RecordedEvent],
) -> Result<Applied, StoreError> {
    let mut whole = conn.begin().await?;
    match apply_its_events(&mut whole, projection, events, Mode::Live).await {
        Ok(()) => {
            whole.commit().await?;
            return Ok(Applied::All);
        }
        Err(error) if is_transient(&error) => return Err(error),
        Err(_) => whole.rollback().await?,
    }
    let mut last_applied = None;
    for event in events {
        let mut one = conn.begin().await?;
        match apply_its_events(&mut one, projection, std::slice::from_ref(event), Mode::Live).await {
            Ok(()) => {
                one.commit().await?;
                last_applied = Some(event.position);
            }
            Err(error) if is_transient(&error) => return Err(error),
            Err(error) => {
                one.rollback().await?;
                return Ok(Applied::StoppedAt {
                    last_applied,
                    event: Box::new(event.clone()),
                    error: error.to_string(),
                });
            }
        }
    }
    Ok(Applied::All)
}

/// Records (or counts again) `projection`'s failure on `event`; the next
/// attempt waits 2^attempts seconds, at most five minutes. A failure on
/// another event than the one recorded starts counting again.
pub(super) async fn record(
    conn: &mut PgConnection,
    projection: &str,
    event: &RecordedEvent,
    error: &str,
) -> Result<(), StoreError> {
    tracing::error!(
        projection,
        event_id = %event.event_id,
        position = ?event.position,
        error,
        "projection stopped at an event it cannot apply; the others go on"
    );
    sqlx::query(
        "INSERT INTO projection_failures
           (projection, transaction_id, global_position, event_id, error, next_attempt_at)
         VALUES ($1, $2::text::xid8, $3, $4, $5, now() + interval '2 seconds')
         ON CONFLICT (projection) DO UPDATE SET
           attempts = CASE WHEN projection_failures.event_id = excluded.event_id
                           THEN projection_failures.attempts + 1 ELSE 1 END,
           first_failed_at = CASE WHEN projection_failures.event_id = excluded.event_id
                                  THEN projection_failures.first_failed_at ELSE now() END,
           transaction_id = excluded.transaction_id,
           global_position = excluded.global_position,
           event_id = excluded.event_id,
           error = excluded.error,
           last_failed_at = now(),
           next_attempt_at = now() + make_interval(secs => least($6,
             power(2, least(CASE WHEN projection_failures.event_id = excluded.event_id
                                 THEN projection_failures.attempts + 1 ELSE 1 END, 12))))",
    )
    .bind(projection)
    .bind(event.position.transaction_id.to_string())
    .bind(event.position.global_position)
    .bind(event.event_id)
    .bind(error)
    .bind(MAX_BACKOFF_SECONDS)
    .execute(conn)
    .await?;
    Ok(())
}

/// Forgets the failures of these projections: they applied past them.
pub(super) async fn clear(conn: &mut PgConnection, projections: &[&str]) -> Result<(), StoreError> {
    if projections.is_empty() {
        return Ok(());
    }
    let cleared = sqlx::query("DELETE FROM projection_failures WHERE projection = ANY($1)")
        .bind(projections)
        .execute(conn)
        .await?;
    if cleared.rows_affected() > 0 {
        tracing::info!(
            ?projections,
            "projection resumed past the event it had stopped at"
        );
    }
    Ok(())
}

/// A projection stopped at an event.
#[derive(Debug, Clone, PartialEq)]
pub struct Failure {
    pub projection: String,
    pub position: Position,
    pub event_id: Uuid,
    pub error: String,
    pub attempts: i32,
    pub first_failed_at: DateTime<Utc>,
    pub last_failed_at: DateTime<Utc>,
    pub next_attempt_at: DateTime<Utc>,
}

/// Where a projection stands.
#[derive(Debug, Clone, PartialEq)]
pub struct Status {
    pub projection: String,
    pub position: Position,
    /// Committed events after its checkpoint, whether or not it reads them.
    pub behind: i64,
    pub failure: Option<Failure>,
}

/// Every projection stopped at an event.
pub async fn list(pool: &PgPool) -> Result<Vec<Failure>, StoreError> {
    let rows = sqlx::query(
        "SELECT projection, transaction_id::text::bigint AS transaction_id, global_position, event_id, error,
                attempts, first_failed_at, last_failed_at, next_attempt_at
         FROM projection_failures ORDER BY projection",
    )
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(Failure {
                projection: row.try_get("projection")?,
                position: Position {
                    transaction_id: row.try_get("transaction_id")?,
                    global_position: row.try_get("global_position")?,
                },
                event_id: row.try_get("event_id")?,
                error: row.try_get("error")?,
                attempts: row.try_get("attempts")?,
                first_failed_at: row.try_get("first_failed_at")?,
                last_failed_at: row.try_get("last_failed_at")?,
                next_attempt_at: row.try_get("next_attempt_at")?,
            })
        })
        .collect()
}

/// Every projection's checkpoint, how many events it is behind, and its
/// failure if it stopped.
pub async fn status(pool: &PgPool) -> Result<Vec<Status>, StoreError> {
    let failures = list(pool).await?;
    let rows = sqlx::query(&format!(
        "SELECT c.name, c.last_transaction_id::text::bigint AS transaction_id, c.last_position,
                {} AS behind
         FROM projection_checkpoints c ORDER BY c.name",
        crate::store::sql::count_after("c.last_transaction_id", "c.last_position")
    ))
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            let projection: String = row.try_get("name")?;
            Ok(Status {
                failure: failures.iter().find(|f| f.projection == projection).cloned(),
                projection,
                position: Position {
                    transaction_id: row.try_get("transaction_id")?,
                    global_position: row.try_get("last_position")?,
                },
                behind: row.try_get("behind")?,
            })
        })
        .collect()
}

/// Makes a stopped projection try its event again at once (after a fix);
/// false when it had not stopped.
pub async fn retry(pool: &PgPool, projection: &str) -> Result<bool, StoreError> {
    let due = sqlx::query("UPDATE projection_failures SET next_attempt_at = now() WHERE projection = $1")
        .bind(projection)
        .execute(pool)
        .await?;
    // Wake the runners of every process rather than wait for their poll.
    sqlx::query("SELECT pg_notify($1, '')")
        .bind(EVENTS_CHANNEL)
        .execute(pool)
        .await?;
    Ok(due.rows_affected() == 1)
}
