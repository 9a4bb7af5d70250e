//! The server's housekeeping at an interval, each job a task of its own
//! ([`every`]; the payments' reconciliation runs on it too):
//!
//! - the store's new events sealed (see
//!   [`espace_famille_projections::store::integrity`]). Several servers may
//!   run it: the database seals under a lock, and a seal with nothing new
//!   is not written;
//! - the files folder swept of what no stored file holds (see
//!   [`crate::files::Files::sweep`]), at start and then at the same
//!   interval. Several servers may sweep: each file is removed under the
//!   lock its writers take.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use espace_famille_projections::store::integrity;
use sqlx::PgPool;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::files::Files;

/// A job run at an interval until shut down.
pub struct Worker {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Worker {
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Runs `job` every `every`, the first time after `first`.
pub fn every<F, J>(first: Duration, every: Duration, mut job: J) -> Worker
where
    J: FnMut() -> F + Send + 'static,
    F: Future<Output = ()> + Send,
{
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        let mut wait = first;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stopped.changed() => return,
            }
            // A shutdown waits for the job under way, not for the next.
            job().await;
            wait = every;
        }
    });
    Worker { stop, task }
}

/// Seals every `interval`, the first time after one interval.
pub fn sealing(pool: PgPool, interval: Duration) -> Worker {
    every(interval, interval, move || {
        let pool = pool.clone();
        async move {
            match integrity::seal(&pool).await {
                Ok(Some(seal)) => tracing::info!(seal = seal.seal, events = seal.events, "events sealed"),
                Ok(None) => {}
                Err(error) => tracing::warn!(%error, "events not sealed; will retry"),
            }
        }
    })
}

/// Sweeps the files folder at start, then every `interval`.
pub fn sweeping(pool: PgPool, files: Arc<Files>, interval: Duration) -> Worker {
    every(Duration::ZERO, interval, move || {
        let (pool, files) = (pool.clone(), files.clone());
        async move {
            match files.sweep(&pool).await {
                Ok(swept) if swept.removed > 0 => {
                    tracing::info!(removed = swept.removed, "files no request holds removed")
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(
                    error = format!("{error:#}"),
                    "the files folder was not swept; will retry"
                ),
            }
        }
    })
}
