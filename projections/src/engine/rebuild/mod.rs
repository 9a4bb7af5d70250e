//! Rebuilding read models from the first event into a shadow schema,
//! comparing them with the live ones, swapping them in.
//!
//! The steps are [`Shadow`]'s, each usable alone: prepare the shadow
//! tables ([`Shadow::prepare`]), fill them from the store up to a position,
//! an instant or the last event ([`Shadow::fill`]), compare a projection's
//! with its live tables ([`Shadow::compare`]), then swap them in
//! ([`Shadow::swap`]) or drop them ([`Shadow::discard`]). [`rebuild`]
//! chains them: each projection compared at its live checkpoint, all
//! filled to the last event, swapped in.
//!
//! - `shadow`: the shadow schema and its steps;
//! - `reader`: the store read once, a few batches ahead;
//! - `compare`: digests of a table, and its differences.

use sqlx::PgPool;

use super::*;
use crate::store::{Position, RecordedEvent, StoreError};

mod compare;
mod reader;
mod shadow;

pub use compare::{Comparison, Difference, SHOWN_PER_TABLE};
pub use reader::REBUILD_BATCH;
pub use shadow::{drop_kept, kept, valid_schema_name, Kept, Shadow, Until};
#[allow(unused_imports)]
use {compare::*, reader::*};

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
    /// The rows that differed, counted and the first of them by key.
    pub comparison: Comparison,
    /// Whether the rebuilt tables replaced the live ones.
    pub swapped: bool,
    /// The time the projection spent applying the events.
    pub applying: std::time::Duration,
}

/// What a rebuild does once it compared: put the rebuilt tables in place
/// of the live ones, or drop them and change nothing live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Then {
    Swap,
    Discard,
}

/// Rebuilds projections from position zero into fresh tables, reading the
/// store once for all of them: each up to its live checkpoint, where its
/// tables are compared with the live ones, then all on to the last
/// committed event; then the tables are swapped in and the checkpoints
/// moved, all in one transaction that holds the checkpoints (the live
/// runners wait meanwhile).
#[tracing::instrument(skip_all, fields(projections = projections.len()))]
pub async fn rebuild(pool: &PgPool, projections: &[&dyn Projection]) -> Result<Rebuild, StoreError> {
    replay(pool, projections, REBUILD_BATCH, Then::Swap, |_| {}).await
}

/// [`rebuild`], reading `batch` events at a time (tests use small batches to
/// spread a few events over many).
pub async fn rebuild_in_batches(
    pool: &PgPool,
    projections: &[&dyn Projection],
    batch: i64,
) -> Result<Rebuild, StoreError> {
    replay(pool, projections, batch, Then::Swap, |_| {}).await
}

/// Rebuilds projections and compares them with the live ones as
/// [`rebuild`] does, then swaps the rebuilt tables in or drops them;
/// `progress` is told how many events each batch read.
pub async fn replay(
    pool: &PgPool,
    projections: &[&dyn Projection],
    batch: i64,
    then: Then,
    progress: impl FnMut(u64) + Send,
) -> Result<Rebuild, StoreError> {
    let mut shadow = Shadow::prepare(pool, projections, batch).await?;
    shadow.on_progress(progress);
    // Each projection is compared once every event up to its live
    // checkpoint is applied, and none after it: the nearest first.
    let mut by_checkpoint: Vec<(Position, usize)> = projections
        .iter()
        .enumerate()
        .map(|(index, p)| (shadow.live_checkpoint(p.name()), index))
        .collect();
    by_checkpoint.sort_unstable();
    let mut comparisons = vec![Comparison::default(); projections.len()];
    for (checkpoint, index) in by_checkpoint {
        shadow.fill(Until::Position(checkpoint)).await?;
        comparisons[index] = shadow.compare(index).await?;
    }
    shadow.fill(Until::End).await?;
    let events = shadow.events_read();
    let applying = shadow.applying().to_vec();
    match then {
        Then::Swap => shadow.swap().await?,
        Then::Discard => shadow.discard().await?,
    }
    Ok(Rebuild {
        events,
        reports: projections
            .iter()
            .zip(comparisons)
            .zip(applying)
            .map(|((projection, comparison), applying)| RebuildReport {
                projection: projection.name(),
                matched_live: comparison.differing_rows == 0,
                comparison,
                swapped: then == Then::Swap,
                applying,
            })
            .collect(),
    })
}

/// Rebuilds projections as they stood at `until` (from the events recorded
/// up to it) into the schema `schema`, and keeps it for an auditor to read
/// until [`drop_kept`]; nothing live changes or waits. `progress` is told
/// how many events each batch read.
pub async fn keep_as_of(
    pool: &PgPool,
    projections: &[&dyn Projection],
    until: chrono::DateTime<chrono::Utc>,
    schema: &str,
    progress: impl FnMut(u64) + Send,
) -> Result<Kept, StoreError> {
    let mut shadow = Shadow::prepare_kept(pool, projections, REBUILD_BATCH, schema).await?;
    shadow.on_progress(progress);
    shadow.fill(Until::Recorded(until)).await?;
    shadow.keep(until).await
}
