//! Health: whether the server is alive, and ready (the database answers;
//! any projection stopped at an event is named).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use sqlx::PgPool;

use super::AppState;

/// Whether the database answered its last ping. A task pings it twice a
/// second (each ping given one second): during an outage, requests are
/// answered `UNAVAILABLE` at once instead of each waiting for the pool.
#[derive(Clone)]
pub struct DatabaseWatch {
    up: Arc<std::sync::atomic::AtomicBool>,
}

impl DatabaseWatch {
    pub(super) fn start(pool: PgPool) -> DatabaseWatch {
        let watch = DatabaseWatch {
            up: Arc::new(std::sync::atomic::AtomicBool::new(true)),
        };
        let up = Arc::downgrade(&watch.up);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let Some(up) = up.upgrade() else { return };
                let answered = ping(&pool).await.is_ok();
                if up.swap(answered, std::sync::atomic::Ordering::Relaxed) != answered {
                    if answered {
                        tracing::info!("database reachable again");
                    } else {
                        tracing::warn!("database not reachable");
                    }
                }
            }
        });
        watch
    }

    pub fn is_up(&self) -> bool {
        self.up.load(std::sync::atomic::Ordering::Relaxed)
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
