//! Billing's resolvers: a régie's month billed by its agent, and an
//! invoice read, line by line, by its family and its commune.

#[allow(unused_imports)]
use super::*;

use async_graphql::{Enum, SimpleObject};
use chrono::NaiveDate;
use espace_famille_domain::collectivity::Billed;
use espace_famille_domain::invoice::{Invoice, InvoiceKind, InvoiceStatus, LineReason};
use espace_famille_projections::invoices;

use crate::services::billing::{self, MonthBilled};

/// What a billing run did.
#[derive(SimpleObject)]
#[graphql(name = "MonthBilled")]
pub struct MonthBilledView {
    /// Families with something to pay that month.
    pub families: usize,
    /// Invoices this run issued.
    pub issued: usize,
    /// Invoices already issued by an earlier run (nothing new).
    pub already: usize,
    /// The month's total, in euro cents.
    pub total_cents: i64,
}

impl From<MonthBilled> for MonthBilledView {
    fn from(b: MonthBilled) -> Self {
        MonthBilledView {
            families: b.families,
            issued: b.issued,
            already: b.already,
            total_cents: b.total_cents,
        }
    }
}

/// Why a line is billed.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum LineReasonGql {
    /// Booked (there, or no roll call said otherwise).
    Booked,
    /// Absent without an accepted reason, at the tariff's share.
    UnjustifiedAbsence,
    /// There without a booking: the price and the penalty.
    UnexpectedPresence,
    /// A refund of a day already paid.
    Credit,
}

