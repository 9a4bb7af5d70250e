//! The invoice: what a family owes a commune's régie, line by line, each
//! line explaining itself (the child, the unit, the day, the tariff and
//! bracket with the quotient familial it came from, the unit price, why it
//! is billed), and whether it was paid.
//!
//! Two kinds: a prepayment invoice for the prepaid lines of a basket, and a
//! family's monthly invoice at a régie. Its number is given by the régie's
//! sequence for the year (see `InvoiceNumbers`, written in the same
//! transaction: no gap, no duplicate). `InvoiceIssued` → `InvoicePaid` (one
//! payment may pay several invoices) or `InvoiceCancelled`; a refund once
//! paid is a `CreditNoteIssued`, credited on the family's next invoice.

use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::collectivity::{Billed, Priced};

/// Why a line is on an invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum LineReason {
    /// A day booked (prepaid, or billed at the month's end).
    Billed(Billed),
    /// A day refunded after an approved cancellation of a day already paid.
    Credit { invoice_number: String },
}

/// One line: one child's day in one unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceLine {
    pub child_id: Uuid,
    pub unit_id: Uuid,
    pub date: NaiveDate,
    pub reservation_id: Uuid,
    pub reason: LineReason,
    /// How the day's price was found; a credit keeps the price it refunds.
    pub priced: Priced,
    /// Negative for a credit.
    pub amount_cents: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum InvoiceKind {
    /// The prepaid lines of a basket, payable at once.
    Prepayment { basket_id: Uuid },
    /// A family's month at a régie, e.g. "2027-01".
    Monthly { month: String },
}

/// What an issued invoice says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Issued {
    pub collectivity_id: Uuid,
    pub family_id: Uuid,
    /// Sequential per régie and year: "2027-000042".
    pub number: String,
    pub kind: InvoiceKind,
    pub lines: Vec<InvoiceLine>,
    pub total_cents: i64,
    pub issued_on: NaiveDate,
    /// The last day it can be paid online.
    pub payable_online_until: NaiveDate,
    pub due_on: NaiveDate,
}

