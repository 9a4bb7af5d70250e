//! Who the caller is and what they may do.
//!
//! - [`accounts`]: accounts, passwords, tokens, sessions, login rate
//!   limiting (tables, never events);
//! - [`identity`]: the caller and its grants, checked against who owns
//!   what is asked for;
//! - [`sessions`]: sessions kept in memory, dropped on change;
//! - [`throttle`]: the mutations' rate limits, per account and address.

pub mod accounts;
pub mod identity;
pub mod sessions;
pub mod throttle;
