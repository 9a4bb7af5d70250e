//! The application's use cases that write, apart from the GraphQL
//! resolvers that call them.
//!
//! - [`write`]: the one write path every command goes through;
//! - [`family`]: joining a commune with a code, erasure;
//! - [`decision`]: an agent's decision on a reservation.

pub mod decision;
pub mod family;
pub mod write;

pub use write::{Failure, Stored, Work, Write, CONFLICT_RETRIES};
