//! The projection engine: one mechanism for every read model.
//!
//! - Events are read in commit order, `(transaction_id, global_position)`,
//!   and only below `pg_snapshot_xmin(pg_current_snapshot())`, or below
//!   the [`fence`] when a runner raised it past transactions that write no
//!   event: every transaction below that horizon has finished or can no
//!   longer write an event, so no event can appear later behind the
//!   checkpoint (gap safety without timeouts).
//! - A batch and the checkpoint it reaches are written in one transaction:
//!   each event takes effect exactly once.
//! - Runners wake on `NOTIFY events_appended`, which writers send after
//!   their commit ([`Announcer`]) naming the aggregate types they wrote, and
//!   poll as a fallback. A group that reads only some types wakes only for
//!   those; a batch that stops short of committed events it reads (held
//!   back by an older open transaction) runs again without being woken.
//! - Projections run in groups: a group's runner reads each batch once and
//!   feeds every projection of the group, each from its own checkpoint.
//! - One runner per group is active across all processes (a session
//!   advisory lock); the others stand by. The checkpoint rows are also
//!   locked for each batch, so even two active runners could not apply an
//!   event twice.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgListener, PgRow};
use sqlx::{Connection, PgConnection, PgPool, Row};
use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;

use crate::store::{Position, RecordedEvent, StoreError};

/// The channel that tells runners new events were committed.
pub const EVENTS_CHANNEL: &str = "events_appended";

pub mod failures;
pub mod fence;

/// A read model (or process manager) fed by the engine.
#[async_trait]
pub trait Projection: Send + Sync + 'static {
    /// Stable name: the checkpoint's key.
    fn name(&self) -> &'static str;

    /// The tables this projection owns, rebuilt from zero by [`rebuild`].
    /// Its SQL must name them unqualified, so a rebuild can redirect them.
    fn tables(&self) -> &'static [&'static str];

    /// The aggregate types whose events this projection is handed; `None`,
    /// the default: every event. A group whose projections all name theirs
    /// reads only those events (and still moves its checkpoints past the
    /// others): a process manager that waits for one kind of family event
    /// is not handed every reservation of a booking rush.
    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        None
    }

    /// The event types whose metadata (actor, correlation, request time)
    /// this projection reads; `None`, the default: every event's. A group
    /// reads the metadata only of the events whose types one of its
    /// projections names; the others come with none.
    fn metadata_of(&self) -> Option<&'static [&'static str]> {
        None
    }

    /// Whether a rebuild may fill this projection's tables before their
    /// primary and unique keys exist: its [`Projection::fill`] then writes
    /// no two rows with one key, and keeps whatever needs a lookup for
    /// [`Projection::settle`]. One sorted build of a key over a filled table
    /// costs far less than keeping it up to date row by row.
    fn fills_without_keys(&self) -> bool {
        false
    }

    /// Applies a batch of a rebuild, which starts from the first event with
    /// empty tables and fills them to the last; by default as a live batch.
    async fn fill(&self, conn: &mut PgConnection, events: &[RecordedEvent]) -> Result<(), StoreError> {
        self.apply_batch(conn, events).await
    }

    /// Completes what [`Projection::fill`] left so far: before the tables
    /// are compared with the live ones (their keys may not exist yet, and
    /// the fill goes on afterwards), and at the end, once the keys exist.
    async fn settle(&self, _conn: &mut PgConnection) -> Result<(), StoreError> {
        Ok(())
    }

    /// Applies one event inside the batch's transaction.
    async fn apply(&self, conn: &mut PgConnection, event: &RecordedEvent) -> Result<(), StoreError>;

    /// Applies a batch of events, in order, inside one transaction. By
    /// default one by one; a read model on the hot path folds the batch and
    /// writes it with a few set-based statements instead.
    async fn apply_batch(&self, conn: &mut PgConnection, events: &[RecordedEvent]) -> Result<(), StoreError> {
        for event in events {
            self.apply(conn, event).await?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub batch_size: i64,
    /// How often an idle runner looks for events it was not notified of.
    pub poll_interval: Duration,
    /// How often a standby runner tries to become the active one.
    pub standby_interval: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            batch_size: 500,
            poll_interval: Duration::from_millis(500),
            standby_interval: Duration::from_secs(2),
        }
    }
}

/// What one batch did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchOutcome {
    /// Went past this many events, applying those the group reads (0:
    /// nothing committed past the checkpoint).
    Applied(usize),
    /// Went past this many events, and committed events the group reads
    /// follow them: held back by an older transaction still open, or
    /// committed since the batch read. The runner goes on at once rather
    /// than wait to be woken: their announcement may have come already.
    Unfinished(usize),
    /// Committed events exist past the checkpoint but an older transaction
    /// is still open: they become readable when it ends.
    HeldBack,
    /// Another runner holds the checkpoint right now.
    Busy,
}

