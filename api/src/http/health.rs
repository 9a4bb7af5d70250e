//! Health: whether the server is alive, and ready (the database answers;
//! any projection stopped at an event is named).

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{Connection, PgPool};
use tokio::sync::watch;

use super::AppState;

/// Whether the database answered its last ping. A task pings it twice a
/// second on a connection of its own (a pool saturated by a rush is not an
/// outage; each connect and ping given one second): during an outage,
/// requests are answered `UNAVAILABLE` at once instead of each waiting for
/// the pool, and those already running are cut short (see [`Self::lost`]).
#[derive(Clone)]
pub struct DatabaseWatch {
    up: watch::Receiver<bool>,
}

impl DatabaseWatch {
    pub(super) fn start(pool: PgPool) -> DatabaseWatch {
        let (sender, up) = watch::channel(true);
        let options = pool.connect_options();
        tokio::spawn(async move {
            let mut connection: Option<PgConnection> = None;
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                if sender.is_closed() {
                    return;
                }
                let answered = match ping_on(&mut connection, &options).await {
                    Ok(()) => true,
                    Err(error) => {
                        // A connection that failed once is not trusted again.
                        connection = None;
                        if *sender.borrow() {
                            tracing::warn!(%error, "database not reachable");
                        }
                        false
                    }
                };
                if sender.send_replace(answered) != answered && answered {
                    tracing::info!("database reachable again");
                }
            }
        });
        DatabaseWatch { up }
    }

    pub fn is_up(&self) -> bool {
        *self.up.borrow()
    }

    /// Resolves once the database is seen unreachable (at once if it is
    /// now): a request racing it stops waiting for a connection that will
    /// not come, and is told `UNAVAILABLE` with the others.
    pub async fn lost(&self) {
        let mut up = self.up.clone();
        if up.wait_for(|up| !up).await.is_err() {
            // No watch any more (the server is stopping): nothing is lost.
            std::future::pending::<()>().await;
        }
    }
}

/// `SELECT 1` on the watch's own connection, opened if there is none;
/// each step given one second.
async fn ping_on(connection: &mut Option<PgConnection>, options: &PgConnectOptions) -> Result<(), String> {
    let second = Duration::from_secs(1);
    if connection.is_none() {
        let opened = tokio::time::timeout(second, PgConnection::connect_with(options))
            .await
            .map_err(|_| "no connection within a second".to_string())?
            .map_err(|error| error.to_string())?;
        *connection = Some(opened);
    }
    let Some(open) = connection.as_mut() else {
        return Err("no connection".into());
    };
    match tokio::time::timeout(second, sqlx::query("SELECT 1").execute(open)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err("no answer within a second".into()),
    }
}

/// `SELECT 1`, given one second.
async fn ping(pool: &PgPool) -> Result<(), String> {
    match tokio::time::timeout(Duration::from_secs(1), sqlx::query("SELECT 1").execute(pool)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err("no answer within a second".into()),
    }
}

/// Ready when the database answers within a second: a load balancer asks
/// often, and must hear "no" at once during an outage, not after the
/// pool's own timeout. The answer names any projection stopped at an event.
pub(super) async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    if !state.database.is_up() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "database not reachable".to_string(),
        );
    }
    if let Err(error) = ping(&state.pool).await {
        tracing::warn!(%error, "database not reachable");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "database not reachable".to_string(),
        );
    }
    // A projection stopped at an event leaves the server able to serve
    // (its read model lags; the others do not): ready, and saying so.
    match espace_famille_projections::engine::failures::list(&state.pool).await {
        Ok(failures) if failures.is_empty() => (StatusCode::OK, "ready".to_string()),
        Ok(failures) => {
            let stopped: Vec<String> = failures
                .iter()
                .map(|f| {
                    format!(
                        "{} stopped at event {} ({} attempts): {}",
                        f.projection, f.event_id, f.attempts, f.error
                    )
                })
                .collect();
            (StatusCode::OK, format!("ready; {}", stopped.join("; ")))
        }
        Err(error) => {
            tracing::warn!(%error, "cannot read the projections' failures");
            (StatusCode::OK, "ready".to_string())
        }
    }
}
