//! The application's use cases, apart from the GraphQL resolvers that
//! call them and the views they answer with.
//!
//! - [`write`]: the one write path every command goes through;
//! - [`audit`]: any aggregate's history, and its state as of an instant;
//! - [`absence`]: absences reported by parents, judged by agents;
//! - [`billing`]: a régie's month billed, an invoice per family;
//! - [`payment`]: invoices paid online, and the reconciliation;
//! - [`prepayment`]: prepaid bookings, their invoices, confirmed when
//!   paid and released when not;
//! - [`basket`]: many reservation lines booked or cancelled at once;
//! - [`family`]: joining a commune with a code, erasure;
//! - [`credentials`]: what the e-mailed links do (activation, a new
//!   password, a new address);
//! - [`decision`]: an agent's decision on a reservation;
//! - [`closure`]: days an agent closes, and the bookings on them cancelled;
//! - [`invitations`]: the process manager that gives a new family's
//!   guardian an account and mails the activation link;
//! - [`allocation`]: allocated booking windows, their seeds and runs;
//! - [`places`]: the days' places and waiting lists, and
//!   [`promotions`], the process manager that hands freed places on;
//! - [`requests`]: families' requests with their files, answered and
//!   closed by agents;
//! - [`periodic`]: the store's new events sealed, the files folder swept, at an interval;
//! - [`calendar`]: what a family reads of its bookings (a child's days,
//!   a reservation's history).

pub mod absence;
pub mod allocation;
pub mod audit;
pub mod basket;
pub mod billing;
pub mod calendar;
pub mod closure;
pub mod credentials;
pub mod decision;
pub mod decision_mails;
pub mod family;
pub mod invitations;
pub mod payment;
pub mod periodic;
pub mod places;
pub mod prepayment;
pub mod promotions;
pub mod requests;
pub mod roll_call;
pub mod write;

pub use write::{Failure, Stored, Work, Write, CONFLICT_RETRIES};