/// One line of an invoice, and everything that explains its amount.
#[derive(SimpleObject)]
#[graphql(name = "InvoiceLine")]
pub struct InvoiceLineView {
    pub child_id: Uuid,
    pub unit_id: Uuid,
    pub date: NaiveDate,
    pub reservation_id: Uuid,
    pub reason: LineReasonGql,
    /// The bracket applied, from 0, and its bounds (quotient familial, in
    /// euros; none above: the last).
    pub bracket: usize,
    pub bracket_from: u32,
    pub bracket_up_to: Option<u32>,
    /// The quotient familial it came from; none known: the highest bracket.
    pub quotient: Option<u32>,
    pub unit_price_cents: i64,
    /// The child's rank among the siblings, and the reduction it gave.
    pub rank: u32,
    pub reduction_percent: u32,
    /// The share of the price billed (an unjustified absence).
    pub share_percent: u32,
    pub penalty_cents: i64,
    pub amount_cents: i64,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum InvoiceStatusGql {
    Issued,
    Paid,
    Cancelled,
}

#[derive(SimpleObject)]
#[graphql(name = "Invoice")]
pub struct InvoiceView {
    pub id: Uuid,
    pub number: String,
    pub collectivity_id: Uuid,
    pub family_id: Uuid,
    /// The month billed ("2027-01"); none for a prepayment.
    pub month: Option<String>,
    pub status: InvoiceStatusGql,
    pub issued_on: NaiveDate,
    pub payable_online_until: NaiveDate,
    pub due_on: NaiveDate,
    pub total_cents: i64,
    pub lines: Vec<InvoiceLineView>,
    /// Its PDF, read with the same session's bearer token.
    pub pdf_url: String,
}

/// An invoice as its family or its régie lists it.
#[derive(SimpleObject)]
#[graphql(name = "InvoiceSummary")]
pub struct InvoiceSummaryView {
    pub id: Uuid,
    pub number: String,
    pub collectivity_id: Uuid,
    pub family_id: Uuid,
    pub month: Option<String>,
    pub status: InvoiceStatusGql,
    pub total_cents: i64,
    /// Refunded by credit notes (negative).
    pub credited_cents: i64,
    pub issued_on: NaiveDate,
    pub payable_online_until: NaiveDate,
    pub due_on: NaiveDate,
    pub paid_at: Option<chrono::DateTime<chrono::Utc>>,
    /// A payment online of it is in progress: it cannot be paid again
    /// until that one ends.
    pub payment_in_progress: bool,
}

impl From<invoices::InvoiceRow> for InvoiceSummaryView {
    fn from(r: invoices::InvoiceRow) -> Self {
        InvoiceSummaryView {
            id: r.invoice_id,
            number: r.number,
            collectivity_id: r.collectivity_id,
            family_id: r.family_id,
            month: r.month,
            status: match r.status.as_str() {
                "paid" => InvoiceStatusGql::Paid,
                "cancelled" => InvoiceStatusGql::Cancelled,
                _ => InvoiceStatusGql::Issued,
            },
            total_cents: r.total_cents,
            credited_cents: r.credited_cents,
            issued_on: r.issued_on,
            payable_online_until: r.payable_online_until,
            due_on: r.due_on,
            paid_at: r.paid_at,
            payment_in_progress: r.payment_in_progress,
        }
    }
}

/// A régie's month: its invoices and what is still unpaid.
#[derive(SimpleObject)]
#[graphql(name = "RegieMonth")]
pub struct RegieMonthView {
    pub invoices: Vec<InvoiceSummaryView>,
    /// The month's invoices, every state, in cents.
    pub total_cents: i64,
    /// Of them, still to pay.
    pub unpaid_cents: i64,
    /// What the régie's families still owe, every month together.
    pub unpaid_all_months_cents: i64,
}

#[derive(Default)]
pub struct BillingQuery;

#[Object]
impl BillingQuery {
    /// A family's invoices ("Factures à payer" with `pendingOnly`), the
    /// oldest due first, at the communes the caller may see.
    async fn family_invoices(
        &self,
        ctx: &Context<'_>,
        family_id: Uuid,
        #[graphql(default)] pending_only: bool,
    ) -> Result<Vec<InvoiceSummaryView>> {
        let caller = caller(ctx);
        caller.identity()?;
        let commands = commands(ctx);
        let hidden = || ApiError::NotFound(say("api.no_family", &[("id", &family_id)]));
        let family = commands.current_family(family_id).await.map_err(|_| hidden())?;
        let communes = caller.visible_of(family_id, family.memberships.keys().copied());
        caller
            .require_reader_of(family_id, &communes)
            .map_err(|_| hidden())?;
        let rows = invoices::of_family(&commands.pool, family_id, &communes, pending_only)
            .await
            .map_err(ApiError::from)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// A régie's invoices of a month and their lines as CSV for its
    /// accounting software (`;`-separated, amounts in cents, a header in
    /// French), for its agents and auditors.
    async fn regie_month_csv(
        &self,
        ctx: &Context<'_>,
        collectivity_id: Uuid,
        month: String,
    ) -> Result<String> {
        caller(ctx).require_staff_reader_of(collectivity_id)?;
        Ok(billing::month_csv(commands(ctx), collectivity_id, &month).await?)
    }

    /// A régie's invoices of a month (`2026-11`), for its agents and
    /// auditors.
    async fn regie_month(
        &self,
        ctx: &Context<'_>,
        collectivity_id: Uuid,
        month: String,
    ) -> Result<RegieMonthView> {
        caller(ctx).require_staff_reader_of(collectivity_id)?;
        let (first, _) = crate::services::calendar::month_bounds(&month)?;
        let month = first.format("%Y-%m").to_string();
        let pool = &commands(ctx).pool;
        let rows = invoices::of_month(pool, collectivity_id, &month)
            .await
            .map_err(ApiError::from)?;
        let total = rows
            .iter()
            .filter(|r| r.status != "cancelled")
            .map(|r| r.total_cents)
            .sum();
        let unpaid = rows
            .iter()
            .filter(|r| r.status == "issued")
            .map(|r| r.total_cents)
            .sum();
        Ok(RegieMonthView {
            invoices: rows.into_iter().map(Into::into).collect(),
            total_cents: total,
            unpaid_cents: unpaid,
            unpaid_all_months_cents: invoices::unpaid_total(pool, collectivity_id)
                .await
                .map_err(ApiError::from)?,
        })
    }

    /// An invoice with its lines, for its family's guardians and its
    /// commune's agents and auditors.
    async fn invoice(
        &self,
        ctx: &Context<'_>,
        id: Uuid,
        #[graphql(desc = "as the events recorded up to this instant left it")] as_of: Option<
            chrono::DateTime<chrono::Utc>,
        >,
    ) -> Result<InvoiceView> {
        let caller = caller(ctx);
        caller.identity()?;
        let commands = commands(ctx);
        let hidden = || ApiError::NotFound(say("api.no_invoice", &[("id", &id)]));
        let invoice = crate::services::audit::as_of::<Invoice>(commands, id, as_of).await?;
        let issued = invoice.issued.as_ref().ok_or_else(hidden)?;
        caller
            .require_reader_of(issued.family_id, &[issued.collectivity_id])
            .map_err(|_| hidden())?;
        Ok(InvoiceView {
            id,
            number: issued.number.clone(),
            collectivity_id: issued.collectivity_id,
            family_id: issued.family_id,
            month: match &issued.kind {
                InvoiceKind::Monthly { month } => Some(month.clone()),
                InvoiceKind::Prepayment { .. } => None,
            },
            status: match invoice.status {
                InvoiceStatus::Paid => InvoiceStatusGql::Paid,
                InvoiceStatus::Cancelled => InvoiceStatusGql::Cancelled,
                InvoiceStatus::Issued | InvoiceStatus::None => InvoiceStatusGql::Issued,
            },
            issued_on: issued.issued_on,
            payable_online_until: issued.payable_online_until,
            due_on: issued.due_on,
            total_cents: issued.total_cents,
            pdf_url: format!("/documents/factures/{id}.pdf"),
            lines: issued
                .lines
                .iter()
                .map(|l| InvoiceLineView {
                    child_id: l.child_id,
                    unit_id: l.unit_id,
                    date: l.date,
                    reservation_id: l.reservation_id,
                    reason: match l.reason {
                        LineReason::Billed(Billed::Booked) => LineReasonGql::Booked,
                        LineReason::Billed(Billed::UnjustifiedAbsence) => LineReasonGql::UnjustifiedAbsence,
                        LineReason::Billed(Billed::UnexpectedPresence) => LineReasonGql::UnexpectedPresence,
                        LineReason::Credit { .. } => LineReasonGql::Credit,
                    },
                    bracket: l.priced.bracket,
                    bracket_from: l.priced.bracket_from,
                    bracket_up_to: l.priced.bracket_up_to,
                    quotient: l.priced.quotient,
                    unit_price_cents: l.priced.unit_price_cents,
                    rank: l.priced.rank,
                    reduction_percent: l.priced.reduction_percent,
                    share_percent: l.priced.share_percent,
                    penalty_cents: l.priced.penalty_cents,
                    amount_cents: l.amount_cents,
                })
                .collect(),
        })
    }
}

#[derive(Default)]
pub struct BillingMutation;

#[Object]
impl BillingMutation {
    /// An agent bills the commune's month (`2027-01`): an invoice per
    /// family for its monthly units, from the bookings and the roll call.
    /// Billing a month again issues nothing new; a day without a tariff
    /// stops the run before anything is issued, saying which.
    async fn bill_month(
        &self,
        ctx: &Context<'_>,
        collectivity_id: Uuid,
        month: String,
    ) -> Result<MonthBilledView> {
        let actor = caller(ctx).require_agent_of(collectivity_id)?;
        let billed = billing::bill_month(
            commands(ctx),
            collectivity_id,
            &month,
            billing::GROUP,
            &metadata(actor, None),
        )
        .await?;
        Ok(billed.into())
    }
}
