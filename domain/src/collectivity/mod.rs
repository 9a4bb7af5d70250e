//! The collectivity: a commune (or a group of communes) and its *régie*, the
//! public accounting office that bills families. It is the tenant.
//!
//! Its events are its configuration, so an auditor can see which rules were
//! in force on any date: services, their units, opening days, deadlines and
//! the school calendar, the requests it takes.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::allocation::{self, Allocation};
use crate::calendar::{
    public_holidays_of, school_holidays, Closure, DateRange, DeadlineRule, DeadlineRuleError, OpeningDays,
    PublishedYear, SchoolCalendar, SchoolYear, TypedCalendar, Zone, ALSACE_MOSELLE,
};
use crate::text::{self, TextError};

mod commands;
mod errors;
mod events;
mod requests;
mod state;
mod tariff;
#[cfg(test)]
pub(crate) mod tests;
mod values;

pub use commands::*;
pub use errors::*;
pub use events::*;
pub use requests::*;
pub use state::*;
pub use tariff::*;
pub use values::*;
