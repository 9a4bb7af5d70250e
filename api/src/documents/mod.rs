//! The documents a family and its régie keep: each invoice, and the
//! receipt of each payment, as PDF (written with `pdf-writer`, in the PDF
//! standard fonts: nothing to embed, every reader shows them).
//!
//! An invoice prints what its lines say, each explaining itself as on the
//! screen: the day, the child, the unit, why it is billed, the bracket
//! and the quotient familial it came from, the unit price and the amount;
//! then the total, what was credited, and where it stands.
//!
//! `GET /documents/factures/{id}.pdf` and `/documents/paiements/{id}.pdf`,
//! with the session's bearer token, for the family's guardians and the
//! commune's agents and auditors; anyone else finds nothing (404).

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use espace_famille_domain::collectivity::{Billed, Collectivity};
use espace_famille_domain::family::Family;
use espace_famille_domain::invoice::{Invoice, InvoiceKind, InvoiceStatus, LineReason};
use espace_famille_domain::payment::{Payment, PaymentStatus};
use espace_famille_projections::store;
use uuid::Uuid;

use crate::auth::identity::Caller;
use crate::error::ApiError;
use crate::http::AppState;
use crate::i18n::{day, euros, Locale};

pub mod pdf;

use pdf::{Document, RIGHT};

fn money(cents: i64) -> String {
    euros(cents, Locale::Fr)
}

/// The PDF of an invoice.
pub fn invoice_pdf(collectivity: &Collectivity, family: &Family, invoice: &Invoice) -> Option<Vec<u8>> {
    let issued = invoice.issued.as_ref()?;
    let mut doc = Document::new();
    doc.line(16.0, true, &collectivity.name);
    doc.line(10.0, false, "Régie des services périscolaires et de restauration");
    doc.down(12.0);
    let title = match &issued.kind {
        InvoiceKind::Monthly { month } => {
            format!("Facture n° {} — mois de {}", issued.number, month_name(month))
        }
        InvoiceKind::Prepayment { .. } => format!("Facture de prépaiement n° {}", issued.number),
    };
    doc.line(14.0, true, &title);
    doc.line(
        10.0,
        false,
        &format!("Famille : {}", reference_of(collectivity, family)),
    );
    doc.line(
        10.0,
        false,
        &format!("Émise le {}", day(issued.issued_on, Locale::Fr)),
    );
    doc.line(
        10.0,
        false,
        &format!(
            "À payer au plus tard le {} (en ligne jusqu'au {})",
            day(issued.due_on, Locale::Fr),
            day(issued.payable_online_until, Locale::Fr)
        ),
    );
    doc.down(10.0);
    doc.line(9.0, true, "Jour");
    doc.text(130.0, 9.0, true, "Enfant — unité — motif");
    doc.text_right(430.0, 9.0, true, "Prix unitaire");
    doc.text_right(RIGHT, 9.0, true, "Montant");
    doc.rule();
    for line in &issued.lines {
        let child = family
            .children
            .get(&line.child_id)
            .and_then(|c| c.first_name.known().cloned())
            .unwrap_or_else(|| "—".into());
        let unit = collectivity
            .units
            .get(&line.unit_id)
            .map_or_else(|| "—".to_string(), |u| u.name.clone());
        let p = &line.priced;
        let why = match &line.reason {
            LineReason::Billed(Billed::Booked) => "réservé".to_string(),
            LineReason::Billed(Billed::UnjustifiedAbsence) => {
                format!("absence non justifiée ({} %)", p.share_percent)
            }
            LineReason::Billed(Billed::UnexpectedPresence) => {
                format!("présence sans réservation (+ {})", money(p.penalty_cents))
            }
            LineReason::Credit { invoice_number } => format!("avoir sur la facture {invoice_number}"),
        };
        doc.line(9.0, false, &line.date.format("%d/%m/%Y").to_string());
        doc.text(130.0, 9.0, false, &format!("{child} — {unit} — {why}"));
        doc.text_right(430.0, 9.0, false, &money(p.unit_price_cents));
        doc.text_right(RIGHT, 9.0, false, &money(line.amount_cents));
        let bracket = match (p.bracket_from, p.bracket_up_to) {
            (0, None) => "tarif unique".to_string(),
            (from, Some(up_to)) => format!("tranche {from} à {up_to} €"),
            (from, None) => format!("tranche au-delà de {from} €"),
        };
        let quotient = match p.quotient {
            Some(q) => format!("quotient familial {q} €"),
            None if p.bracket_up_to.is_none() && p.bracket_from > 0 => {
                "quotient familial inconnu : tranche la plus haute".to_string()
            }
            None => "quotient familial non connu".to_string(),
        };
        let rank = if p.reduction_percent > 0 {
            format!(", {}e enfant : -{} %", p.rank, p.reduction_percent)
        } else {
            String::new()
        };
        doc.line(7.5, false, "");
        doc.text(130.0, 7.5, false, &format!("{bracket}, {quotient}{rank}"));
    }
    doc.rule();
    doc.line(11.0, true, "Total");
    doc.text_right(RIGHT, 11.0, true, &money(issued.total_cents));
    if invoice.credited_cents != 0 {
        doc.line(10.0, false, "Remboursé depuis par avoir");
        doc.text_right(RIGHT, 10.0, false, &money(invoice.credited_cents));
    }
    doc.down(8.0);
    let state = match invoice.status {
        InvoiceStatus::Paid => "Payée.".to_string(),
        InvoiceStatus::Cancelled => "Annulée.".to_string(),
        InvoiceStatus::Issued | InvoiceStatus::None => format!(
            "À payer : {}, en ligne sur votre espace famille ou auprès de la régie.",
            money(issued.total_cents)
        ),
    };
    doc.line(10.0, false, &state);
    Some(doc.finish(&title))
}

