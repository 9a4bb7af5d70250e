//! The GraphQL API, the HTTP server and the command line of espace-famille.
//!
//! # Layout
//!
//! - [`app`]: settings, start-up, serving until shutdown.
//! - [`http`]: the router (GraphQL over HTTP, the links' pages, GraphiQL,
//!   health) and the server's limits.
//! - [`graphql`]: the schema; thin resolvers.
//! - [`services`]: the use cases that write, and the one write path they
//!   go through; [`commands`]: what they share (caches, the appender, the
//!   wait for read models); [`unseen`]: what a write left for its readers'
//!   next query to wait for.
//! - [`cache`]: communes and families kept in memory by stream version.
//! - [`auth`]: accounts, passwords, tokens, sessions, login rate
//!   limiting; the caller and its grants.
//! - [`documents`]: the invoices' and receipts' PDFs; [`files`]: the
//!   files attached to requests, stored and served back.
//! - [`payment`]: the payment provider (PayFiP's shape) and the built-in
//!   one that stands in for it.
//! - [`mail`]: the outbox and its delivery; [`i18n`]: the language of
//!   what a person reads.
//! - [`error`]: one error type and its `extensions.code`; [`metrics`]: the
//!   Prometheus page; [`logs`]: the log's formats and each request's span.
//! - [`cli`]: what the command line's subcommands do.
//! - [`demo`]: the demo commune; [`join_codes`]: a family's consent to
//!   join a commune.
#![forbid(unsafe_code)]

// The catalogue of messages (`locales/messages.yml`), French first.
rust_i18n::i18n!("locales", fallback = "fr");

pub mod app;
pub mod auth;
pub mod cache;
pub mod cli;
pub mod commands;
pub mod demo;
pub mod documents;
pub mod error;
pub mod files;
pub mod graphql;
pub mod http;
pub mod i18n;
pub mod join_codes;
pub mod logs;
pub mod mail;
pub mod metrics;
pub mod payment;
pub mod redact;
pub mod services;
pub mod unseen;

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
