//! What a browser is served besides GraphQL: the pages behind the links
//! the commune e-mails (activation, new password, e-mail confirmation),
//! GraphiQL from the server's own copy of its assets, and the CORS
//! allow-list of the portal's own origins.
//!
//! Every page works without JavaScript, and answers with a
//! Content-Security-Policy that allows nothing but this server, no
//! referrer (a link's token is in its address) and no caching.
//!
//! # Layout
//!
//! - here: settings, routes, security headers, CORS;
//! - [`csrf`]: the token every form carries;
//! - [`pages`]: the HTML, in French;
//! - [`links`]: the handlers of the links' pages;
//! - [`email_change`]: the page confirming a new e-mail address;
//! - [`payment_return`]: the page a payer comes back to from the provider;
//! - [`graphiql`]: the explorer and its assets.

use std::path::PathBuf;
use std::time::Duration;

use axum::http::{header, HeaderName, HeaderValue, Method};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::http::AppState;

mod csrf;
mod email_change;
pub mod graphiql;
mod links;
mod pages;
mod payment_return;

/// What the browser-facing part of the server needs.
#[derive(Debug, Clone)]
pub struct WebSettings {
    /// Origins whose pages may call `/graphql` from a browser, e.g.
    /// `https://famille.mairie.fr`; none by default.
    pub cors_origins: Vec<String>,
    /// Where `scripts/graphiql-assets` installed GraphiQL's files.
    pub graphiql_dir: PathBuf,
}

impl Default for WebSettings {
    fn default() -> Self {
        WebSettings {
            cors_origins: Vec::new(),
            graphiql_dir: PathBuf::from(".data/graphiql"),
        }
    }
}

/// The pages' routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(links::home))
        .route("/activation", get(links::activation_form).post(links::activate))
        .route("/reinitialisation", get(links::reset_form).post(links::reset))
        .route(
            "/mot-de-passe-oublie",
            get(links::forgotten_form).post(links::forgotten),
        )
        .route(
            "/confirmation-email",
            get(email_change::form).post(email_change::confirm),
        )
        .route("/paiement/retour", get(payment_return::returned))
        .route("/assets/portail.css", get(stylesheet))
        .route("/graphiql/{file}", get(graphiql::asset))
}

/// An origin as a browser sends it: `scheme://host[:port]`, nothing more.
fn parse_origin(origin: &str) -> Result<HeaderValue, String> {
    let origin = origin.trim().trim_end_matches('/');
    let refuse = |why: &str| Err(format!("CORS origin '{origin}': {why}"));
    let Some((scheme, authority)) = origin.split_once("://") else {
        return refuse("give the scheme and host, e.g. https://famille.mairie.fr");
    };
    if scheme != "https" && scheme != "http" {
        return refuse("the scheme is http or https");
    }
    if authority.is_empty() || authority.contains(['/', '?', '#', '*', '@', ' ']) {
        return refuse("an origin is a scheme and a host, without path or wildcard");
    }
    HeaderValue::from_str(origin).or_else(|_| refuse("not a valid header value"))
}

/// The CORS layer of `/graphql`: the configured origins only (none by
/// default, and never `*`), GET and POST with `Authorization`,
/// `Content-Type` and `Accept`, and no cookies — a session travels in the
/// `Authorization` header alone.
pub fn cors(origins: &[String]) -> Result<Option<CorsLayer>, String> {
    if origins.is_empty() {
        return Ok(None);
    }
    let origins = origins
        .iter()
        .map(|o| parse_origin(o))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE, header::ACCEPT])
            .allow_credentials(false)
            .max_age(Duration::from_secs(3600)),
    ))
}

/// The headers of every page: this server's own styles only, no script
/// (GraphiQL's page sets its own policy), forms posted here only, never in
/// a frame, no referrer, no cache.
fn page_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    secure(headers);
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// What every browser-facing answer carries.
fn secure(headers: &mut axum::http::HeaderMap) {
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(
        HeaderName::from_static("cross-origin-opener-policy"),
        HeaderValue::from_static("same-origin"),
    );
}

/// The pages' stylesheet (one file, no framework: it reads on a phone).
async fn stylesheet() -> Response {
    let mut response = (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8")],
        include_str!("portail.css"),
    )
        .into_response();
    secure(response.headers_mut());
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_origin_is_a_scheme_and_a_host_only() {
        assert!(parse_origin("https://famille.mairie.fr").is_ok());
        assert!(parse_origin("http://127.0.0.1:5173/").is_ok());
        for refused in [
            "*",
            "famille.mairie.fr",
            "https://*.mairie.fr",
            "https://a.fr/portail",
            "ftp://a.fr",
        ] {
            assert!(parse_origin(refused).is_err(), "{refused} was taken");
        }
    }
}
