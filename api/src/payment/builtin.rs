//! The built-in payment provider, standing in for PayFiP: its own routes
//! under `/fournisseur-paiement` and its own table (`provider_operations`,
//! the provider's state, not the portal's), and [`BuiltinClient`], the
//! server's side of it, which reaches it over HTTP like any provider.
//!
//! - `POST /fournisseur-paiement/operations` (bearer: the shared secret)
//!   opens an operation, `GET /fournisseur-paiement/operations/{id}`
//!   answers its result; an operation left undecided longer than its
//!   lifetime has expired;
//! - `GET /fournisseur-paiement/payer/{id}` is the hosted page: the amount,
//!   the invoices, and three buttons — pay, refuse (the bank declines),
//!   abandon; once decided, the payer's browser goes back to the return
//!   URL, and the provider posts a signed notification naming the
//!   operation to the notification URL (a few tries).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use chrono::{DateTime, Utc};
use espace_famille_domain::payment::{OperationStatus, MAX_INVOICES};
use maud::{html, DOCTYPE};
use rand::Rng;
use serde::Deserialize;
use sqlx::{PgPool, Row};

use super::{sign, Notification, OperationRequest, OperationResult, PaymentProvider, ProviderError};

/// What the built-in provider does; the defaults are a provider's.
#[derive(Debug, Clone)]
pub struct BuiltinSettings {
    /// How long an operation may stay undecided before it expires.
    pub lifetime: Duration,
    /// Whether it notifies at all (off: every notification is lost, as
    /// when the network fails, and only the reconciliation finds out).
    pub notify: bool,
    /// How long it waits before notifying.
    pub notify_delay: Duration,
}

impl Default for BuiltinSettings {
    fn default() -> Self {
        BuiltinSettings {
            lifetime: Duration::from_secs(20 * 60),
            notify: true,
            notify_delay: Duration::ZERO,
        }
    }
}

/// The provider's side: its state and settings.
pub struct BuiltinServer {
    pool: PgPool,
    secret: String,
    settings: BuiltinSettings,
    http: reqwest::Client,
}

const MOUNT: &str = "/fournisseur-paiement";

impl BuiltinServer {
    pub fn routes(pool: PgPool, secret: String, settings: BuiltinSettings) -> Router {
        let server = Arc::new(BuiltinServer {
            pool,
            secret,
            settings,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
        });
        Router::new()
            .route(&format!("{MOUNT}/operations"), post(open))
            .route(&format!("{MOUNT}/operations/{{id}}"), get(result))
            .route(&format!("{MOUNT}/payer/{{id}}"), get(page).post(decide))
            .with_state(server)
    }

    fn authorised(&self, headers: &HeaderMap) -> bool {
        crate::http::bearer(headers).is_some_and(|token| {
            use sha2::Digest;
            // Compared as digests: the time taken says nothing of the key.
            sha2::Sha256::digest(token.as_bytes()) == sha2::Sha256::digest(self.secret.as_bytes())
        })
    }

    /// The operation, expired first if its lifetime is over.
    async fn load(&self, id: &str) -> Result<Option<Operation>, sqlx::Error> {
        sqlx::query(
            "UPDATE provider_operations SET status = 'expired', decided_at = now()
             WHERE operation_id = $1 AND status = 'pending' AND created_at < now() - $2::interval",
        )
        .bind(id)
        .bind(format!("{} seconds", self.settings.lifetime.as_secs()))
        .execute(&self.pool)
        .await?;
        let row = sqlx::query(
            "SELECT operation_id, amount_cents, invoices, return_url, notification_url, status,
                    authorisation, paid_cents, created_at, decided_at
             FROM provider_operations WHERE operation_id = $1",
        )
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|row| {
            Ok(Operation {
                id: row.try_get("operation_id")?,
                amount_cents: row.try_get("amount_cents")?,
                invoices: row.try_get("invoices")?,
                return_url: row.try_get("return_url")?,
                notification_url: row.try_get("notification_url")?,
                status: row.try_get("status")?,
                authorisation: row.try_get("authorisation")?,
                paid_cents: row.try_get("paid_cents")?,
                created_at: row.try_get("created_at")?,
                decided_at: row.try_get("decided_at")?,
            })
        })
        .transpose()
    }

    /// Posts the signed notification, a few times until it is taken.
    async fn notify(self: Arc<Self>, operation: Operation) {
        tokio::time::sleep(self.settings.notify_delay).await;
        let body = serde_json::to_vec(&Notification {
            operation_id: operation.id.clone(),
        })
        .unwrap_or_default();
        for pause in [1, 3, 9] {
            let sent = self
                .http
                .post(&operation.notification_url)
                .header(header::CONTENT_TYPE, "application/json")
                .header(super::SIGNATURE_HEADER, sign(&self.secret, Utc::now(), &body))
                .body(body.clone())
                .send()
                .await;
            match sent {
                Ok(answer) if answer.status().is_success() => return,
                Ok(answer) => {
                    tracing::warn!(operation = %operation.id, status = %answer.status(), "notification refused")
                }
                Err(error) => tracing::warn!(operation = %operation.id, %error, "notification not sent"),
            }
            tokio::time::sleep(Duration::from_secs(pause)).await;
        }
    }
}