/// Creates the checkpoint rows of these projections if they are missing.
pub async fn register(pool: &PgPool, projections: &[Arc<dyn Projection>]) -> Result<(), StoreError> {
    for projection in projections {
        sqlx::query("INSERT INTO projection_checkpoints (name) VALUES ($1) ON CONFLICT (name) DO NOTHING")
            .bind(projection.name())
            .execute(pool)
            .await?;
    }
    Ok(())
}

/// The next events in commit order, below the horizon: the snapshot's, or
/// the fence when a runner raised it higher (see [`fence`]).
const EVENTS_AFTER: &str = "WHERE (e.transaction_id, e.global_position) > ($1::text::xid8, $2)
       AND e.transaction_id < greatest(pg_snapshot_xmin(pg_current_snapshot()),
                                       (SELECT fence FROM events_fence))
     ORDER BY e.transaction_id, e.global_position";

/// Reads up to `limit` events after `after` in commit order, below the
/// snapshot horizon, with the metadata of the events of the types
/// `metadata_of` names (`None`: of every event).
pub async fn read_after(
    conn: &mut PgConnection,
    after: Position,
    limit: i64,
    metadata_of: Option<&[&str]>,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let rows = fetch_after(conn, after, limit, metadata_of).await?;
    rows.iter().map(RecordedEvent::from_row).collect()
}

/// [`read_after`]'s rows, not yet decoded.
async fn fetch_after(
    conn: &mut PgConnection,
    after: Position,
    limit: i64,
    metadata_of: Option<&[&str]>,
) -> Result<Vec<PgRow>, StoreError> {
    Ok(sqlx::query(&format!(
        "{} {EVENTS_AFTER} LIMIT $3",
        RecordedEvent::select_with_metadata_of("$4")
    ))
    .bind(after.transaction_id.to_string())
    .bind(after.global_position)
    .bind(limit)
    .bind(metadata_of)
    .fetch_all(&mut *conn)
    .await?)
}

/// How many events a group that reads only some aggregate types may go
/// past in one batch, as a multiple of its batch size. Going past an event
/// costs one entry of an index-only scan; a batch costs a transaction. A
/// group that reads only families' events, woken by its polls during a
/// rush of baskets, would otherwise crawl through the reservations one
/// batch size at a time.
pub const PASS_OVER: i64 = 20;

/// The events after `after` of these aggregate types, at most `limit` of
/// them, among the next `limit * PASS_OVER` events: how many events were
/// passed, the position of the last (whatever its type: where the reader
/// may move to), and the events of these types. The range is fixed first,
/// below the horizon, so no event can still appear inside it when its
/// events of these types are read; when more than `limit` of them are in
/// it, it ends at the last one read.
pub async fn read_after_of_types(
    conn: &mut PgConnection,
    after: Position,
    limit: i64,
    aggregate_types: &[&str],
    metadata_of: Option<&[&str]>,
) -> Result<Passed, StoreError> {
    let end = sqlx::query(&format!(
        "SELECT transaction_id::text::bigint, global_position, count(*) OVER ()
         FROM (SELECT e.transaction_id, e.global_position FROM events e {EVENTS_AFTER} LIMIT $3) range
         ORDER BY transaction_id DESC, global_position DESC LIMIT 1"
    ))
    .bind(after.transaction_id.to_string())
    .bind(after.global_position)
    .bind(limit.saturating_mul(PASS_OVER))
    .fetch_optional(&mut *conn)
    .await?;
    let Some(end) = end else {
        return Ok(Passed::default());
    };
    let count: i64 = end.try_get(2)?;
    let end = Position {
        transaction_id: end.try_get(0)?,
        global_position: end.try_get(1)?,
    };
    let rows = sqlx::query(&format!(
        "{} WHERE (e.transaction_id, e.global_position) > ($1::text::xid8, $2)
           AND (e.transaction_id, e.global_position) <= ($3::text::xid8, $4)
           AND e.aggregate_type = ANY($5)
         ORDER BY e.transaction_id, e.global_position LIMIT $7",
        RecordedEvent::select_with_metadata_of("$6")
    ))
    .bind(after.transaction_id.to_string())
    .bind(after.global_position)
    .bind(end.transaction_id.to_string())
    .bind(end.global_position)
    .bind(aggregate_types)
    .bind(metadata_of)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    let events: Vec<RecordedEvent> = rows
        .iter()
        .map(RecordedEvent::from_row)
        .collect::<Result<_, _>>()?;
    let cut = match events.last() {
        Some(last) if events.len() as i64 >= limit && last.position < end => last.position,
        _ => {
            return Ok(Passed {
                count: count as usize,
                last: Some(end),
                events,
            })
        }
    };
    // A full batch of events it reads: the batch ends at the last of them,
    // the rest of the range is for the next.
    let count: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events
         WHERE (transaction_id, global_position) > ($1::text::xid8, $2)
           AND (transaction_id, global_position) <= ($3::text::xid8, $4)",
    )
    .bind(after.transaction_id.to_string())
    .bind(after.global_position)
    .bind(cut.transaction_id.to_string())
    .bind(cut.global_position)
    .fetch_one(&mut *conn)
    .await?;
    Ok(Passed {
        count: count as usize,
        last: Some(cut),
        events,
    })
}