/// The most lines of one invoice (a month of five units for five
/// children, with room to spare).
pub const MAX_LINES: usize = 2_000;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum InvoiceCommand {
    Issue {
        issued: Issued,
    },
    /// A payment online of this invoice (among others) begins: no other
    /// may begin until it ends.
    StartPayment {
        payment_id: Uuid,
    },
    /// That payment ended without paying.
    ReleasePayment {
        payment_id: Uuid,
    },
    /// A payment the provider confirmed, of this invoice among others.
    RecordPayment {
        payment_id: Uuid,
        amount_cents: i64,
        paid_at: DateTime<Utc>,
    },
    Cancel {
        reason: String,
    },
    /// Refund these lines of a paid invoice: credited on the next one.
    IssueCreditNote {
        lines: Vec<InvoiceLine>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum InvoiceEvent {
    InvoiceIssued {
        issued: Issued,
    },
    InvoicePaymentStarted {
        payment_id: Uuid,
    },
    InvoicePaymentReleased {
        payment_id: Uuid,
    },
    InvoicePaid {
        payment_id: Uuid,
        amount_cents: i64,
        paid_at: DateTime<Utc>,
    },
    InvoiceCancelled {
        reason: String,
    },
    CreditNoteIssued {
        lines: Vec<InvoiceLine>,
        total_cents: i64,
    },
}

impl DomainEvent for InvoiceEvent {
    fn event_type(&self) -> String {
        match self {
            InvoiceEvent::InvoiceIssued { .. } => "InvoiceIssued",
            InvoiceEvent::InvoicePaymentStarted { .. } => "InvoicePaymentStarted",
            InvoiceEvent::InvoicePaymentReleased { .. } => "InvoicePaymentReleased",
            InvoiceEvent::InvoicePaid { .. } => "InvoicePaid",
            InvoiceEvent::InvoiceCancelled { .. } => "InvoiceCancelled",
            InvoiceEvent::CreditNoteIssued { .. } => "CreditNoteIssued",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvoiceError {
    #[error("this invoice is already issued")]
    AlreadyIssued,
    #[error("no such invoice")]
    NotIssued,
    #[error("an invoice has 1 to {MAX_LINES} lines whose amounts add up to its total")]
    InvalidLines,
    #[error("this invoice is already paid")]
    AlreadyPaid,
    #[error("this invoice is cancelled")]
    Cancelled,
    #[error("the payment of {paid} cents does not match the {due} cents due")]
    AmountMismatch { paid: i64, due: i64 },
    #[error("only the lines of a paid invoice, each once, can be refunded")]
    NotRefundable,
    #[error("a cancellation needs a reason")]
    EmptyReason,
    #[error("a payment of this invoice is in progress")]
    PaymentInProgress,
    #[error("this payment is not the one in progress for this invoice")]
    NotThisPayment,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum InvoiceStatus {
    #[default]
    None,
    Issued,
    Paid,
    Cancelled,
}

/// An invoice as its events built it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invoice {
    pub issued: Option<Issued>,
    pub status: InvoiceStatus,
    pub payment_id: Option<Uuid>,
    /// The payment online in progress, if one is.
    pub pending_payment: Option<Uuid>,
    /// The reservations whose lines were refunded.
    pub refunded: Vec<Uuid>,
    pub credited_cents: i64,
}

impl Invoice {
    /// What is left to pay: the total, until paid or cancelled.
    pub fn due_cents(&self) -> i64 {
        match (self.status, &self.issued) {
            (InvoiceStatus::Issued, Some(issued)) => issued.total_cents,
            _ => 0,
        }
    }

    fn check_lines(lines: &[InvoiceLine], total: i64) -> Result<(), InvoiceError> {
        let sum: i64 = lines.iter().map(|l| l.amount_cents).sum();
        if lines.is_empty() || lines.len() > MAX_LINES || sum != total {
            return Err(InvoiceError::InvalidLines);
        }
        Ok(())
    }
}

impl Aggregate for Invoice {
    const TYPE: &'static str = "Invoice";
    type Command = InvoiceCommand;
    type Event = InvoiceEvent;
    type Error = InvoiceError;
    type Services = ();

    async fn handle(
        &mut self,
        command: InvoiceCommand,
        _: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), InvoiceError> {
        let event = match command {
            InvoiceCommand::Issue { issued } => {
                if self.issued.is_some() {
                    return Err(InvoiceError::AlreadyIssued);
                }
                Self::check_lines(&issued.lines, issued.total_cents)?;
                if issued.total_cents < 0 {
                    return Err(InvoiceError::InvalidLines);
                }
                InvoiceEvent::InvoiceIssued { issued }
            }
            InvoiceCommand::StartPayment { payment_id } => {
                match self.status {
                    InvoiceStatus::None => return Err(InvoiceError::NotIssued),
                    InvoiceStatus::Paid => return Err(InvoiceError::AlreadyPaid),
                    InvoiceStatus::Cancelled => return Err(InvoiceError::Cancelled),
                    InvoiceStatus::Issued => {}
                }
                match self.pending_payment {
                    Some(pending) if pending == payment_id => return Ok(()),
                    Some(_) => return Err(InvoiceError::PaymentInProgress),
                    None => InvoiceEvent::InvoicePaymentStarted { payment_id },
                }
            }
            InvoiceCommand::ReleasePayment { payment_id } => {
                if self.pending_payment != Some(payment_id) {
                    return Ok(());
                }
                InvoiceEvent::InvoicePaymentReleased { payment_id }
            }
            InvoiceCommand::RecordPayment {
                payment_id,
                amount_cents,
                paid_at,
            } => {
                match self.status {
                    InvoiceStatus::None => return Err(InvoiceError::NotIssued),
                    // The same payment told twice: nothing more.
                    InvoiceStatus::Paid if self.payment_id == Some(payment_id) => return Ok(()),
                    InvoiceStatus::Paid => return Err(InvoiceError::AlreadyPaid),
                    InvoiceStatus::Cancelled => return Err(InvoiceError::Cancelled),
                    InvoiceStatus::Issued => {}
                }
                if self.pending_payment != Some(payment_id) {
                    return Err(InvoiceError::NotThisPayment);
                }
                let due = self.due_cents();
                if amount_cents != due {
                    return Err(InvoiceError::AmountMismatch {
                        paid: amount_cents,
                        due,
                    });
                }
                InvoiceEvent::InvoicePaid {
                    payment_id,
                    amount_cents,
                    paid_at,
                }
            }
            InvoiceCommand::Cancel { reason } => {
                match self.status {
                    InvoiceStatus::None => return Err(InvoiceError::NotIssued),
                    InvoiceStatus::Paid => return Err(InvoiceError::AlreadyPaid),
                    InvoiceStatus::Cancelled => return Ok(()),
                    InvoiceStatus::Issued => {}
                }
                if self.pending_payment.is_some() {
                    return Err(InvoiceError::PaymentInProgress);
                }
                let reason = crate::text::multiline("a reason", Some(&reason), crate::text::COMMENT)
                    .map_err(|_| InvoiceError::EmptyReason)?
                    .ok_or(InvoiceError::EmptyReason)?;
                InvoiceEvent::InvoiceCancelled { reason }
            }
            InvoiceCommand::IssueCreditNote { lines } => {
                let issued = match (self.status, &self.issued) {
                    (InvoiceStatus::Paid, Some(issued)) => issued,
                    _ => return Err(InvoiceError::NotRefundable),
                };
                // Each line refunds, once, a line this invoice billed.
                let mut seen = self.refunded.clone();
                for line in &lines {
                    let billed = issued.lines.iter().any(|l| {
                        l.reservation_id == line.reservation_id && l.amount_cents == -line.amount_cents
                    });
                    if !billed || seen.contains(&line.reservation_id) || line.amount_cents >= 0 {
                        return Err(InvoiceError::NotRefundable);
                    }
                    seen.push(line.reservation_id);
                }
                let total: i64 = lines.iter().map(|l| l.amount_cents).sum();
                Self::check_lines(&lines, total)?;
                InvoiceEvent::CreditNoteIssued {
                    lines,
                    total_cents: total,
                }
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: InvoiceEvent) {
        match event {
            InvoiceEvent::InvoiceIssued { issued } => {
                self.issued = Some(issued);
                self.status = InvoiceStatus::Issued;
            }
            InvoiceEvent::InvoicePaymentStarted { payment_id } => self.pending_payment = Some(payment_id),
            InvoiceEvent::InvoicePaymentReleased { .. } => self.pending_payment = None,
            InvoiceEvent::InvoicePaid { payment_id, .. } => {
                self.status = InvoiceStatus::Paid;
                self.payment_id = Some(payment_id);
                self.pending_payment = None;
            }
            InvoiceEvent::InvoiceCancelled { .. } => self.status = InvoiceStatus::Cancelled,
            InvoiceEvent::CreditNoteIssued { lines, total_cents } => {
                self.refunded.extend(lines.iter().map(|l| l.reservation_id));
                self.credited_cents += total_cents;
            }
        }
    }
}

mod numbers;
pub use numbers::*;

/// Namespace of monthly invoices' ids; never change it.
const MONTHLY_NAMESPACE: Uuid = Uuid::from_u128(0x3f6a_91c2_5e08_47d3_b1a9_6c24_e8f0_7d15);

/// The id of the monthly invoice of `family_id` at `collectivity_id` for
/// `month` ("2027-01"): billing a month twice finds it issued.
pub fn monthly_invoice_id(collectivity_id: Uuid, family_id: Uuid, month: &str) -> Uuid {
    let mut name = Vec::with_capacity(40);
    name.extend_from_slice(collectivity_id.as_bytes());
    name.extend_from_slice(family_id.as_bytes());
    name.extend_from_slice(month.as_bytes());
    Uuid::new_v5(&MONTHLY_NAMESPACE, &name)
}

#[cfg(test)]
mod tests;

/// Namespace of prepayment invoices' ids; never change it.
const PREPAYMENT_NAMESPACE: Uuid = Uuid::from_u128(0x5d2e_0b7a_91f4_4c63_8e1d_a7c3_2f96_b048);

/// The id of the prepayment invoice at `collectivity_id` of the prepaid
/// bookings `cause` made (a basket, or the event that promoted a booking):
/// issuing it again finds it issued.
pub fn prepayment_invoice_id(cause: Uuid, collectivity_id: Uuid) -> Uuid {
    let mut name = Vec::with_capacity(32);
    name.extend_from_slice(cause.as_bytes());
    name.extend_from_slice(collectivity_id.as_bytes());
    Uuid::new_v5(&PREPAYMENT_NAMESPACE, &name)
}
