//! The checkpoints: where each projection stands, locked and moved with
//! its batch, and watched by the requests waiting for their writes.

use std::collections::HashMap;
use std::time::Duration;

use sqlx::postgres::{PgListener, PgRow};
use sqlx::{PgConnection, PgPool, Row};
use tokio::sync::watch;

use super::*;
use crate::store::{Position, StoreError};

/// The channel a batch notifies when it moves a checkpoint.
pub const CHECKPOINTS_CHANNEL: &str = "projection_checkpoints";

/// Every projection's checkpoint as this process last read it. One task
/// reads them when a batch commits (`NOTIFY`, from any process) and every
/// 50 ms otherwise; requests waiting for their writes to show only watch
/// it, so a rush of waiting requests costs no query at all.
#[derive(Clone)]
pub struct Checkpoints {
    current: watch::Receiver<HashMap<String, Position>>,
}

impl Checkpoints {
    /// Starts watching; the watch ends when the last clone is dropped.
    pub fn watch(pool: PgPool) -> Checkpoints {
        let (sender, current) = watch::channel(HashMap::new());
        tokio::spawn(async move {
            loop {
                let mut listener = PgListener::connect_with(&pool).await.ok();
                if let Some(listener) = listener.as_mut() {
                    if listener.listen(CHECKPOINTS_CHANNEL).await.is_err() {
                        tracing::warn!("cannot listen for checkpoints; polling only");
                    }
                }
                loop {
                    match read_checkpoints(&pool).await {
                        Ok(read) => {
                            sender.send_if_modified(|known| {
                                let changed = *known != read;
                                *known = read;
                                changed
                            });
                        }
                        Err(error) => tracing::warn!(%error, "cannot read the checkpoints"),
                    }
                    let notified = async {
                        match listener.as_mut() {
                            Some(listener) => listener.try_recv().await.map(|_| ()).is_ok(),
                            None => std::future::pending().await,
                        }
                    };
                    tokio::select! {
                        ok = notified => if !ok { break },
                        _ = tokio::time::sleep(Duration::from_millis(50)) => {}
                        _ = sender.closed() => return,
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Checkpoints { current }
    }

    /// Waits until every named projection has applied the event at
    /// `position`; false when `timeout` passed first.
    pub async fn wait_for(&self, position: Position, projections: &[&str], timeout: Duration) -> bool {
        let mut current = self.current.clone();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let reached = {
                let known = current.borrow_and_update();
                projections
                    .iter()
                    .all(|name| known.get(*name).is_some_and(|p| *p >= position))
            };
            if reached {
                return true;
            }
            match tokio::time::timeout_at(deadline, current.changed()).await {
                Ok(Ok(())) => continue,
                _ => return false,
            }
        }
    }
}

/// The columns [`checkpoints_of`] reads, for a `SELECT ... FROM
/// projection_checkpoints`.
pub(super) const CHECKPOINT_COLUMNS: &str =
    "name, last_transaction_id::text::bigint AS transaction_id, last_position";

/// Checkpoints by projection name, from rows of [`CHECKPOINT_COLUMNS`].
pub(super) fn checkpoints_of(rows: &[PgRow]) -> Result<HashMap<String, Position>, StoreError> {
    rows.iter()
        .map(|row| {
            Ok((
                row.try_get("name")?,
                Position {
                    transaction_id: row.try_get("transaction_id")?,
                    global_position: row.try_get("last_position")?,
                },
            ))
        })
        .collect()
}

/// The checkpoints as requests waiting for their writes see them: a
/// projection stopped at an event counts as past every position, since
/// waiting for it would only make every request wait out its timeout.
pub(super) async fn read_checkpoints(pool: &PgPool) -> Result<HashMap<String, Position>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {CHECKPOINT_COLUMNS},
                EXISTS (SELECT 1 FROM projection_failures f WHERE f.projection = c.name) AS stopped
         FROM projection_checkpoints c"
    ))
    .fetch_all(pool)
    .await?;
    let mut checkpoints = checkpoints_of(&rows)?;
    for row in &rows {
        if row.try_get::<bool, _>("stopped")? {
            let name: String = row.try_get("name")?;
            checkpoints.insert(
                name,
                Position {
                    transaction_id: i64::MAX,
                    global_position: i64::MAX,
                },
            );
        }
    }
    Ok(checkpoints)
}

/// Locks the checkpoints of these projections until the transaction ends
/// (in name order, so two lockers cannot deadlock); `wait` is `""` to wait
/// for them or `"SKIP LOCKED"` to leave out those another runner holds.
pub(super) async fn lock_checkpoints(
    conn: &mut PgConnection,
    names: &[&str],
    wait: &str,
) -> Result<HashMap<String, Position>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {CHECKPOINT_COLUMNS} FROM projection_checkpoints
         WHERE name = ANY($1) ORDER BY name FOR UPDATE {wait}"
    ))
    .bind(names)
    .fetch_all(&mut *conn)
    .await?;
    checkpoints_of(&rows)
}

