//! `POST /paiement/notification`: the provider says an operation changed.
//!
//! The notification names the operation only. Its signature is checked
//! (one forged or altered is refused, 401), then the server asks the
//! provider for the operation's result and records it (see
//! `services::payment::settle`): the notification itself proves nothing
//! and pays nothing. Told again, it finds the payment decided. A provider
//! that cannot be asked is answered 503, so the provider tries again (and
//! the reconciliation asks later anyway).

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use uuid::Uuid;

use crate::error::ApiError;
use crate::http::AppState;
use crate::payment::SIGNATURE_HEADER;
use crate::services::payment::{settle, system_metadata};

pub async fn notification(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let signature = headers.get(SIGNATURE_HEADER).and_then(|v| v.to_str().ok());
    let Some(operation_id) = state
        .payments
        .provider
        .verify_notification(signature, &body, Utc::now())
    else {
        tracing::warn!("a payment notification whose signature does not verify was refused");
        notified("forged");
        return StatusCode::UNAUTHORIZED.into_response();
    };
    let metadata = system_metadata(Uuid::new_v4());
    match settle(&state.commands, &state.payments, &operation_id, &metadata).await {
        Ok(Some(_)) => {
            notified("recorded");
            (StatusCode::OK, "ok").into_response()
        }
        Ok(None) => {
            notified("unknown_operation");
            StatusCode::NOT_FOUND.into_response()
        }
        Err(ApiError::Unavailable(why)) => {
            notified("provider_unavailable");
            tracing::warn!(
                operation_id,
                why,
                "a payment notification could not be verified yet"
            );
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
        Err(error) => {
            notified("failed");
            tracing::error!(operation_id, error = %error.message(), "a payment notification failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// Counts a notification by what became of it.
fn notified(result: &'static str) {
    metrics::counter!(crate::metrics::PAYMENT_NOTIFICATIONS, "result" => result).increment(1);
}
