//! `GET /paiement/retour?operation=…`: the page the payer's browser comes
//! back to from the provider. It says what the server knows of the
//! payment and records nothing: a payment counts only from the provider's
//! answer to the server (see `services::payment`), never from this visit.
//! While undecided, it looks again every few seconds.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use espace_famille_domain::payment::{valid_operation_id, FailedBecause, PaymentStatus};
use maud::html;
use serde::Deserialize;
use sqlx::Row;
use uuid::Uuid;

use super::links::page;
use super::pages;
use crate::http::AppState;
use crate::i18n::{euros, Locale};

#[derive(Deserialize)]
pub struct Returned {
    operation: Option<String>,
}

pub async fn returned(State(state): State<AppState>, Query(query): Query<Returned>) -> Response {
    let unknown = || {
        page(
            StatusCode::NOT_FOUND,
            pages::message(
                "Paiement introuvable",
                html! { p { "Ce paiement est inconnu. Vos factures et leur état sont dans votre espace famille." } },
            ),
            None,
        )
    };
    let Some(operation) = query.operation.filter(|o| valid_operation_id(o)) else {
        return unknown();
    };
    let found = sqlx::query("SELECT payment_id FROM payment_operations WHERE operation_id = $1")
        .bind(&operation)
        .fetch_optional(&state.pool)
        .await;
    let payment_id: Uuid = match found.map(|row| row.map(|r| r.try_get("payment_id"))) {
        Ok(Some(Ok(id))) => id,
        Ok(None) => return unknown(),
        _ => return super::links::failure_page(&crate::error::ApiError::Unavailable(String::new())),
    };
    let payment = match crate::services::payment::load(&state.commands, payment_id).await {
        Ok(payment) => payment,
        Err(error) => return super::links::failure_page(&error),
    };
    let amount = payment
        .started
        .as_ref()
        .map(|s| euros(s.amount_cents, Locale::Fr))
        .unwrap_or_default();
    let (title, text) = match payment.status {
        PaymentStatus::Succeeded => (
            "Paiement reçu",
            format!("Votre paiement de {amount} est enregistré : vos factures sont payées."),
        ),
        PaymentStatus::Anomaly => (
            "Paiement à vérifier",
            "Le montant payé ne correspond pas aux factures : la régie va vous recontacter pour le régulariser.".to_string(),
        ),
        PaymentStatus::Failed(because) => (
            "Paiement non abouti",
            match because {
                FailedBecause::Refused => "Votre banque a refusé le paiement. Rien n'a été débité ; vos factures restent à payer.",
                FailedBecause::Abandoned => "Vous avez abandonné le paiement. Rien n'a été débité ; vos factures restent à payer.",
                FailedBecause::Expired | FailedBecause::NotOpened => {
                    "Le paiement n'a pas été fait à temps. Rien n'a été débité ; vos factures restent à payer."
                }
            }
            .to_string(),
        ),
        PaymentStatus::Pending | PaymentStatus::None => (
            "Paiement en cours de vérification",
            format!(
                "Nous attendons la confirmation de votre paiement de {amount} par le service de paiement. \
                 Cette page se met à jour d'elle-même ; vous pouvez aussi la fermer : le paiement sera pris en compte."
            ),
        ),
    };
    let pending = matches!(payment.status, PaymentStatus::Pending);
    let mut response = page(
        StatusCode::OK,
        pages::message(title, html! { p id="etat" { (text) } }),
        None,
    );
    if pending {
        response.headers_mut().insert(
            axum::http::header::REFRESH,
            axum::http::HeaderValue::from_static("3"),
        );
    }
    response
}