/// The PDF of a payment's receipt, once it succeeded.
pub fn receipt_pdf(
    collectivity: &Collectivity,
    family: &Family,
    payment_id: Uuid,
    payment: &Payment,
) -> Option<Vec<u8>> {
    let started = payment.started.as_ref()?;
    if payment.status != PaymentStatus::Succeeded {
        return None;
    }
    let paid = payment.history.last()?;
    let mut doc = Document::new();
    doc.line(16.0, true, &collectivity.name);
    doc.line(10.0, false, "Régie des services périscolaires et de restauration");
    doc.down(12.0);
    let title = "Reçu de paiement en ligne";
    doc.line(14.0, true, title);
    doc.line(
        10.0,
        false,
        &format!("Famille : {}", reference_of(collectivity, family)),
    );
    doc.line(10.0, false, &format!("Paiement {payment_id}"));
    let at = espace_famille_domain::calendar::in_paris(paid.at);
    doc.line(
        10.0,
        false,
        &format!(
            "Payé le {} à {}",
            day(at.date_naive(), Locale::Fr),
            at.format("%H:%M")
        ),
    );
    if let Some(authorisation) = &paid.authorisation {
        doc.line(10.0, false, &format!("Numéro d'autorisation : {authorisation}"));
    }
    doc.down(10.0);
    doc.line(9.0, true, "Facture");
    doc.text_right(RIGHT, 9.0, true, "Montant");
    doc.rule();
    for invoice in &started.invoices {
        doc.line(10.0, false, &invoice.number);
        doc.text_right(RIGHT, 10.0, false, &money(invoice.amount_cents));
    }
    doc.rule();
    doc.line(11.0, true, "Total payé");
    doc.text_right(RIGHT, 11.0, true, &money(paid.amount_cents));
    Some(doc.finish(title))
}

fn month_name(month: &str) -> String {
    match month.split_once('-') {
        Some((year, m)) => match m.parse::<usize>() {
            Ok(m @ 1..=12) => format!("{} {year}", crate::mail::FRENCH_MONTHS[m - 1]),
            _ => month.to_string(),
        },
        None => month.to_string(),
    }
}

/// The commune's reference of the family ("DST-0001").
fn reference_of(collectivity: &Collectivity, family: &Family) -> String {
    collectivity
        .id
        .and_then(|id| family.memberships.get(&id).cloned())
        .unwrap_or_default()
}