#[derive(Clone)]
struct Operation {
    id: String,
    amount_cents: i64,
    invoices: Vec<String>,
    return_url: String,
    notification_url: String,
    status: String,
    authorisation: Option<String>,
    paid_cents: i64,
    created_at: DateTime<Utc>,
    decided_at: Option<DateTime<Utc>>,
}

impl Operation {
    fn result(&self) -> OperationResult {
        OperationResult {
            operation_id: self.id.clone(),
            status: OperationStatus::parse(&self.status).unwrap_or(OperationStatus::Pending),
            authorisation: self.authorisation.clone(),
            amount_cents: self.paid_cents,
            at: self.decided_at.unwrap_or(self.created_at),
        }
    }
}

/// Whether a request to open an operation is one the provider takes.
fn acceptable(request: &OperationRequest) -> bool {
    let url = |u: &str| u.len() <= 2_000 && (u.starts_with("http://") || u.starts_with("https://"));
    (1..=100_000_000).contains(&request.amount_cents)
        && (1..=64).contains(&request.reference.len())
        && (1..=MAX_INVOICES).contains(&request.invoices.len())
        && request.invoices.iter().all(|n| (1..=32).contains(&n.len()))
        && (3..=254).contains(&request.payer_email.len())
        && url(&request.return_url)
        && url(&request.notification_url)
}

