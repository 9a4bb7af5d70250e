//! The fence: a horizon the runners raise past transactions that hold the
//! snapshot's own one back but write no event — a transaction left open in
//! another database of the server (transaction ids are server-wide), or one
//! here that writes other tables. Without it, such a transaction stopped
//! every projection for as long as it stayed open.
//!
//! Safe because writers of events and the runner agree through one
//! advisory lock (see the migration `events_fence`): a statement inserting
//! events holds it shared until its transaction ends, and is refused when
//! its transaction is older than the fence; the fence is raised under the
//! exclusive lock, to the xmax of a snapshot taken then. Below the new
//! fence, every transaction has ended or never wrote an event, and now
//! never will: no event can still appear there.
//!
//! A writer refused by the fence gets SQLSTATE 40001, which the store
//! reads as a lost race ([`StoreError::Conflict`]): its command is tried
//! again, in a new transaction.

use std::time::Duration;

use sqlx::PgPool;

use crate::store::StoreError;

/// How long raising the fence waits for the writers of events in flight;
/// new writers queue behind it meanwhile, so it is short.
pub const LOCK_WAIT: Duration = Duration::from_millis(100);

/// Raises the fence to the present, waiting at most [`LOCK_WAIT`] for the
/// transactions that wrote events to end. True when it was raised; false
/// when such a transaction is still open (the horizon then truly waits for
/// it).
pub async fn raise(pool: &PgPool) -> Result<bool, StoreError> {
    let mut tx = pool.begin().await?;
    sqlx::query(&format!("SET LOCAL lock_timeout = '{}ms'", LOCK_WAIT.as_millis()))
        .execute(&mut *tx)
        .await?;
    match sqlx::query("SELECT pg_advisory_xact_lock(4243)")
        .execute(&mut *tx)
        .await
    {
        Ok(_) => {}
        // 55P03: lock_not_available, the wait ran out.
        Err(sqlx::Error::Database(db)) if db.code().as_deref() == Some("55P03") => {
            tx.rollback().await?;
            return Ok(false);
        }
        Err(error) => return Err(error.into()),
    }
    sqlx::query("UPDATE events_fence SET fence = greatest(fence, pg_snapshot_xmax(pg_current_snapshot()))")
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(true)
}
