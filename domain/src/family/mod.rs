//! The family: a household with its guardians and children, shared by every
//! commune it belongs to (one family, one login, several communes).

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::calendar::SchoolYear;
use crate::personal::Personal;
use crate::text::{self, TextError};

mod guardians;
pub use guardians::{is_plausible_phone, Guardian, GuardianProfile, PostalAddress, MAX_GUARDIANS};

mod aggregate;
mod commands;
mod errors;
mod events;
mod state;
#[cfg(test)]
pub(crate) mod tests;
mod values;

pub use commands::*;
pub use errors::*;
pub use events::*;
pub use state::*;
pub use values::*;
