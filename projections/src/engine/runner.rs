//! The runners: one active per group across processes, woken by the
//! writers' announcements and by polls; the announcer.

use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::PgListener;
use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use super::*;
use crate::store::StoreError;

/// The running engine; dropping it does not stop the runners, [`shutdown`]
/// does.
///
/// [`shutdown`]: EngineHandle::shutdown
pub struct EngineHandle {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl EngineHandle {
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// Starts one runner per group of projections and the listener that wakes
/// them. The projections of a group are fed together (one read and one
/// commit per batch for all); separate groups fail and lag independently.
pub async fn start(
    pool: PgPool,
    groups: Vec<Vec<Arc<dyn Projection>>>,
    config: EngineConfig,
) -> Result<EngineHandle, StoreError> {
    for group in &groups {
        register(&pool, group).await?;
    }
    let (stop, stopped) = watch::channel(false);
    let wakers: Vec<Waker> = groups
        .iter()
        .map(|group| Waker {
            reads: group_interest(&group.iter().map(|p| p.as_ref()).collect::<Vec<_>>()),
            notify: Arc::new(Notify::new()),
        })
        .collect();
    let mut tasks = Vec::new();
    tasks.push(tokio::spawn(listen(
        pool.clone(),
        wakers.clone(),
        stopped.clone(),
    )));
    for (projections, waker) in groups.into_iter().zip(wakers.into_iter().map(|w| w.notify)) {
        let runner = Runner {
            pool: pool.clone(),
            name: projections.iter().map(|p| p.name()).collect::<Vec<_>>().join("+"),
            projections,
            config: config.clone(),
            waker,
            stopped: stopped.clone(),
        };
        tasks.push(tokio::spawn(runner.run()));
    }
    Ok(EngineHandle { stop, tasks })
}

/// How the listener wakes one group's runner: only for announcements of
/// the aggregate types it reads (`None`: of any).
#[derive(Clone)]
pub(super) struct Waker {
    reads: Option<Vec<&'static str>>,
    notify: Arc<Notify>,
}

impl Waker {
    /// Wakes the runner if the announced types concern it. An announcement
    /// that names none (sent by a writer that does not say) concerns all.
    pub(super) fn wake_for(&self, announced: &str) {
        let concerned = match &self.reads {
            None => true,
            Some(reads) => announced.is_empty() || announced.split(',').any(|t| reads.contains(&t)),
        };
        if concerned {
            self.notify.notify_one();
        }
    }
}

pub(super) async fn listen(pool: PgPool, wakers: Vec<Waker>, mut stopped: watch::Receiver<bool>) {
    loop {
        let mut listener = match PgListener::connect_with(&pool).await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(%error, "cannot listen for new events; polling only for now");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(2)) => continue,
                    _ = stopped.changed() => return,
                }
            }
        };
        if let Err(error) = listener.listen(EVENTS_CHANNEL).await {
            tracing::warn!(%error, "LISTEN failed; polling only for now");
            continue;
        }
        loop {
            tokio::select! {
                received = listener.try_recv() => match received {
                    Ok(Some(notification)) => wakers.iter().for_each(|w| w.wake_for(notification.payload())),
                    // The connection dropped: notifications may have been
                    // lost, so wake everyone, then reconnect.
                    Ok(None) => wakers.iter().for_each(|w| w.notify.notify_one()),
                    Err(error) => {
                        tracing::warn!(%error, "event listener failed; reconnecting");
                        break;
                    }
                },
                _ = stopped.changed() => return,
            }
        }
    }
}

pub(super) struct Runner {
    pool: PgPool,
    /// The group's projections' names, joined: its advisory lock's key.
    name: String,
    projections: Vec<Arc<dyn Projection>>,
    config: EngineConfig,
    waker: Arc<Notify>,
    stopped: watch::Receiver<bool>,
}

