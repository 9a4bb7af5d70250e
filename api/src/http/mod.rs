//! The HTTP interface: one router for GraphQL (`/graphql`), the pages the
//! e-mailed links open and GraphiQL ([`web`]), and health. A route that is
//! not GraphQL (a payment notification, a file download) is added here,
//! beside the others, with the same state and the same limits.
//!
//! - [`graphql`]: GraphQL over HTTP (media types, status codes, limits
//!   before execution);
//! - [`server`]: connection limits, header timeouts, graceful shutdown;
//! - [`web`]: the links' pages, GraphiQL, CORS and security headers;
//! - [`health`]: `/health/live` and `/health/ready`;
//! - [`payment`]: the provider's notification, and the page the payer
//!   comes back to;
//! - [`files`]: a request's file downloaded through its signed link.

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderMap};
use axum::routing::{get, post};
use axum::Router;
use sqlx::PgPool;

use crate::auth::accounts::AuthSettings;
use crate::auth::sessions::Sessions;
use crate::commands::Commands;
use crate::graphql::parse_cache::ParseCache;
use crate::graphql::{schema, AppSchema};
use crate::payment::Payments;
use health::DatabaseWatch;
use server::ServerLimits;
use web::WebSettings;

pub mod files;
pub mod graphql;
pub mod health;
pub mod payment;
pub mod server;
pub mod web;

#[derive(Clone)]
pub struct AppState {
    pub(crate) schema: AppSchema,
    pub(crate) database: DatabaseWatch,
    pub(crate) pool: PgPool,
    pub(crate) sessions: Arc<Sessions>,
    pub(crate) documents: ParseCache,
    pub(crate) commands: Arc<Commands>,
    pub(crate) auth: AuthSettings,
    pub(crate) web: WebSettings,
    pub(crate) payments: Arc<Payments>,
    pub(crate) files: Arc<crate::files::Files>,
    /// The mutations' rate limits.
    pub(crate) throttle: Arc<crate::auth::throttle::Throttle>,
    /// The largest JSON body GraphQL takes.
    pub(crate) max_body_bytes: usize,
}

/// The router, apart from serving, so tests and tools can mount it; an
/// error for a CORS origin that is not one.
pub fn router(
    commands: Arc<Commands>,
    payments: Arc<Payments>,
    files: Arc<crate::files::Files>,
    pool: PgPool,
    auth: &AuthSettings,
    web: &WebSettings,
    limits: ServerLimits,
) -> Result<Router, String> {
    let sessions = Sessions::start(pool.clone());
    let auth = auth.clone();
    let state = AppState {
        schema: schema(Some((
            commands.clone(),
            auth.clone(),
            sessions.clone(),
            payments.clone(),
            files.clone(),
        ))),
        database: DatabaseWatch::start(pool.clone()),
        pool,
        sessions,
        documents: ParseCache::default(),
        commands,
        auth,
        web: web.clone(),
        payments,
        files: files.clone(),
        throttle: Arc::new(crate::auth::throttle::Throttle::new(limits.mutations)),
        max_body_bytes: limits.max_body_bytes,
    };
    // GraphQL takes a JSON body up to the server's limit (checked by its
    // handler), or a multipart request with files up to the files' limit.
    let upload_limit = (files.settings.max_request_bytes as usize).max(limits.max_body_bytes) + 64 * 1024;
    let mut graphql = Router::new()
        .route("/graphql", get(graphql::get).post(graphql::post))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(upload_limit));
    // Only GraphQL is for other origins' pages, and only the listed ones.
    if let Some(cors) = web::cors(&web.cors_origins)? {
        graphql = graphql.layer(cors);
    }
    let others = Router::new()
        .merge(web::routes())
        .route("/paiement/notification", post(payment::notification))
        .route("/documents/factures/{file}", get(crate::documents::invoice))
        .route("/documents/paiements/{file}", get(crate::documents::receipt))
        .route("/fichiers/{request}/{sha256}", get(files::download))
        // A body over the limit is refused from its Content-Length, before
        // any of it is read (413), or as soon as it passes the limit.
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(
            limits.max_body_bytes,
        ));
    // Past `max_in_flight` requests at once, the next is refused at once
    // (one count for every route); health and metrics are always served.
    let shed = tower::ServiceBuilder::new()
        .layer(axum::error_handling::HandleErrorLayer::new(overloaded))
        .load_shed()
        .layer(tower::limit::GlobalConcurrencyLimitLayer::new(
            limits.max_in_flight.max(1),
        ));
    let operators = Router::new()
        .route("/health/live", get(|| async { "ok" }))
        .route("/health/ready", get(health::ready))
        .route("/metrics", get(crate::metrics::page));
    // Every request in its span, with its id (see `crate::logs`).
    Ok(graphql
        .merge(others)
        .layer(shed)
        .merge(operators)
        .layer(axum::middleware::from_fn(crate::logs::in_request_span))
        .with_state(state))
}

/// The answer to a request past the server's limit of requests in flight:
/// `OVERLOADED`, 503, try again in a second.
async fn overloaded(headers: HeaderMap, _: tower::BoxError) -> axum::response::Response {
    let locale = crate::i18n::Locale::from_accept_language(
        headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()),
    );
    let message = crate::i18n::within(locale, async { crate::i18n::say("api.overloaded", &[]) }).await;
    metrics::counter!(crate::metrics::OVERLOADED).increment(1);
    graphql::try_again(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        crate::error::ErrorCode::Overloaded,
        &message,
        1,
        graphql::Answer::Json,
    )
}

/// The bearer token of an `Authorization: Bearer ...` header.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
        .filter(|t| !t.is_empty())
}