/// What one read of a batch went past.
#[derive(Debug, Default)]
pub struct Passed {
    /// How many events the read went past, read or not.
    pub count: usize,
    /// The last of them.
    pub last: Option<Position>,
    /// Those the reader reads.
    pub events: Vec<RecordedEvent>,
}

impl Passed {
    fn all(events: Vec<RecordedEvent>) -> Passed {
        Passed {
            count: events.len(),
            last: events.last().map(|e| e.position),
            events,
        }
    }
}

/// The event types whose metadata a group reads: `None` when one of its
/// projections reads every event's.
fn group_metadata(projections: &[&dyn Projection]) -> Option<Vec<&'static str>> {
    union_of(projections, |p| p.metadata_of())
}

/// What a group reads: every event, or only those of the aggregate types
/// all its projections name.
fn group_interest(projections: &[&dyn Projection]) -> Option<Vec<&'static str>> {
    union_of(projections, |p| p.aggregate_types())
}

/// The names every projection of a group gives, each once; `None` when one
/// of them gives none (it takes everything).
fn union_of(
    projections: &[&dyn Projection],
    names: impl Fn(&dyn Projection) -> Option<&'static [&'static str]>,
) -> Option<Vec<&'static str>> {
    let mut union = Vec::new();
    for projection in projections {
        for name in names(*projection)? {
            if !union.contains(name) {
                union.push(*name);
            }
        }
    }
    Some(union)
}

/// Runs one batch of `projection`: lock its checkpoint, apply what follows
/// it, move it, commit.
pub async fn run_batch(
    pool: &PgPool,
    projection: &dyn Projection,
    batch_size: i64,
) -> Result<BatchOutcome, StoreError> {
    run_group_batch(pool, &[projection], batch_size).await
}

/// Runs one batch of a group of projections: lock their checkpoints, read
/// the events after the lowest once, apply to each the part past its own
/// checkpoint, move every checkpoint to the last event read, commit. A
/// group costs one read, one notification and one commit per batch however
/// many read models it feeds.
///
/// A projection that fails on an event stops there (see [`failures`]): the
/// batch is run again with each projection in a savepoint, the failing one
/// applies the events before that one and keeps its checkpoint before it,
/// and the others go on. A stopped projection sits out the batches until
/// its next attempt is due.
#[tracing::instrument(skip_all, fields(projections = projections.len()))]
pub async fn run_group_batch(
    pool: &PgPool,
    projections: &[&dyn Projection],
    batch_size: i64,
) -> Result<BatchOutcome, StoreError> {
    // The fast way costs no savepoint; an event's failure sends the batch
    // the careful way.
    match run_group_batch_as(pool, projections, batch_size, false).await {
        Err(error) if !failures::is_transient(&error) => {
            run_group_batch_as(pool, projections, batch_size, true).await
        }
        other => other,
    }
}