impl Runner {
    pub(super) async fn run(mut self) {
        while !*self.stopped.borrow() {
            match self.lead().await {
                Ok(()) => {}
                Err(error) => {
                    tracing::error!(projections = %self.name, %error, "projection runner failed; retrying");
                    self.pause(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// Waits to become the active runner, then runs batches until stopped.
    pub(super) async fn lead(&mut self) -> Result<(), StoreError> {
        let mut lock = self.pool.acquire().await?.detach();
        loop {
            let acquired: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(4242, hashtext($1))")
                .bind(&self.name)
                .fetch_one(&mut lock)
                .await?;
            if acquired {
                break;
            }
            if self.pause(self.config.standby_interval).await {
                return Ok(());
            }
        }
        tracing::info!(projections = %self.name, "active runner");
        let result = self.drive(&mut lock).await;
        let _ = lock.close().await;
        result
    }

    pub(super) async fn drive(&mut self, lock: &mut PgConnection) -> Result<(), StoreError> {
        let mut held = HeldBack::default();
        loop {
            if *self.stopped.borrow() {
                return Ok(());
            }
            let projections: Vec<&dyn Projection> = self.projections.iter().map(|p| p.as_ref()).collect();
            let outcome = run_group_batch(&self.pool, &projections, self.config.batch_size).await?;
            if outcome == BatchOutcome::HeldBack {
                held.wait(&self.pool).await?;
                if *self.stopped.borrow() {
                    return Ok(());
                }
                continue;
            }
            held = HeldBack::default();
            let wait = match outcome {
                BatchOutcome::Applied(n) if n as i64 >= self.config.batch_size => continue,
                BatchOutcome::Unfinished(_) => continue,
                BatchOutcome::Applied(_) => None,
                BatchOutcome::HeldBack | BatchOutcome::Busy => Some(Duration::from_millis(5)),
            };
            let stop = match wait {
                Some(short) => self.pause(short).await,
                None => {
                    // Still the leader? A dropped lock connection releases
                    // the lock; give way rather than run beside another.
                    if lock.ping().await.is_err() {
                        return Ok(());
                    }
                    tokio::select! {
                        _ = self.waker.notified() => false,
                        stop = pause(&mut self.stopped, self.config.poll_interval) => stop,
                    }
                }
            };
            if stop {
                return Ok(());
            }
        }
    }

    /// Sleeps; true when the engine is stopping.
    pub(super) async fn pause(&mut self, duration: Duration) -> bool {
        pause(&mut self.stopped, duration).await
    }
}

pub(super) async fn pause(stopped: &mut watch::Receiver<bool>, duration: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(duration) => *stopped.borrow(),
        _ = stopped.changed() => true,
    }
}

/// Tells the runners of every process that events were committed: a
/// `NOTIFY events_appended` sent on its own, after the writer's commit.
///
/// A `NOTIFY` inside the writing transaction would take PostgreSQL's
/// notification lock at commit and hold it until the commit's WAL flush
/// ended, so writers would commit one at a time, each waiting for its own
/// flush instead of sharing one. Sent alone, the `NOTIFY` writes nothing
/// that must be flushed, and holds the lock only while it queues.
/// Announcements made while one is being sent are merged into the next;
/// a lost one only delays the runners until their next poll.
///
/// An announcement names the aggregate types of the events it announces
/// (`Reservation,Family`), and the listeners wake only the runners of the
/// groups that read them: during a rush of baskets a group that reads
/// only families' events is not run once per announcement to pass over
/// reservations. It moves past them on its polls.
#[derive(Clone)]
pub struct Announcer {
    pending: tokio::sync::mpsc::Sender<()>,
    /// What was announced since the last notification was sent.
    types: Arc<std::sync::Mutex<Announced>>,
}

/// The aggregate types announced, or `None` once an announcement named
/// none (it concerns every runner).
type Announced = Option<Vec<&'static str>>;

impl Announcer {
    /// Starts the sending task; it ends when the last clone is dropped.
    pub fn start(pool: PgPool) -> Announcer {
        let (pending, mut announced) = tokio::sync::mpsc::channel(1);
        let types = Arc::new(std::sync::Mutex::new(Some(Vec::new())));
        let taken = Arc::clone(&types);
        tokio::spawn(async move {
            while announced.recv().await.is_some() {
                // Taken after the wake-up: a type added later comes with a
                // wake-up of its own, so none is left behind.
                let announced = taken
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .replace(Vec::new());
                let payload = announced.map(|types| types.join(",")).unwrap_or_default();
                if let Err(error) = sqlx::query("SELECT pg_notify($1, $2)")
                    .bind(EVENTS_CHANNEL)
                    .bind(payload)
                    .execute(&pool)
                    .await
                {
                    tracing::warn!(%error, "cannot announce new events; the runners will poll");
                }
            }
        });
        Announcer { pending, types }
    }

    /// Call once events of these aggregate types are committed; none named:
    /// events of any type.
    pub fn announce(&self, aggregate_types: &[&'static str]) {
        {
            let mut announced = self.types.lock().unwrap_or_else(|e| e.into_inner());
            match (&mut *announced, aggregate_types) {
                (_, []) => *announced = None,
                (None, _) => {}
                (Some(types), named) => {
                    for kind in named {
                        if !types.contains(kind) {
                            types.push(kind);
                        }
                    }
                }
            }
        }
        // Full: an announcement not yet sent will cover these events too.
        let _ = self.pending.try_send(());
    }
}
