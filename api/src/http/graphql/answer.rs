//! The answers written back: their media type, negotiated from `Accept`,
//! and the refusals, each with its `extensions.code` and, for those that
//! pass, its `Retry-After`.

use async_graphql::{Response, ServerError};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use serde_json::json;

use super::{GRAPHQL_RESPONSE, JSON};
use crate::error::ErrorCode;

/// The media type the answer is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    Json,
    GraphqlResponse,
}

impl Answer {
    /// The type to answer in, from the request's `Accept` (`None`: the
    /// client accepts neither). The specification's own type wins where
    /// both are accepted equally.
    pub(super) fn negotiate(headers: &HeaderMap) -> Option<Answer> {
        let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
            return Some(Answer::Json);
        };
        let mut best: Option<(f32, Answer)> = None;
        for range in accept.split(',') {
            let mut parts = range.split(';').map(str::trim);
            let media = parts.next().unwrap_or_default().to_ascii_lowercase();
            let quality = parts
                .filter_map(|p| p.strip_prefix("q="))
                .filter_map(|q| q.parse::<f32>().ok())
                .next()
                .unwrap_or(1.0);
            let answer = match media.as_str() {
                GRAPHQL_RESPONSE => Answer::GraphqlResponse,
                JSON | "application/*" | "*/*" => Answer::Json,
                _ => continue,
            };
            if quality <= 0.0 {
                continue;
            }
            let better = match best {
                None => true,
                Some((q, previous)) => {
                    quality > q || (quality == q && answer == Answer::GraphqlResponse && previous != answer)
                }
            };
            if better {
                best = Some((quality, answer));
            }
        }
        if accept.trim().is_empty() {
            return Some(Answer::Json);
        }
        best.map(|(_, answer)| answer)
    }

    pub(super) fn content_type(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Answer::Json => "application/json; charset=utf-8",
            Answer::GraphqlResponse => "application/graphql-response+json; charset=utf-8",
        })
    }
}

/// A request that cannot run: its HTTP status and the error to tell.
pub(super) struct Refused {
    pub(super) status: StatusCode,
    pub(super) code: ErrorCode,
    pub(super) message: String,
}

impl Refused {
    /// Not a GraphQL request at all (a body that is not one, a `query` that
    /// is not a string): 400 whatever the answer's media type.
    pub(super) fn bad_request(message: impl Into<String>) -> Refused {
        Refused {
            status: StatusCode::BAD_REQUEST,
            code: ErrorCode::BadRequest,
            message: message.into(),
        }
    }

    /// A GraphQL request that cannot run (its document does not parse or
    /// breaks a limit): 400 with the specification's own media type, 200
    /// with `application/json`.
    pub(super) fn graphql(code: ErrorCode, message: impl Into<String>) -> Refused {
        Refused {
            status: StatusCode::UNPROCESSABLE_ENTITY,
            code,
            message: message.into(),
        }
    }

    pub(super) fn into_response(self, answer: Answer) -> axum::response::Response {
        let body =
            json!({ "errors": [{ "message": self.message, "extensions": { "code": self.code.as_str() } }] });
        // A GraphQL request error is 200 with application/json and 400 with
        // the specification's own type; anything else keeps its status.
        let status = match (answer, self.status) {
            (Answer::Json, StatusCode::UNPROCESSABLE_ENTITY) => StatusCode::OK,
            (Answer::GraphqlResponse, StatusCode::UNPROCESSABLE_ENTITY) => StatusCode::BAD_REQUEST,
            (_, status) => status,
        };
        (
            status,
            [(header::CONTENT_TYPE, answer.content_type())],
            body.to_string(),
        )
            .into_response()
    }
}

pub(super) fn not_acceptable() -> axum::response::Response {
    (
        StatusCode::NOT_ACCEPTABLE,
        [(header::CONTENT_TYPE, Answer::Json.content_type())],
        json!({ "errors": [{ "message": format!("answers are {JSON} or {GRAPHQL_RESPONSE}"), "extensions": { "code": ErrorCode::NotAcceptable.as_str() } }] })
            .to_string(),
    )
        .into_response()
}

/// The answer past a mutation's rate limit: `RATE_LIMITED`, HTTP 429, and
/// when to try again.
pub(super) async fn rate_limited(
    locale: crate::i18n::Locale,
    wait: std::time::Duration,
    answer: Answer,
) -> axum::response::Response {
    let seconds = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
    let message = crate::i18n::within(locale, async {
        crate::i18n::say("api.rate_limited", &[("seconds", &seconds)])
    })
    .await;
    metrics::counter!(crate::metrics::RATE_LIMITED).increment(1);
    try_again(
        StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::RateLimited,
        &message,
        seconds,
        answer,
    )
}

