//! The GraphQL API, the HTTP server and the command line of espace-famille.
//!
//! # Layout
//!
//! - [`app`]: settings, start-up, router, health; [`server`]: connection
//!   limits, header timeouts, graceful shutdown; [`graphql_http`]: GraphQL
//!   over HTTP (media types, status codes, limits before execution).
//! - [`graphql`]: the schema; thin resolvers.
//! - [`services`]: the use cases that write, and the one write path they
//!   go through; [`commands`]: what they share (caches, the appender, the
//!   wait for read models).
//! - [`basket`]: many reservation lines in one transaction.
//! - [`cache`]: communes and families kept in memory by stream version.
//! - [`queries`]: calendar and reservation history.
//! - [`identity`]: the caller and its grants; [`accounts`]: accounts,
//!   passwords, tokens, sessions, login rate limiting; [`sessions`]:
//!   sessions kept in memory, dropped on change.
//! - [`mail`]: the outbox and its delivery; [`invitations`]: the process
//!   manager that invites a new family's guardian.
//! - [`error`]: one error type and its `extensions.code`.
//! - [`demo`]: the demo commune; [`join_codes`]: a family's consent to
//!   join a commune.
#![forbid(unsafe_code)]

pub mod accounts;
pub mod app;
pub mod basket;
pub mod cache;
pub mod commands;
pub mod credentials;
pub mod demo;
pub mod error;
pub mod graphql;
pub mod graphql_http;
pub mod identity;
pub mod invitations;
pub mod join_codes;
pub mod mail;
pub mod queries;
pub mod redact;
pub mod server;
pub mod services;
pub mod sessions;
pub mod web;

/// The schema in SDL, as committed in `api/schema.graphql`.
pub fn sdl() -> String {
    graphql::schema(None).sdl()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_committed_schema_matches_the_code() {
        let committed = include_str!("../schema.graphql");
        assert!(
            committed == super::sdl(),
            "api/schema.graphql is out of date: run `cargo run -p espace-famille-api -- schema > api/schema.graphql`"
        );
    }
}
