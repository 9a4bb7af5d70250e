//! Opening days and deadlines: the rules that decide whether a slot can be
//! booked or cancelled, and until when.
//!
//! Every rule is data stored in the commune's events and evaluated in
//! `Europe/Paris`, because that is where parents and agents read the clock:
//! "J-2 à 12h" means noon in Paris whether it is winter or summer time.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Europe::Paris;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

mod deadlines;
mod official;
mod opening;
mod paris;
mod public_holidays;
mod school;
#[cfg(test)]
mod tests;
mod years;

pub use deadlines::*;
pub use official::*;
pub use opening::*;
pub use paris::*;
pub use public_holidays::*;
pub use school::*;
pub use years::*;