/// The caller of a document request, from its bearer token.
pub(crate) async fn caller_of(state: &AppState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let bearer = crate::http::bearer(headers);
    let identity = match &bearer {
        Some(token) => state.sessions.identity(token).await?,
        None => None,
    };
    Ok(Caller {
        identity,
        client_address: String::new(),
        bearer,
    })
}

fn pdf_response(bytes: Vec<u8>, name: &str) -> Response {
    let mut response = (StatusCode::OK, bytes).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/pdf"));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    if let Ok(value) = HeaderValue::from_str(&format!("inline; filename=\"{name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    response
}

fn refused(error: ApiError) -> Response {
    match error {
        ApiError::Unauthenticated => StatusCode::UNAUTHORIZED.into_response(),
        ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
        ApiError::Internal(why) => {
            tracing::error!(why, "a document failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

/// The id of `{id}.pdf`.
fn id_of(file: &str) -> Option<Uuid> {
    file.strip_suffix(".pdf")?.parse().ok()
}

/// `GET /documents/factures/{id}.pdf`.
pub async fn invoice(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(file): Path<String>,
) -> Response {
    let answer = async {
        let caller = caller_of(&state, &headers).await?;
        caller.identity()?;
        let id = id_of(&file).ok_or_else(|| ApiError::NotFound(String::new()))?;
        let invoice = store::load_many::<Invoice>(&state.pool, &[id.to_string()])
            .await?
            .pop()
            .unwrap_or_default()
            .aggregate;
        let issued = invoice
            .issued
            .as_ref()
            .ok_or_else(|| ApiError::NotFound(String::new()))?;
        caller.require_reader_of(issued.family_id, &[issued.collectivity_id])?;
        let collectivity = state
            .commands
            .current_collectivity(issued.collectivity_id)
            .await?;
        let family = state.commands.current_family(issued.family_id).await?;
        let bytes =
            invoice_pdf(&collectivity, &family, &invoice).ok_or_else(|| ApiError::NotFound(String::new()))?;
        Ok::<_, ApiError>(pdf_response(bytes, &format!("facture-{}.pdf", issued.number)))
    };
    answer.await.unwrap_or_else(refused)
}

/// `GET /documents/paiements/{id}.pdf`: a payment's receipt, once paid.
pub async fn receipt(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(file): Path<String>,
) -> Response {
    let answer = async {
        let caller = caller_of(&state, &headers).await?;
        caller.identity()?;
        let id = id_of(&file).ok_or_else(|| ApiError::NotFound(String::new()))?;
        let payment = crate::services::payment::load(&state.commands, id).await?;
        let started = payment
            .started
            .as_ref()
            .ok_or_else(|| ApiError::NotFound(String::new()))?;
        caller.require_reader_of(started.family_id, &[started.collectivity_id])?;
        let collectivity = state
            .commands
            .current_collectivity(started.collectivity_id)
            .await?;
        let family = state.commands.current_family(started.family_id).await?;
        let bytes = receipt_pdf(&collectivity, &family, id, &payment)
            .ok_or_else(|| ApiError::NotFound(String::new()))?;
        Ok::<_, ApiError>(pdf_response(bytes, &format!("recu-{id}.pdf")))
    };
    answer.await.unwrap_or_else(refused)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_month_is_named_in_french() {
        assert_eq!(month_name("2027-01"), "janvier 2027");
        assert_eq!(month_name("2026-08"), "août 2026");
        assert_eq!(month_name("2026-13"), "2026-13");
    }

    #[test]
    fn a_pdf_has_its_pages_its_fonts_and_its_french() {
        let mut doc = Document::new();
        for n in 0..120 {
            doc.line(10.0, n % 2 == 0, &format!("Ligne {n} : élève, n° 3, 12,50 €"));
        }
        let bytes = doc.finish("Facture");
        let text = String::from_utf8_lossy(&bytes);
        assert!(bytes.starts_with(b"%PDF-"));
        // 120 lines of 15 points do not fit on one A4 page.
        assert!(text.contains("/Count 3"), "{}", &text[..400.min(text.len())]);
        assert!(text.contains("/Helvetica-Bold") && text.contains("/WinAnsiEncoding"));
        // "élève" and " €" in Windows-1252, as the strings' hex.
        assert!(text.contains("E96CE87665"));
        assert!(text.contains("2080> Tj"));
    }
}
