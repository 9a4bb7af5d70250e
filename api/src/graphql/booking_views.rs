//! The GraphQL views of a basket's outcome and of a refusal, converted from
//! the service's plain values: what is stored (basket receipts) never
//! depends on how the schema spells it.

use async_graphql::{Enum, SimpleObject};
use chrono::{DateTime, FixedOffset, NaiveDate};
use uuid::Uuid;

use crate::error::Refusal;
use crate::services::basket::{BasketAction, BasketOutcome, BasketStatus, LineOutcome};

/// A business rule's refusal, with a stable code, a readable message and
/// the facts behind it (the deadline that passed, why the day is closed).
#[derive(SimpleObject)]
#[graphql(name = "Refusal")]
pub struct RefusalView {
    pub code: String,
    pub message: String,
    /// For `DEADLINE_PASSED` and `ABSENCE_TOO_LATE`: the instant the
    /// deadline passed, with Paris's offset.
    pub deadline: Option<DateTime<FixedOffset>>,
    /// For `UNIT_CLOSED`: why the unit does not run that day.
    pub closed_reason: Option<String>,
    /// For `BOOKING_NOT_OPEN`: when booking opens, with Paris's offset.
    pub opens_at: Option<DateTime<FixedOffset>>,
    /// For `DEBT_LIMIT`: what the family owes past due, in cents.
    pub owed_cents: Option<i64>,
}

impl From<&Refusal> for RefusalView {
    fn from(refusal: &Refusal) -> Self {
        RefusalView {
            code: refusal.code.as_str().to_string(),
            message: refusal.message.clone(),
            deadline: refusal.deadline.map(espace_famille_domain::calendar::in_paris),
            closed_reason: refusal.closed_reason.clone(),
            opens_at: refusal.opens_at.map(espace_famille_domain::calendar::in_paris),
            owed_cents: refusal.owed_cents,
        }
    }
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "BasketAction")]
pub enum BasketActionView {
    Book,
    Cancel,
}

impl From<BasketActionView> for BasketAction {
    fn from(action: BasketActionView) -> Self {
        match action {
            BasketActionView::Book => BasketAction::Book,
            BasketActionView::Cancel => BasketAction::Cancel,
        }
    }
}

impl From<BasketAction> for BasketActionView {
    fn from(action: BasketAction) -> Self {
        match action {
            BasketAction::Book => BasketActionView::Book,
            BasketAction::Cancel => BasketActionView::Cancel,
        }
    }
}

#[derive(Enum, Debug, Clone, Copy, PartialEq, Eq)]
#[graphql(name = "BasketStatus")]
pub enum BasketStatusView {
    /// Every line was written.
    Accepted,
    /// Some lines were refused; the valid ones were written, as asked.
    Partial,
    /// Nothing was written.
    Rejected,
}

impl From<BasketStatus> for BasketStatusView {
    fn from(status: BasketStatus) -> Self {
        match status {
            BasketStatus::Accepted => BasketStatusView::Accepted,
            BasketStatus::Partial => BasketStatusView::Partial,
            BasketStatus::Rejected => BasketStatusView::Rejected,
        }
    }
}

#[derive(SimpleObject)]
#[graphql(name = "LineOutcome")]
pub struct LineOutcomeView {
    /// The line's place in the submitted basket, from 0.
    pub index: i32,
    pub action: BasketActionView,
    pub child_id: Uuid,
    pub unit_id: Uuid,
    pub date: NaiveDate,
    pub reservation_id: Uuid,
    /// Whether the line passed every rule. In a basket refused whole
    /// (`REJECTED`), an accepted line was not written: see `written`.
    pub accepted: bool,
    /// Whether the line's booking or cancellation was recorded: accepted,
    /// in a basket `ACCEPTED` or `PARTIAL`.
    pub written: bool,
    /// Why the line was refused, or skipped.
    pub refusal: Option<RefusalView>,
    /// A day of a period the unit is closed: not written, and it refused
    /// nothing (its reason is `refusal`).
    pub skipped: bool,
    /// A booking of a day whose places were all taken: it waits on the
    /// day's waiting list, at this position (the calendar follows it).
    pub waiting_position: Option<u32>,
    /// Booked in a prepaid unit: held until the basket's prepayment
    /// invoice is paid, released if it is not in time.
    pub awaiting_payment: bool,
}

impl LineOutcomeView {
    fn of(line: &LineOutcome, status: BasketStatus) -> Self {
        LineOutcomeView {
            index: line.index,
            action: line.action.into(),
            child_id: line.child_id,
            unit_id: line.unit_id,
            date: line.date,
            reservation_id: line.reservation_id,
            accepted: line.accepted,
            written: line.accepted && status != BasketStatus::Rejected,
            refusal: line.refusal.as_ref().map(RefusalView::from),
            skipped: line.skipped,
            waiting_position: line.waiting_position,
            awaiting_payment: line.awaiting_payment,
        }
    }
}

#[derive(SimpleObject)]
#[graphql(name = "BasketOutcome")]
pub struct BasketOutcomeView {
    pub basket_id: Uuid,
    pub family_id: Uuid,
    pub status: BasketStatusView,
    pub lines: Vec<LineOutcomeView>,
    /// The prepayment invoices of its prepaid lines (one per commune), to
    /// pay with `payInvoices` before they lapse.
    pub prepayment_invoices: Vec<Uuid>,
}

impl From<&BasketOutcome> for BasketOutcomeView {
    fn from(outcome: &BasketOutcome) -> Self {
        BasketOutcomeView {
            basket_id: outcome.basket_id,
            family_id: outcome.family_id,
            status: outcome.status.into(),
            lines: outcome
                .lines
                .iter()
                .map(|line| LineOutcomeView::of(line, outcome.status))
                .collect(),
            prepayment_invoices: outcome.prepayment_invoices.clone(),
        }
    }
}
