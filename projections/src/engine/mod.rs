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
//!
//! # Layout
//!
//! - here: the [`Projection`] trait, settings, registration;
//! - `read`: what a group reads (the reading is the store's);
//! - `batch`: one batch of a group, and catching up;
//! - `runner`: the runners, their wake-ups, the [`Announcer`];
//! - `checkpoints`: locking, moving and watching checkpoints;
//! - [`failures`]: a projection stopped at an event it cannot apply;
//! - [`fence`]: the horizon raised past transactions that write no event;
//! - `rebuild`: rebuilding read models in a shadow schema, step by step
//!   (prepare, fill to a position, an instant or the end, compare, swap).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::{PgConnection, PgPool};

use crate::store::{RecordedEvent, StoreError};

/// The channel that tells runners new events were committed.
pub const EVENTS_CHANNEL: &str = "events_appended";

mod batch;
mod checkpoints;
pub mod failures;
pub mod fence;
mod read;
mod rebuild;
mod runner;

pub use crate::store::{read_after, read_after_of_types, Passed, PASS_OVER};
pub use batch::{catch_up, run_batch, run_group_batch};
pub use checkpoints::{Checkpoints, CHECKPOINTS_CHANNEL};
pub use rebuild::{
    drop_kept, keep_as_of, kept, rebuild, rebuild_in_batches, replay, valid_schema_name, Comparison,
    Difference, Kept, Rebuild, RebuildReport, Shadow, Then, Until, REBUILD_BATCH, SHOWN_PER_TABLE,
};
pub use runner::{start, Announcer, EngineHandle};
// The parts share their helpers through this module (each does `use
// super::*`); nothing outside the engine sees them.
#[allow(unused_imports)]
use {batch::*, checkpoints::*, read::*, rebuild::*, runner::*};

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

    /// Whether its group asks the store for only the events of
    /// [`Projection::aggregate_types`] (the default) or reads every event
    /// and hands this projection only those. Asking the store costs a scan
    /// of the range it goes past, on every batch: worth it for types that
    /// are a small share of the events (families, communes), not for
    /// reservations, which are nearly all of them in a booking rush.
    fn store_filters_types(&self) -> bool {
        true
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