/// A request refused for now, before it ran: its code and message, and
/// `Retry-After` in seconds.
pub(crate) fn try_again(
    status: StatusCode,
    code: ErrorCode,
    message: &str,
    retry_after: u64,
    answer: Answer,
) -> axum::response::Response {
    (
        status,
        [
            (header::CONTENT_TYPE, answer.content_type()),
            (header::RETRY_AFTER, HeaderValue::from(retry_after)),
        ],
        json!({ "errors": [{ "message": message, "extensions": { "code": code.as_str() } }] }).to_string(),
    )
        .into_response()
}

/// The answer while the database is unreachable: `UNAVAILABLE`, HTTP 503,
/// try again in two seconds.
pub(super) async fn unavailable(locale: crate::i18n::Locale, answer: Answer) -> axum::response::Response {
    let message = crate::i18n::within(locale, async { crate::i18n::say("api.unavailable", &[]) }).await;
    try_again(
        StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Unavailable,
        &message,
        2,
        answer,
    )
}

/// Writes a response, giving every error without a code one: the request's
/// own failures `GRAPHQL_VALIDATION_FAILED`, a field's `VALIDATION` (its
/// input did not convert).
pub(super) fn respond(mut response: Response, answer: Answer, refused: bool) -> axum::response::Response {
    for error in &mut response.errors {
        coded(
            error,
            if refused {
                ErrorCode::GraphqlValidationFailed
            } else {
                ErrorCode::Validation
            },
        );
    }
    // Every field that failed did for want of the database (before the
    // watch saw it go) or of room (logins past the hashing queue): told as
    // the outage's and the shedding's other answers are, 503 and when to
    // come back.
    let code_of = |error: &ServerError| match error.extensions.as_ref().and_then(|e| e.get("code")) {
        Some(async_graphql::Value::String(code)) => code.clone(),
        _ => String::new(),
    };
    let (down, full) = (ErrorCode::Unavailable.as_str(), ErrorCode::Overloaded.as_str());
    let retry_after = match response.errors.iter().map(code_of).collect::<Vec<_>>() {
        codes if codes.is_empty() => None,
        codes if codes.iter().all(|c| c == full) => Some(1),
        codes if codes.iter().all(|c| c == down || c == full) => Some(2),
        _ => None,
    };
    let status = match answer {
        _ if retry_after.is_some() => StatusCode::SERVICE_UNAVAILABLE,
        Answer::GraphqlResponse if refused => StatusCode::BAD_REQUEST,
        _ => StatusCode::OK,
    };
    let body = if refused && answer == Answer::GraphqlResponse {
        json!({ "errors": response.errors }).to_string()
    } else {
        serde_json::to_string(&response).unwrap_or_else(|_| {
            json!({ "errors": [{ "message": "internal error", "extensions": { "code": ErrorCode::Internal.as_str() } }] })
                .to_string()
        })
    };
    let mut response = (status, [(header::CONTENT_TYPE, answer.content_type())], body).into_response();
    if let Some(seconds) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

fn coded(error: &mut ServerError, code: ErrorCode) {
    let extensions = error.extensions.get_or_insert_with(Default::default);
    if extensions.get("code").is_none() {
        extensions.set("code", code.as_str());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepting(accept: Option<&str>) -> Option<Answer> {
        let mut headers = HeaderMap::new();
        if let Some(accept) = accept {
            headers.insert(header::ACCEPT, HeaderValue::from_str(accept).unwrap());
        }
        Answer::negotiate(&headers)
    }

    #[test]
    fn the_answer_is_in_a_type_the_client_accepts() {
        assert_eq!(accepting(None), Some(Answer::Json));
        assert_eq!(accepting(Some("*/*")), Some(Answer::Json));
        assert_eq!(accepting(Some("application/json")), Some(Answer::Json));
        assert_eq!(accepting(Some(GRAPHQL_RESPONSE)), Some(Answer::GraphqlResponse));
        assert_eq!(
            accepting(Some("application/graphql-response+json, application/json;q=0.9")),
            Some(Answer::GraphqlResponse)
        );
        assert_eq!(
            accepting(Some("application/graphql-response+json;q=0.5, application/json")),
            Some(Answer::Json)
        );
        assert_eq!(accepting(Some("text/html")), None);
    }
}
