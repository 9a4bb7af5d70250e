//! The domain of espace-famille: aggregates, commands, events, typed errors
//! and the rules they apply (opening days, deadlines), with no I/O.
//!
//! Every rule about days and hours is evaluated in `Europe/Paris`; every
//! instant is UTC; money is integer euro cents.
//!
//! # Layout
//!
//! - [`allocation`]: places allocated by a published, verifiable rule.
//! - [`calendar`]: opening days, the school calendar and deadline rules.
//! - [`collectivity`]: the commune (tenant) and its configuration.
//! - [`family`]: a household, its children and their enrolments.
//! - [`invoice`]: what a family owes a régie, line by line, and its payment.
//! - [`payment`]: a payment online of one or several invoices.
//! - [`places`]: a unit's places on a day, and its waiting list.
//! - [`request`]: a family's request to its commune, with its attachments.
//! - [`reservation`]: one child in one unit on one date, and its lifecycle.
//! - [`personal`]: personal values in events, erasable without rewriting.
//! - [`text`]: the bounds on every string and date that enters an event.
//! - [`upcast`]: events stored at an older version read as current ones.
#![forbid(unsafe_code)]

pub mod allocation;
pub mod calendar;
pub mod collectivity;
pub mod family;
pub mod invoice;
pub mod payment;
pub mod personal;
pub mod places;
pub mod request;
pub mod reservation;
pub mod text;
pub mod upcast;
