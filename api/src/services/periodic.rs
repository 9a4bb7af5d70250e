//! The worker that seals the store's new events at an interval (see
//! [`espace_famille_projections::store::integrity`]). Several servers may
//! run it: the database seals under a lock, and a seal with nothing new
//! is not written.

use std::time::Duration;

use espace_famille_projections::store::integrity;
use sqlx::PgPool;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub struct SealWorker {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl SealWorker {
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Seals every `every`, the first time after one interval.
pub fn start(pool: PgPool, every: Duration) -> SealWorker {
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                _ = tokio::time::sleep(every) => {}
                _ = stopped.changed() => return,
            }
            match integrity::seal(&pool).await {
                Ok(Some(seal)) => tracing::info!(seal = seal.seal, events = seal.events, "events sealed"),
                Ok(None) => {}
                Err(error) => tracing::warn!(%error, "events not sealed; will retry"),
            }
        }
    });
    SealWorker { stop, task }
}
