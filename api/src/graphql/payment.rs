//! Payments' resolvers: a parent pays several invoices at once, and a
//! payment is read with the provider's status history, by its family and
//! its commune's staff.

#[allow(unused_imports)]
use super::*;

use async_graphql::{Enum, SimpleObject};
use espace_famille_domain::invoice::Invoice;
use espace_famille_domain::payment::{FailedBecause, OperationStatus, PaymentStatus};
use espace_famille_projections::store;

use crate::payment::Payments;
use crate::services::payment;

fn payments<'a>(ctx: &'a Context<'_>) -> &'a Arc<Payments> {
    ctx.data_unchecked::<Arc<Payments>>()
}

/// A payment started: the parent's browser goes to `paymentUrl`.
#[derive(SimpleObject)]
#[graphql(name = "PaymentOpened")]
pub struct PaymentOpenedView {
    pub payment_id: Uuid,
    pub amount_cents: i64,
    /// The provider's page where the parent pays.
    pub payment_url: String,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "PaymentStatus")]
pub enum PaymentStatusGql {
    /// Waiting for the provider's answer.
    Pending,
    /// Paid: the invoices are paid.
    Succeeded,
    /// Paid another amount than due: nothing paid, the régie refunds.
    Anomaly,
    Refused,
    Abandoned,
    Expired,
    /// The provider never opened the operation.
    NotOpened,
}

impl From<PaymentStatus> for PaymentStatusGql {
    fn from(status: PaymentStatus) -> Self {
        match status {
            PaymentStatus::None | PaymentStatus::Pending => PaymentStatusGql::Pending,
            PaymentStatus::Succeeded => PaymentStatusGql::Succeeded,
            PaymentStatus::Anomaly => PaymentStatusGql::Anomaly,
            PaymentStatus::Failed(FailedBecause::Refused) => PaymentStatusGql::Refused,
            PaymentStatus::Failed(FailedBecause::Abandoned) => PaymentStatusGql::Abandoned,
            PaymentStatus::Failed(FailedBecause::Expired) => PaymentStatusGql::Expired,
            PaymentStatus::Failed(FailedBecause::NotOpened) => PaymentStatusGql::NotOpened,
        }
    }
}

/// One answer of the provider about the operation.
#[derive(SimpleObject)]
#[graphql(name = "PaymentObservation")]
pub struct ObservationView {
    /// pending, paid, refused, abandoned or expired.
    pub status: String,
    pub authorisation: Option<String>,
    pub amount_cents: i64,
    pub at: chrono::DateTime<chrono::Utc>,
}

#[derive(SimpleObject)]
#[graphql(name = "PaidInvoice")]
pub struct PaidInvoiceView {
    pub invoice_id: Uuid,
    pub number: String,
    pub amount_cents: i64,
}

#[derive(SimpleObject)]
#[graphql(name = "Payment")]
pub struct PaymentView {
    pub id: Uuid,
    pub collectivity_id: Uuid,
    pub family_id: Uuid,
    pub status: PaymentStatusGql,
    pub amount_cents: i64,
    pub invoices: Vec<PaidInvoiceView>,
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// The provider's operation, once opened.
    pub operation_id: Option<String>,
    /// Every answer of the provider, in order.
    pub history: Vec<ObservationView>,
    /// Its receipt's PDF once paid, read with the same session's bearer
    /// token.
    pub receipt_url: Option<String>,
}

#[derive(Default)]
pub struct PaymentQuery;

#[Object]
impl PaymentQuery {
    /// A payment, for its family's guardians and its commune's staff.
    async fn payment(&self, ctx: &Context<'_>, id: Uuid) -> Result<PaymentView> {
        let caller = caller(ctx);
        caller.identity()?;
        let hidden = || ApiError::NotFound(say("payment.not_found", &[]));
        let payment = payment::load(commands(ctx), id).await?;
        let started = payment.started.as_ref().ok_or_else(hidden)?;
        caller
            .require_reader_of(started.family_id, &[started.collectivity_id])
            .map_err(|_| hidden())?;
        Ok(PaymentView {
            id,
            collectivity_id: started.collectivity_id,
            family_id: started.family_id,
            status: payment.status.into(),
            amount_cents: started.amount_cents,
            invoices: started
                .invoices
                .iter()
                .map(|i| PaidInvoiceView {
                    invoice_id: i.invoice_id,
                    number: i.number.clone(),
                    amount_cents: i.amount_cents,
                })
                .collect(),
            started_at: started.started_at,
            operation_id: payment.operation_id.clone(),
            receipt_url: (payment.status == PaymentStatus::Succeeded)
                .then(|| format!("/documents/paiements/{id}.pdf")),
            history: payment
                .history
                .iter()
                .map(|o| ObservationView {
                    status: OperationStatus::as_str(o.status).to_string(),
                    authorisation: o.authorisation.clone(),
                    amount_cents: o.amount_cents,
                    at: o.at,
                })
                .collect(),
        })
    }
}

#[derive(Default)]
pub struct PaymentMutation;

#[Object]
impl PaymentMutation {
    /// A guardian pays several of the family's invoices at one régie in
    /// one payment online: the answer says where to pay. The invoices are
    /// paid once the provider confirmed the payment to the server, not
    /// when the browser comes back.
    async fn pay_invoices(&self, ctx: &Context<'_>, invoice_ids: Vec<Uuid>) -> Result<PaymentOpenedView> {
        let caller = caller(ctx);
        let identity = caller.identity()?;
        let commands = commands(ctx);
        payment::check_chosen(&invoice_ids)?;
        let first = invoice_ids[0];
        // The family is the first invoice's; every other must be its too.
        let hidden = || ApiError::NotFound(say("api.no_invoice", &[("id", &first)]));
        let invoice = store::load_many::<Invoice>(&commands.pool, &[first.to_string()])
            .await
            .map_err(ApiError::from)?
            .pop()
            .unwrap_or_default()
            .aggregate;
        let family_id = invoice.issued.as_ref().ok_or_else(hidden)?.family_id;
        let actor = caller.require_parent_of(family_id).map_err(|_| hidden())?;
        let opened = payment::pay_invoices(
            commands,
            payments(ctx),
            family_id,
            &identity.email,
            &invoice_ids,
            &metadata(actor, None),
        )
        .await?;
        Ok(PaymentOpenedView {
            payment_id: opened.payment_id,
            amount_cents: opened.amount_cents,
            payment_url: opened.payment_url,
        })
    }
}
