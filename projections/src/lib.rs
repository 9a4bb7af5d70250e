//! Event store access, the projection engine and the read models.
//!
//! # Layout
//!
//! - [`store`]: loading aggregates through postgres-es, the multi-stream
//!   append of baskets, stream history.
//! - [`engine`]: the gap-safe projection engine (batches, checkpoints,
//!   NOTIFY wake-ups, one active runner, rebuild, read-your-writes wait).
//! - [`calendar`], [`work_queue`], [`attendance`], [`waiting_lists`],
//!   [`directory`], [`invoices`], [`requests`]: the read models.
//! - [`personal`] (in the store): crypto-shredding of personal values
//!   (per-family keys).
//! - [`testing`]: a fresh migrated database per test.
//! - [`MIGRATOR`]: every SQL migration of the project.
#![forbid(unsafe_code)]

use std::sync::Arc;

pub mod attendance;
pub mod calendar;
pub mod directory;
pub mod engine;
pub mod error;
pub mod invoices;
pub mod requests;
pub mod store;
pub use store::personal;
pub mod slots;
pub mod testing;
pub mod waiting_lists;
pub mod work_queue;

/// The project's migrations (`migrations/` at the workspace's top).
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Every read model, in the order they are built.
pub fn read_models() -> Vec<Arc<dyn engine::Projection>> {
    read_model_groups().into_iter().flatten().collect()
}

/// The read models by feature, one runner per group: the directory
/// (communes' units, families' children), bookings (the calendar, the
/// agents' queue, attendance and the waiting lists, all fed by
/// reservations, read once for all), billing's invoices and the families'
/// requests. A group that
/// stops or lags holds back no other.
pub fn read_model_groups() -> Vec<Vec<Arc<dyn engine::Projection>>> {
    vec![
        vec![Arc::new(directory::DirectoryProjection)],
        vec![
            Arc::new(calendar::CalendarProjection),
            Arc::new(work_queue::WorkQueueProjection),
            Arc::new(attendance::AttendanceProjection),
            Arc::new(waiting_lists::WaitingListsProjection),
        ],
        vec![Arc::new(invoices::InvoicesProjection)],
        vec![Arc::new(requests::RequestsProjection)],
    ]
}

/// The read models that are handed events of any of these aggregate types:
/// what a write of them must wait for before its answer can be read.
pub fn read_models_of(aggregate_types: &[&str]) -> Vec<&'static str> {
    read_models()
        .iter()
        .filter(|model| match model.aggregate_types() {
            None => true,
            Some(read) => read.iter().any(|t| aggregate_types.contains(t)),
        })
        .map(|model| model.name())
        .collect()
}