async fn run_group_batch_as(
    pool: &PgPool,
    projections: &[&dyn Projection],
    batch_size: i64,
    careful: bool,
) -> Result<BatchOutcome, StoreError> {
    let names: Vec<&str> = projections.iter().map(|p| p.name()).collect();
    let mut tx = pool.begin().await?;
    let (checkpoints, stopped) = lock_group(&mut tx, &names).await?;
    if checkpoints.len() < names.len() {
        return Ok(BatchOutcome::Busy);
    }
    // Projections stopped at an event sit out until their next attempt.
    let projections: Vec<&dyn Projection> = projections
        .iter()
        .copied()
        .filter(|p| stopped.get(p.name()) != Some(&false))
        .collect();
    if projections.is_empty() {
        tx.rollback().await?;
        return Ok(BatchOutcome::Applied(0));
    }
    let names: Vec<&str> = projections.iter().map(|p| p.name()).collect();
    let projections = &projections[..];
    let lowest = names
        .iter()
        .filter_map(|name| checkpoints.get(*name))
        .copied()
        .min()
        .unwrap_or_default();
    let metadata = group_metadata(projections);
    let interest = group_interest(projections);
    let passed = match &interest {
        None => Passed::all(read_after(&mut tx, lowest, batch_size, metadata.as_deref()).await?),
        Some(types) => read_after_of_types(&mut tx, lowest, batch_size, types, metadata.as_deref()).await?,
    };
    let Some(last) = passed.last else {
        // The first event past the checkpoint, ordered and limited so that
        // it is one probe of the commit-order index. An EXISTS was planned
        // as a sequential scan expecting an early match (the planner drops
        // an ORDER BY inside EXISTS), reading the whole table when there
        // was none: 50-100 ms on every idle poll.
        let pending = sqlx::query(
            "SELECT 1 FROM events WHERE (transaction_id, global_position) > ($1::text::xid8, $2)
             ORDER BY transaction_id, global_position LIMIT 1",
        )
        .bind(lowest.transaction_id.to_string())
        .bind(lowest.global_position)
        .fetch_optional(&mut *tx)
        .await?
        .is_some();
        tx.rollback().await?;
        return Ok(if pending {
            BatchOutcome::HeldBack
        } else {
            BatchOutcome::Applied(0)
        });
    };
    let events = &passed.events;
    let mut halted: Vec<(&str, Option<Position>)> = Vec::new();
    for projection in projections {
        let checkpoint = checkpoints.get(projection.name()).copied().unwrap_or_default();
        let unseen = &events[events.partition_point(|e| e.position <= checkpoint)..];
        if unseen.is_empty() {
            continue;
        }
        if !careful {
            apply_its_events(&mut tx, *projection, unseen, Mode::Live).await?;
            continue;
        }
        if let failures::Applied::StoppedAt {
            last_applied,
            event,
            error,
        } = failures::apply_until_failure(&mut tx, *projection, unseen).await?
        {
            failures::record(&mut tx, projection.name(), &event, &error).await?;
            halted.push((projection.name(), last_applied));
        }
    }
    let going: Vec<&str> = names
        .iter()
        .copied()
        .filter(|name| !halted.iter().any(|(h, _)| h == name))
        .collect();
    let resumed: Vec<&str> = going
        .iter()
        .copied()
        .filter(|name| stopped.get(*name) == Some(&true))
        .collect();
    failures::clear(&mut tx, &resumed).await?;
    for (name, last_applied) in &halted {
        if let Some(position) = last_applied {
            advance_checkpoints(&mut tx, &[name], *position).await?;
        }
    }
    let more =
        advance_checkpoints_looking_ahead(&mut tx, &going, last, interest.as_deref(), batch_size).await?;
    tx.commit().await?;
    // After the commit and on its own, for the reason given on `Announcer`:
    // inside the batch's transaction the notification lock would be held
    // through the batch's WAL flush, and every writer's announcement would
    // wait for it. The batch is committed whatever happens to the
    // notification: the watchers also poll.
    if let Err(error) = sqlx::query("SELECT pg_notify($1, '')")
        .bind(CHECKPOINTS_CHANNEL)
        .execute(pool)
        .await
    {
        tracing::warn!(%error, "cannot announce the new checkpoints; the watchers will poll");
    }
    tracing::debug!(
        passed = passed.count,
        applied = events.len(),
        "projection batch committed"
    );
    Ok(if more {
        BatchOutcome::Unfinished(passed.count)
    } else {
        BatchOutcome::Applied(passed.count)
    })
}

