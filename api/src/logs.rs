//! The server's log: text for a person, JSON lines for a collector
//! (`LOG_FORMAT=json`), each line with the request it belongs to.
//!
//! Every HTTP request runs in a span `request` holding its id (the
//! client's `X-Request-Id` when it is a plain token of at most 64
//! characters, a new UUID otherwise, returned in the response's header),
//! the account that called, once known, and the correlation id of what it
//! wrote. Never a password, a token or a personal value: those are not
//! fields of any span or event.

use std::str::FromStr;
use std::time::Instant;

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;
use uuid::Uuid;

/// The header a request's id comes in and goes back in.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest request id taken from a client.
pub const MAX_REQUEST_ID: usize = 64;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

impl FromStr for LogFormat {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value.trim().to_ascii_lowercase().as_str() {
            "" | "text" => Ok(LogFormat::Text),
            "json" => Ok(LogFormat::Json),
            other => Err(format!("LOG_FORMAT is text or json, not {other:?}")),
        }
    }
}

/// The subscriber writing to `writer` in `format`, filtered by `filter`
/// (`RUST_LOG`'s syntax).
pub fn subscriber<W>(
    format: LogFormat,
    filter: EnvFilter,
    writer: W,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    match format {
        LogFormat::Text => Box::new(builder.finish()),
        LogFormat::Json => Box::new(
            builder
                .json()
                .with_current_span(true)
                .with_span_list(false)
                .finish(),
        ),
    }
}

/// The id a request is known by: the client's, when it is a plain token.
fn request_id(request: &Request) -> String {
    request
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|id| {
            !id.is_empty()
                && id.len() <= MAX_REQUEST_ID
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        })
        .map(str::to_string)
        .unwrap_or_else(|| Uuid::new_v4().to_string())
}

/// Runs a request in its span, and returns its id in the response.
pub async fn in_request_span(mut request: Request, next: Next) -> Response {
    let id = request_id(&request);
    let value = HeaderValue::from_str(&id).expect("a request id is a plain token");
    request.headers_mut().insert(REQUEST_ID.clone(), value.clone());
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        account_id = tracing::field::Empty,
        correlation_id = tracing::field::Empty,
    );
    // The path's first segment only: further ones may be a signed link.
    let method = request.method().clone();
    let path = format!(
        "/{}",
        request
            .uri()
            .path()
            .trim_start_matches('/')
            .split('/')
            .next()
            .unwrap_or("")
    );
    let started = Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    span.in_scope(|| {
        tracing::debug!(
            %method,
            path,
            status = response.status().as_u16(),
            took_ms = started.elapsed().as_secs_f64() * 1000.0,
            "answered"
        );
    });
    response.headers_mut().insert(REQUEST_ID.clone(), value);
    response
}

/// Names the calling account in the current request's span.
pub fn record_account(account_id: Uuid) {
    tracing::Span::current().record("account_id", tracing::field::display(account_id));
}

/// Names the correlation id of what the current request writes.
pub fn record_correlation(correlation_id: Uuid) {
    tracing::Span::current().record("correlation_id", tracing::field::display(correlation_id));
}
