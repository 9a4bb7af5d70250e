//! One batch of a group: lock its checkpoints, read once, apply to each
//! projection from its own checkpoint, move the checkpoints, commit.

use std::time::Duration;

use sqlx::{PgConnection, PgPool};

use super::*;
use crate::store::{Position, RecordedEvent, StoreError};

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

pub(super) async fn run_group_batch_as(
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
    let interest = group_reads(projections);
    let passed = match &interest {
        None => Passed::all(read_after(&mut tx, lowest, batch_size, metadata.as_deref()).await?),
        Some(types) => read_after_of_types(&mut tx, lowest, batch_size, types, metadata.as_deref()).await?,
    };
    let Some(last) = passed.last else {
        let pending = crate::store::has_events_after(&mut tx, lowest).await?;
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
pub(super) struct HeldBack {
    since: Option<tokio::time::Instant>,
    next_raise: Option<tokio::time::Instant>,
    backoff: Duration,
}

impl HeldBack {
    pub(super) async fn wait(&mut self, pool: &PgPool) -> Result<(), StoreError> {
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

/// How a batch is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    Live,
    /// A rebuild's.
    Fill,
}

/// Applies to `projection` the events of `events` of the aggregate types it
/// reads (all of them when it names none, or when all are of its types).
pub(super) async fn apply_its_events(
    conn: &mut PgConnection,
    projection: &dyn Projection,
    events: &[RecordedEvent],
    mode: Mode,
) -> Result<(), StoreError> {
    pub(super) async fn apply(
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