async fn open(
    State(server): State<Arc<BuiltinServer>>,
    headers: HeaderMap,
    Json(request): Json<OperationRequest>,
) -> Response {
    if !server.authorised(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    if !acceptable(&request) {
        return StatusCode::UNPROCESSABLE_ENTITY.into_response();
    }
    let id = format!("op_{}", uuid::Uuid::new_v4().simple());
    let inserted = sqlx::query(
        "INSERT INTO provider_operations
             (operation_id, amount_cents, reference, invoices, payer_email, return_url, notification_url)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&id)
    .bind(request.amount_cents)
    .bind(&request.reference)
    .bind(&request.invoices)
    .bind(&request.payer_email)
    .bind(&request.return_url)
    .bind(&request.notification_url)
    .execute(&server.pool)
    .await;
    match inserted {
        Ok(_) => Json(serde_json::json!({ "operation_id": id })).into_response(),
        Err(error) => {
            tracing::error!(%error, "the payment provider could not open an operation");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

async fn result(
    State(server): State<Arc<BuiltinServer>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if !server.authorised(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    match server.load(&id).await {
        Ok(Some(operation)) => Json(operation.result()).into_response(),
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(error) => {
            tracing::error!(%error, "the payment provider could not read an operation");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

fn euros(cents: i64) -> String {
    format!("{},{:02} €", cents / 100, cents % 100)
}

/// The provider's own pages: its styles inline, forms posted to it and
/// sent back to the portal.
fn hosted(title: &str, body: maud::Markup) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="fr" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                link rel="stylesheet" href="/assets/portail.css";
                title { (title) " — Paiement en ligne (simulation)" }
            }
            body { main { (body) } }
        }
    };
    let mut response = axum::response::Html(markup.into_string()).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'self'; form-action 'self' http: https:; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    response
}

async fn page(State(server): State<Arc<BuiltinServer>>, Path(id): Path<String>) -> Response {
    let operation = match server.load(&id).await {
        Ok(Some(operation)) => operation,
        Ok(None) => {
            return (
                StatusCode::NOT_FOUND,
                hosted("Opération inconnue", html! { h1 { "Opération inconnue" } }),
            )
                .into_response()
        }
        Err(_) => return StatusCode::SERVICE_UNAVAILABLE.into_response(),
    };
    if operation.status != "pending" {
        return hosted(
            "Opération terminée",
            html! {
                h1 { "Cette opération est terminée" }
                p { "Statut : " (operation.status) }
                p { a href=(operation.return_url) { "Retour au portail" } }
            },
        );
    }
    let action = format!("{MOUNT}/payer/{}", operation.id);
    hosted(
        "Payer",
        html! {
            h1 { "Paiement de " (euros(operation.amount_cents)) }
            p { "Factures : " (operation.invoices.join(", ")) }
            p { "Simulation d’un paiement par carte : aucun argent n’est débité." }
            form method="post" action=(action) {
                p { button type="submit" name="action" value="payer" id="payer" { "Payer " (euros(operation.amount_cents)) } }
                p { button type="submit" name="action" value="refuser" id="refuser" { "Simuler un refus de la banque" } }
                p { button type="submit" name="action" value="abandonner" id="abandonner" { "Abandonner et revenir au portail" } }
            }
        },
    )
}

#[derive(Deserialize)]
struct Decision {
    action: String,
}

async fn decide(
    State(server): State<Arc<BuiltinServer>>,
    Path(id): Path<String>,
    Form(decision): Form<Decision>,
) -> Response {
    let (status, authorisation) = match decision.action.as_str() {
        "payer" => (
            "paid",
            Some(format!("{:06}", rand::thread_rng().gen_range(0..1_000_000))),
        ),
        "refuser" => ("refused", None),
        "abandonner" => ("abandoned", None),
        _ => return StatusCode::UNPROCESSABLE_ENTITY.into_response(),
    };
    // Expired first, so a page left open too long cannot pay.
    if let Err(error) = server.load(&id).await {
        tracing::error!(%error, "the payment provider could not read an operation");
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let decided = sqlx::query(
        "UPDATE provider_operations
         SET status = $2, authorisation = $3, decided_at = now(),
             paid_cents = CASE WHEN $2 = 'paid' THEN amount_cents ELSE 0 END
         WHERE operation_id = $1 AND status = 'pending'",
    )
    .bind(&id)
    .bind(status)
    .bind(authorisation)
    .execute(&server.pool)
    .await;
    let operation = match (decided, server.load(&id).await) {
        (Ok(done), Ok(Some(operation))) => {
            if done.rows_affected() == 1 && server.settings.notify {
                tokio::spawn(server.clone().notify(operation.clone()));
            }
            operation
        }
        (_, Ok(None)) => return StatusCode::NOT_FOUND.into_response(),
        _ => return StatusCode::SERVICE_UNAVAILABLE.into_response(),
    };
    let separator = if operation.return_url.contains('?') {
        '&'
    } else {
        '?'
    };
    Redirect::to(&format!(
        "{}{separator}operation={}",
        operation.return_url, operation.id
    ))
    .into_response()
}

/// The server's side of a provider with the built-in provider's API
/// (the built-in one, or another server's).
pub struct BuiltinClient {
    /// e.g. `http://127.0.0.1:8080/fournisseur-paiement`.
    base: String,
    secret: String,
    http: reqwest::Client,
}

impl BuiltinClient {
    pub fn new(server_url: &str, secret: String) -> BuiltinClient {
        BuiltinClient {
            base: format!("{}{MOUNT}", server_url.trim_end_matches('/')),
            secret,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default(),
        }
    }
}

fn unreachable(error: reqwest::Error) -> ProviderError {
    ProviderError::Unreachable(error.to_string())
}

#[async_trait]
impl PaymentProvider for BuiltinClient {
    async fn open(&self, request: &OperationRequest) -> Result<String, ProviderError> {
        let answer = self
            .http
            .post(format!("{}/operations", self.base))
            .bearer_auth(&self.secret)
            .json(request)
            .send()
            .await
            .map_err(unreachable)?;
        if !answer.status().is_success() {
            return Err(ProviderError::Refused(answer.status().to_string()));
        }
        #[derive(Deserialize)]
        struct Opened {
            operation_id: String,
        }
        let opened: Opened = answer.json().await.map_err(unreachable)?;
        Ok(opened.operation_id)
    }

    fn page_url(&self, operation_id: &str) -> String {
        format!("{}/payer/{operation_id}", self.base)
    }

    async fn result(&self, operation_id: &str) -> Result<OperationResult, ProviderError> {
        let answer = self
            .http
            .get(format!("{}/operations/{operation_id}", self.base))
            .bearer_auth(&self.secret)
            .send()
            .await
            .map_err(unreachable)?;
        match answer.status() {
            StatusCode::NOT_FOUND => Err(ProviderError::UnknownOperation(operation_id.to_string())),
            status if !status.is_success() => Err(ProviderError::Refused(status.to_string())),
            _ => {
                let result: OperationResult = answer.json().await.map_err(unreachable)?;
                if result.operation_id != operation_id {
                    return Err(ProviderError::Refused(
                        "the answer names another operation".into(),
                    ));
                }
                Ok(result)
            }
        }
    }

    fn verify_notification(
        &self,
        signature: Option<&str>,
        body: &[u8],
        now: DateTime<Utc>,
    ) -> Option<String> {
        if !super::verify(&self.secret, signature?, body, now) {
            return None;
        }
        let notification: Notification = serde_json::from_slice(body).ok()?;
        espace_famille_domain::payment::valid_operation_id(&notification.operation_id)
            .then_some(notification.operation_id)
    }
}
