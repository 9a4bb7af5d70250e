//! The reservation: one child in one unit on one date.
//!
//! Its id is derived from the three (UUIDv5), so the same booking can never
//! exist twice and a retried request lands on the same stream. Every refusal
//! is a typed reason a parent can read: a date is never greyed out without
//! saying why.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::calendar::{ClosedReason, SchoolYear};
use crate::collectivity::{BillingMode, Collectivity, Unit};
use crate::family::Family;
use crate::text::{self, TextError};

/// Namespace of reservation ids; never change it, or every id changes.
const RESERVATION_NAMESPACE: Uuid = Uuid::from_u128(0x6d3c_5a80_91f2_4c1e_9b7d_2f41_a0c8_e517);

/// The id of the reservation of `child` in `unit` on `date`.
pub fn reservation_id(child_id: Uuid, unit_id: Uuid, date: NaiveDate) -> Uuid {
    let mut name = Vec::with_capacity(42);
    name.extend_from_slice(child_id.as_bytes());
    name.extend_from_slice(unit_id.as_bytes());
    name.extend_from_slice(date.format("%Y-%m-%d").to_string().as_bytes());
    Uuid::new_v5(&RESERVATION_NAMESPACE, &name)
}

mod aggregate;
mod commands;
mod errors;
mod events;
mod state;
#[cfg(test)]
mod tests;
mod values;

pub use commands::*;
pub use errors::*;
pub use events::*;
pub use state::*;
pub use values::*;