/// Applies batches until nothing committed is left to apply.
pub async fn catch_up(
    pool: &PgPool,
    projection: &dyn Projection,
    batch_size: i64,
) -> Result<usize, StoreError> {
    let mut total = 0;
    let mut held = HeldBack::default();
    loop {
        match run_batch(pool, projection, batch_size).await? {
            BatchOutcome::Applied(0) => return Ok(total),
            BatchOutcome::Applied(n) | BatchOutcome::Unfinished(n) => {
                total += n;
                held = HeldBack::default();
            }
            BatchOutcome::HeldBack => {
                held.wait(pool).await?;
            }
            BatchOutcome::Busy => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
}

/// How a runner waits while committed events are held back by an older
/// transaction still open: briefly at first; past 100 ms it raises the
/// fence (see [`fence`]), and after a raise that found a writer of events
/// still open, waits longer before the next (up to 2 s), since each raise
/// makes new writers queue for up to [`fence::LOCK_WAIT`].
#[derive(Default)]
struct HeldBack {
    since: Option<tokio::time::Instant>,
    next_raise: Option<tokio::time::Instant>,
    backoff: Duration,
}

impl HeldBack {
    async fn wait(&mut self, pool: &PgPool) -> Result<(), StoreError> {
        let now = tokio::time::Instant::now();
        let since = *self.since.get_or_insert(now);
        let due = self.next_raise.is_none_or(|at| now >= at);
        if now - since >= Duration::from_millis(100) && due {
            if fence::raise(pool).await? {
                tracing::debug!("fence raised past transactions that write no event");
                self.backoff = Duration::ZERO;
                self.next_raise = None;
                return Ok(());
            }
            self.backoff = (self.backoff * 2).clamp(Duration::from_millis(250), Duration::from_secs(2));
            self.next_raise = Some(tokio::time::Instant::now() + self.backoff);
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
        Ok(())
    }
}

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
struct Waker {
    reads: Option<Vec<&'static str>>,
    notify: Arc<Notify>,
}

impl Waker {
    /// Wakes the runner if the announced types concern it. An announcement
    /// that names none (sent by a writer that does not say) concerns all.
    fn wake_for(&self, announced: &str) {
        let concerned = match &self.reads {
            None => true,
            Some(reads) => announced.is_empty() || announced.split(',').any(|t| reads.contains(&t)),
        };
        if concerned {
            self.notify.notify_one();
        }
    }
}

async fn listen(pool: PgPool, wakers: Vec<Waker>, mut stopped: watch::Receiver<bool>) {
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

struct Runner {
    pool: PgPool,
    /// The group's projections' names, joined: its advisory lock's key.
    name: String,
    projections: Vec<Arc<dyn Projection>>,
    config: EngineConfig,
    waker: Arc<Notify>,
    stopped: watch::Receiver<bool>,
}

impl Runner {
    async fn run(mut self) {
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
    async fn lead(&mut self) -> Result<(), StoreError> {
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

    async fn drive(&mut self, lock: &mut PgConnection) -> Result<(), StoreError> {
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
    async fn pause(&mut self, duration: Duration) -> bool {
        pause(&mut self.stopped, duration).await
    }
}

async fn pause(stopped: &mut watch::Receiver<bool>, duration: Duration) -> bool {
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
const CHECKPOINT_COLUMNS: &str = "name, last_transaction_id::text::bigint AS transaction_id, last_position";

/// Checkpoints by projection name, from rows of [`CHECKPOINT_COLUMNS`].
fn checkpoints_of(rows: &[PgRow]) -> Result<HashMap<String, Position>, StoreError> {
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
async fn read_checkpoints(pool: &PgPool) -> Result<HashMap<String, Position>, StoreError> {
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
async fn lock_checkpoints(
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
async fn lock_group(
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
async fn advance_checkpoints_looking_ahead(
    conn: &mut PgConnection,
    names: &[&str],
    position: Position,
    interest: Option<&[&str]>,
    limit: i64,
) -> Result<bool, StoreError> {
    // The look-ahead is ordered and limited in a subquery of its own, so
    // that it stays a walk along the commit-order index (see the probe in
    // `run_group_batch`).
    Ok(sqlx::query_scalar(
        "WITH moved AS (
           UPDATE projection_checkpoints
           SET last_transaction_id = $2::text::xid8, last_position = $3, updated_at = now()
           WHERE name = ANY($1) AND (last_transaction_id, last_position) < ($2::text::xid8, $3))
         SELECT EXISTS (
           SELECT 1 FROM (SELECT aggregate_type FROM events
                          WHERE (transaction_id, global_position) > ($2::text::xid8, $3)
                          ORDER BY transaction_id, global_position LIMIT $5) ahead
           WHERE $4::text[] IS NULL OR ahead.aggregate_type = ANY($4))",
    )
    .bind(names)
    .bind(position.transaction_id.to_string())
    .bind(position.global_position)
    .bind(interest)
    .bind(limit.saturating_mul(PASS_OVER))
    .fetch_one(&mut *conn)
    .await?)
}

/// Moves these checkpoints to `position`; one already past it stays.
async fn advance_checkpoints(
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

/// What a rebuild did and found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rebuild {
    /// The events read (once) and applied to every projection.
    pub events: usize,
    /// Each projection's comparison, in the order they were given.
    pub reports: Vec<RebuildReport>,
}

/// What a rebuild found for one projection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebuildReport {
    pub projection: &'static str,
    /// Whether the rebuilt tables held exactly the rows of the live ones.
    pub matched_live: bool,
}

/// Rebuilds projections from position zero into fresh tables, reading the
/// store once for all of them: each up to its live checkpoint, where its
/// tables are compared with the live ones, then all on to the last
/// committed event; then the tables are swapped in and the checkpoints
/// moved, all in one transaction that holds the checkpoints (the live
/// runners wait meanwhile).
#[tracing::instrument(skip_all, fields(projections = projections.len()))]
pub async fn rebuild(pool: &PgPool, projections: &[&dyn Projection]) -> Result<Rebuild, StoreError> {
    rebuild_in_batches(pool, projections, REBUILD_BATCH).await
}

/// [`rebuild`], reading `batch` events at a time (tests use small batches to
/// spread a few events over many).
pub async fn rebuild_in_batches(
    pool: &PgPool,
    projections: &[&dyn Projection],
    batch: i64,
) -> Result<Rebuild, StoreError> {
    let mut names: Vec<&'static str> = projections.iter().map(|p| p.name()).collect();
    names.sort_unstable();
    let mut schema = format!("rebuild_{}", names.join("_"));
    schema.truncate(63);
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO projection_checkpoints (name) SELECT unnest($1::text[]) ON CONFLICT (name) DO NOTHING",
    )
    .bind(&names)
    .execute(&mut *tx)
    .await?;
    let targets = lock_checkpoints(&mut tx, &names, "").await?;
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .execute(&mut *tx)
        .await?;
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut *tx)
        .await?;
    // Sorts and hashes of the comparison, and the deferred indexes, in
    // memory rather than in temporary files.
    sqlx::query("SET LOCAL work_mem = '256MB'")
        .execute(&mut *tx)
        .await?;
    sqlx::query("SET LOCAL maintenance_work_mem = '256MB'")
        .execute(&mut *tx)
        .await?;
    // The rebuilt tables keep their unique indexes (upserts need them) and
    // get the others once filled: one sorted build instead of a random
    // insert per row.
    sqlx::query("SET LOCAL search_path = pg_catalog")
        .execute(&mut *tx)
        .await?;
    let mut deferred_indexes = Vec::new();
    let mut deferred_keys: Vec<Vec<String>> = vec![Vec::new(); projections.len()];
    for (index, table) in projections
        .iter()
        .enumerate()
        .flat_map(|(index, p)| p.tables().iter().map(move |table| (index, table)))
    {
        sqlx::query(&format!(
            "CREATE TABLE {schema}.{table} (LIKE public.{table} INCLUDING ALL)"
        ))
        .execute(&mut *tx)
        .await?;
        if projections[index].fills_without_keys() {
            let keys: Vec<(String, String)> = sqlx::query_as(
                "SELECT quote_ident(conname), pg_get_constraintdef(oid) FROM pg_constraint
                 WHERE conrelid = $1::regclass AND contype IN ('p', 'u') ORDER BY conname",
            )
            .bind(format!("{schema}.{table}"))
            .fetch_all(&mut *tx)
            .await?;
            for (name, definition) in keys {
                sqlx::query(&format!("ALTER TABLE {schema}.{table} DROP CONSTRAINT {name}"))
                    .execute(&mut *tx)
                    .await?;
                deferred_keys[index].push(format!(
                    "ALTER TABLE {schema}.{table} ADD CONSTRAINT {name} {definition}"
                ));
            }
        }
        let copies: Vec<String> = sqlx::query_scalar(
            "SELECT c.relname::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
             WHERE i.indrelid = $1::regclass AND NOT i.indisunique",
        )
        .bind(format!("{schema}.{table}"))
        .fetch_all(&mut *tx)
        .await?;
        for copy in copies {
            sqlx::query(&format!("DROP INDEX {schema}.{copy}"))
                .execute(&mut *tx)
                .await?;
        }
        let definitions: Vec<String> = sqlx::query_scalar(
            "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i
             WHERE i.indrelid = $1::regclass AND NOT i.indisunique",
        )
        .bind(format!("public.{table}"))
        .fetch_all(&mut *tx)
        .await?;
        for definition in definitions {
            let live = format!(" ON public.{table} ");
            if !definition.contains(&live) {
                return Err(StoreError::Corrupt(format!(
                    "unexpected index definition: {definition}"
                )));
            }
            deferred_indexes.push(definition.replacen(&live, &format!(" ON {schema}.{table} "), 1));
        }
    }
    sqlx::query(&format!("SET LOCAL search_path = {schema}, public"))
        .execute(&mut *tx)
        .await?;

    // The projections still to compare, the nearest live checkpoint last.
    let mut to_compare: Vec<(Position, usize)> = projections
        .iter()
        .enumerate()
        .map(|(index, p)| (targets.get(p.name()).copied().unwrap_or_default(), index))
        .collect();
    to_compare.sort_unstable_by(|a, b| b.cmp(a));
    let mut matched_live = vec![true; projections.len()];
    let mut after = Position::default();
    let mut applied = 0;
    // The store is read on a second connection, a few batches ahead: the
    // next batch is read and decoded while this one is written. Events
    // below the horizon never change, so the reader needs no snapshot of
    // its own; this transaction is open, so the horizon stays below it.
    let mut batches = read_ahead(pool.acquire().await?, batch, group_metadata(projections));
    loop {
        let events = batches
            .recv()
            .await
            .ok_or_else(|| StoreError::Corrupt("the store reader stopped".into()))??;
        let mut rest = &events[..];
        // A projection is compared once every event up to its live
        // checkpoint is applied, and none after it. Its fill so far is
        // completed, but its keys are built only at the end: built now,
        // each later row would pay an index insert (a calendar behind by a
        // million events: 2.4 s to copy its rows into a keyed table, 0.8 s
        // without the key and with its one sorted build).
        while let Some(&(target, index)) = to_compare.last() {
            let split = rest.partition_point(|e| e.position <= target);
            if split == rest.len() && !events.is_empty() {
                break;
            }
            apply_to_all(&mut tx, projections, &rest[..split]).await?;
            rest = &rest[split..];
            projections[index].settle(&mut tx).await?;
            matched_live[index] = matches_live(&mut tx, projections[index], &schema).await?;
            to_compare.pop();
        }
        apply_to_all(&mut tx, projections, rest).await?;
        applied += events.len();
        match events.last() {
            Some(event) => after = event.position,
            None => break,
        }
    }
    for (projection, keys) in projections.iter().zip(&deferred_keys) {
        settle(&mut tx, *projection, keys).await?;
    }
    for definition in &deferred_indexes {
        sqlx::query(definition).execute(&mut *tx).await?;
    }
    advance_checkpoints(&mut tx, &names, after).await?;
    for table in projections.iter().flat_map(|p| p.tables()) {
        sqlx::query(&format!("DROP TABLE public.{table}"))
            .execute(&mut *tx)
            .await?;
        sqlx::query(&format!("ALTER TABLE {schema}.{table} SET SCHEMA public"))
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query(&format!("DROP SCHEMA {schema}"))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Rebuild {
        events: applied,
        reports: projections
            .iter()
            .zip(matched_live)
            .map(|(projection, matched_live)| RebuildReport {
                projection: projection.name(),
                matched_live,
            })
            .collect(),
    })
}

/// Events read per batch of a rebuild.
const REBUILD_BATCH: i64 = 20_000;

/// Batches a rebuild's reader may hold ready.
const READ_AHEAD: usize = 2;

/// Reads the whole store in commit order, batch by batch, on its own
/// connection; an empty batch marks the end. Stops when the receiver goes.
///
/// Fetching and decoding are two tasks: the server produces the next batch
/// while this one is decoded. In one task the connection sat idle during
/// each decode, a third of the reader's time (profile of a 1M-event
/// replay: 26 % of the client's samples decoding, 19 % fetching).
fn read_ahead(
    mut conn: sqlx::pool::PoolConnection<sqlx::Postgres>,
    batch_size: i64,
    metadata_of: Option<Vec<&'static str>>,
) -> tokio::sync::mpsc::Receiver<Result<Vec<RecordedEvent>, StoreError>> {
    let (rows_sender, mut rows_receiver) = tokio::sync::mpsc::channel(1);
    let (sender, receiver) = tokio::sync::mpsc::channel(READ_AHEAD);
    tokio::spawn(async move {
        let mut after = Position::default();
        loop {
            // The next read starts after the last row; an error ends it.
            let fetched = fetch_after(&mut conn, after, batch_size, metadata_of.as_deref())
                .await
                .and_then(|rows| {
                    let last = rows.last().map(RecordedEvent::position_of_row).transpose()?;
                    Ok((rows, last))
                });
            let (rows, next) = match fetched {
                Ok((rows, last)) => (Ok(rows), last),
                Err(error) => (Err(error), None),
            };
            if rows_sender.send(rows).await.is_err() {
                return;
            }
            match next {
                Some(position) => after = position,
                None => return,
            }
        }
    });
    tokio::spawn(async move {
        while let Some(rows) = rows_receiver.recv().await {
            let batch = rows.and_then(|rows| rows.iter().map(RecordedEvent::from_row).collect());
            if sender.send(batch).await.is_err() {
                return;
            }
        }
    });
    receiver
}

/// Fills every projection of a rebuild with a batch.
async fn apply_to_all(
    conn: &mut PgConnection,
    projections: &[&dyn Projection],
    events: &[RecordedEvent],
) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    for projection in projections {
        apply_its_events(conn, *projection, events, Mode::Fill).await?;
    }
    Ok(())
}

/// Builds the keys a rebuild deferred for `projection`'s tables, then lets
/// it complete what its fill left.
async fn settle(
    conn: &mut PgConnection,
    projection: &dyn Projection,
    deferred_keys: &[String],
) -> Result<(), StoreError> {
    for key in deferred_keys {
        sqlx::query(key).execute(&mut *conn).await?;
    }
    projection.settle(conn).await
}

/// How a batch is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Live,
    /// A rebuild's.
    Fill,
}

/// Applies to `projection` the events of `events` of the aggregate types it
/// reads (all of them when it names none, or when all are of its types).
async fn apply_its_events(
    conn: &mut PgConnection,
    projection: &dyn Projection,
    events: &[RecordedEvent],
    mode: Mode,
) -> Result<(), StoreError> {
    async fn apply(
        conn: &mut PgConnection,
        projection: &dyn Projection,
        events: &[RecordedEvent],
        mode: Mode,
    ) -> Result<(), StoreError> {
        match mode {
            Mode::Live => projection.apply_batch(conn, events).await,
            Mode::Fill => projection.fill(conn, events).await,
        }
    }
    let Some(types) = projection.aggregate_types() else {
        return apply(conn, projection, events, mode).await;
    };
    let its = |e: &RecordedEvent| types.contains(&e.aggregate_type.as_str());
    if events.iter().all(its) {
        return apply(conn, projection, events, mode).await;
    }
    let events: Vec<RecordedEvent> = events.iter().filter(|e| its(e)).cloned().collect();
    if events.is_empty() {
        return Ok(());
    }
    apply(conn, projection, &events, mode).await
}

/// Whether a projection's rebuilt tables hold exactly the rows of its live
/// ones.
///
/// Each side is summed up by its row count and the sum of a 64-bit hash of
/// every row: one scan of each table, each about a quarter of the time of
/// pairing the rows. A difference goes unseen only if the hashes of the differing rows
/// happen to add up to the same sum (a chance of about one in 2^64). When
/// the sums differ, the rows are compared one by one and the differences
/// counted for the log.
async fn matches_live(
    conn: &mut PgConnection,
    projection: &dyn Projection,
    schema: &str,
) -> Result<bool, StoreError> {
    let mut matched = true;
    for table in projection.tables() {
        let live = digest(conn, &format!("public.{table}")).await?;
        let rebuilt = digest(conn, &format!("{schema}.{table}")).await?;
        if live == rebuilt {
            continue;
        }
        let differences = count_differences(conn, table, schema).await?;
        tracing::warn!(table, differences, "rebuilt read model differs from the live one");
        matched = false;
    }
    Ok(matched)
}

/// A table's row count and the sum of its rows' hashes (as text: the sum
/// outgrows 64 bits). Rows are hashed value by value, or by their text
/// when a column's type has no hash (`json`): five times slower.
async fn digest(conn: &mut PgConnection, table: &str) -> Result<(i64, String), StoreError> {
    let by_values =
        format!("SELECT count(*), coalesce(sum(hash_record_extended(t, 0)), 0)::text FROM {table} t");
    sqlx::query("SAVEPOINT digest").execute(&mut *conn).await?;
    match sqlx::query_as(&by_values).fetch_one(&mut *conn).await {
        Ok(digest) => {
            sqlx::query("RELEASE SAVEPOINT digest")
                .execute(&mut *conn)
                .await?;
            Ok(digest)
        }
        Err(sqlx::Error::Database(error)) if error.code().as_deref() == Some(UNDEFINED_FUNCTION) => {
            sqlx::query("ROLLBACK TO SAVEPOINT digest")
                .execute(&mut *conn)
                .await?;
            let by_text = format!(
                "SELECT count(*), coalesce(sum(hashtextextended(t::text, 0)), 0)::text FROM {table} t"
            );
            Ok(sqlx::query_as(&by_text).fetch_one(&mut *conn).await?)
        }
        Err(error) => Err(error.into()),
    }
}

/// PostgreSQL's error code when a type has no hash function.
const UNDEFINED_FUNCTION: &str = "42883";

/// How many rows of the live table and the rebuilt one have no equal on
/// the other side. Rows are compared by their text, which every type has.
async fn count_differences(conn: &mut PgConnection, table: &str, schema: &str) -> Result<i64, StoreError> {
    let key: Vec<String> = sqlx::query_scalar(
        "SELECT quote_ident(a.attname) FROM pg_index i
         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
         WHERE i.indrelid = $1::regclass AND i.indisprimary ORDER BY a.attnum",
    )
    .bind(format!("public.{table}"))
    .fetch_all(&mut *conn)
    .await?;
    // With a primary key, one join pairs the rows by key (a row missing on
    // one side has a null key there).
    let sql = match key.first() {
        Some(first) => {
            let on: Vec<String> = key.iter().map(|k| format!("l.{k} = r.{k}")).collect();
            format!(
                "SELECT count(*) FROM public.{table} l FULL JOIN {schema}.{table} r ON {}
                 WHERE l.{first} IS NULL OR r.{first} IS NULL OR l::text <> r::text",
                on.join(" AND ")
            )
        }
        None => format!(
            "SELECT count(*) FROM (
               (SELECT l::text FROM public.{table} l EXCEPT ALL SELECT r::text FROM {schema}.{table} r)
               UNION ALL
               (SELECT r::text FROM {schema}.{table} r EXCEPT ALL SELECT l::text FROM public.{table} l)
             ) AS differences"
        ),
    };
    Ok(sqlx::query_scalar(&sql).fetch_one(&mut *conn).await?)
}
