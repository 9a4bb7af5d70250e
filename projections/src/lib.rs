//! Event store access, the projection engine and the read models.
//!
//! # Layout
//!
//! - [`store`]: loading aggregates through postgres-es, the multi-stream
//!   append of baskets, stream history.
//! - [`engine`]: the gap-safe projection engine (batches, checkpoints,
//!   NOTIFY wake-ups, one active runner, rebuild, read-your-writes wait).
//! - [`calendar`], [`work_queue`], [`directory`]: the read models.
//! - [`personal`]: crypto-shredding of personal values (per-family keys).
//! - [`testing`]: a fresh migrated database per test.
//! - [`MIGRATOR`]: every SQL migration of the project.
#![forbid(unsafe_code)]

use std::sync::Arc;

pub mod calendar;
pub mod directory;
pub mod engine;
pub mod error;
pub mod personal;
pub mod store;
pub mod testing;
pub mod work_queue;

/// The project's migrations (`migrations/` at the workspace's top).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Every read model, in the order they are built.
pub fn read_models() -> Vec<Arc<dyn engine::Projection>> {
    vec![
        Arc::new(directory::DirectoryProjection),
        Arc::new(calendar::CalendarProjection),
        Arc::new(work_queue::WorkQueueProjection),
    ]
}