/// Locks a group's checkpoints as [`lock_checkpoints`] does with `SKIP
/// LOCKED`, and reads in the same statement which of them stopped at an
/// event: `false` while its next attempt is not due, `true` once it is.
pub(super) async fn lock_group(
    conn: &mut PgConnection,
    names: &[&str],
) -> Result<(HashMap<String, Position>, HashMap<String, bool>), StoreError> {
    let rows = sqlx::query(
        "SELECT c.name, c.last_transaction_id::text::bigint AS transaction_id, c.last_position,
                f.next_attempt_at <= now() AS due
         FROM projection_checkpoints c LEFT JOIN projection_failures f ON f.projection = c.name
         WHERE c.name = ANY($1) ORDER BY c.name FOR UPDATE OF c SKIP LOCKED",
    )
    .bind(names)
    .fetch_all(&mut *conn)
    .await?;
    let mut stopped = HashMap::new();
    for row in &rows {
        if let Some(due) = row.try_get::<Option<bool>, _>("due")? {
            stopped.insert(row.try_get("name")?, due);
        }
    }
    Ok((checkpoints_of(&rows)?, stopped))
}

/// Moves the checkpoints as [`advance_checkpoints`] does, and in the same
/// statement looks at the committed events past `position`, up to
/// `limit * PASS_OVER` of them: whether one is of the aggregate types
/// `interest` names (`None`: of any type).
pub(super) async fn advance_checkpoints_looking_ahead(
    conn: &mut PgConnection,
    names: &[&str],
    position: Position,
    interest: Option<&[&str]>,
    limit: i64,
) -> Result<bool, StoreError> {
    // The look-ahead is ordered and limited in a subquery of its own, so
    // that it stays a walk along the commit-order index (see the probe in
    // `run_group_batch`).
    static LOOKING_AHEAD: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
        format!(
            "WITH moved AS (
               UPDATE projection_checkpoints
               SET last_transaction_id = $2::text::xid8, last_position = $3, updated_at = now()
               WHERE name = ANY($1) AND (last_transaction_id, last_position) < ($2::text::xid8, $3))
             SELECT {}",
            crate::store::sql::any_ahead("$2::text::xid8", "$3", "$4", "$5")
        )
    });
    Ok(sqlx::query_scalar(&LOOKING_AHEAD)
        .bind(names)
        .bind(position.transaction_id.to_string())
        .bind(position.global_position)
        .bind(interest)
        .bind(limit.saturating_mul(PASS_OVER))
        .fetch_one(&mut *conn)
        .await?)
}

/// Moves these checkpoints to `position`; one already past it stays.
pub(super) async fn advance_checkpoints(
    conn: &mut PgConnection,
    names: &[&str],
    position: Position,
) -> Result<(), StoreError> {
    sqlx::query(
        "UPDATE projection_checkpoints
         SET last_transaction_id = $2::text::xid8, last_position = $3, updated_at = now()
         WHERE name = ANY($1) AND (last_transaction_id, last_position) < ($2::text::xid8, $3)",
    )
    .bind(names)
    .bind(position.transaction_id.to_string())
    .bind(position.global_position)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
