//! A payment online: one payment operation at the provider (PayFiP or the
//! built-in stand-in) paying one or several invoices of one family at one
//! régie.
//!
//! A payment is started with the invoices it pays and their amount, then
//! opened once the provider gave its operation id. From then on only the
//! provider's own answer, as the server asked it, moves it: every answer
//! observed is kept (the status history), and the first final one ends
//! it — paid (the amount matched: the invoices are paid in the same
//! transaction), an anomaly (paid an amount that does not match: nothing is
//! paid, an agent refunds), or failed (refused, abandoned, expired, or the
//! provider never opened the operation). The same answer observed again
//! adds nothing.

use chrono::{DateTime, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The most invoices one payment pays.
pub const MAX_INVOICES: usize = 50;

/// An operation's status at the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum OperationStatus {
    /// Not decided yet: the payer has not paid, refused or left.
    Pending,
    Paid,
    Refused,
    Abandoned,
    Expired,
}

impl OperationStatus {
    pub fn is_final(self) -> bool {
        self != OperationStatus::Pending
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OperationStatus::Pending => "pending",
            OperationStatus::Paid => "paid",
            OperationStatus::Refused => "refused",
            OperationStatus::Abandoned => "abandoned",
            OperationStatus::Expired => "expired",
        }
    }

    pub fn parse(status: &str) -> Option<OperationStatus> {
        [
            OperationStatus::Pending,
            OperationStatus::Paid,
            OperationStatus::Refused,
            OperationStatus::Abandoned,
            OperationStatus::Expired,
        ]
        .into_iter()
        .find(|s| s.as_str() == status)
    }
}

/// What the provider answered about an operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observed {
    pub status: OperationStatus,
    /// The bank's authorisation number, once paid.
    pub authorisation: Option<String>,
    /// The amount the payer paid, in cents (0 until paid).
    pub amount_cents: i64,
    /// When the provider says it happened.
    pub at: DateTime<Utc>,
}

/// One invoice a payment pays, as it was when the payment started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaidInvoice {
    pub invoice_id: Uuid,
    pub number: String,
    pub amount_cents: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Started {
    pub collectivity_id: Uuid,
    pub family_id: Uuid,
    pub invoices: Vec<PaidInvoice>,
    pub amount_cents: i64,
    pub started_at: DateTime<Utc>,
}

/// Why a payment failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FailedBecause {
    Refused,
    Abandoned,
    Expired,
    /// The provider never opened the operation.
    NotOpened,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaymentCommand {
    Start {
        started: Started,
    },
    /// The provider opened the operation under this id.
    Open {
        operation_id: String,
    },
    /// What the provider answered when asked about the operation.
    Observe {
        observed: Observed,
    },
    /// The operation could not be opened, or never was.
    Abort,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaymentEvent {
    PaymentStarted {
        started: Started,
    },
    OperationOpened {
        operation_id: String,
    },
    OperationObserved {
        observed: Observed,
    },
    /// The amount due was paid: the invoices are paid with it.
    PaymentSucceeded {
        authorisation: Option<String>,
        amount_cents: i64,
        paid_at: DateTime<Utc>,
    },
    /// Paid, but not the amount due: nothing is paid, an agent refunds.
    PaymentAnomaly {
        paid_cents: i64,
        due_cents: i64,
    },
    PaymentFailed {
        because: FailedBecause,
    },
}

impl DomainEvent for PaymentEvent {
    fn event_type(&self) -> String {
        match self {
            PaymentEvent::PaymentStarted { .. } => "PaymentStarted",
            PaymentEvent::OperationOpened { .. } => "OperationOpened",
            PaymentEvent::OperationObserved { .. } => "OperationObserved",
            PaymentEvent::PaymentSucceeded { .. } => "PaymentSucceeded",
            PaymentEvent::PaymentAnomaly { .. } => "PaymentAnomaly",
            PaymentEvent::PaymentFailed { .. } => "PaymentFailed",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PaymentError {
    #[error("this payment is already started")]
    AlreadyStarted,
    #[error("no such payment")]
    NotStarted,
    #[error(
        "a payment pays 1 to {MAX_INVOICES} different invoices, each something, adding up to its amount"
    )]
    InvalidInvoices,
    #[error("this payment's operation is already opened")]
    AlreadyOpened,
    #[error("this payment has no operation at the provider yet")]
    NotOpened,
    #[error("an operation id is 1 to 64 letters, digits, '-' or '_'")]
    InvalidOperationId,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaymentStatus {
    #[default]
    None,
    /// Started, or opened and not decided.
    Pending,
    Succeeded,
    Anomaly,
    Failed(FailedBecause),
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    pub started: Option<Started>,
    pub operation_id: Option<String>,
    pub status: PaymentStatus,
    /// Every answer of the provider, in order.
    pub history: Vec<Observed>,
}

impl Payment {
    pub fn is_pending(&self) -> bool {
        self.status == PaymentStatus::Pending
    }

    /// The events a final answer adds after the observation itself.
    fn outcome(&self, observed: &Observed, due: i64) -> Option<PaymentEvent> {
        Some(match observed.status {
            OperationStatus::Pending => return None,
            OperationStatus::Paid if observed.amount_cents == due => PaymentEvent::PaymentSucceeded {
                authorisation: observed.authorisation.clone(),
                amount_cents: observed.amount_cents,
                paid_at: observed.at,
            },
            OperationStatus::Paid => PaymentEvent::PaymentAnomaly {
                paid_cents: observed.amount_cents,
                due_cents: due,
            },
            OperationStatus::Refused => PaymentEvent::PaymentFailed {
                because: FailedBecause::Refused,
            },
            OperationStatus::Abandoned => PaymentEvent::PaymentFailed {
                because: FailedBecause::Abandoned,
            },
            OperationStatus::Expired => PaymentEvent::PaymentFailed {
                because: FailedBecause::Expired,
            },
        })
    }
}

/// Whether `id` can be an operation id (it goes into addresses).
pub fn valid_operation_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl Aggregate for Payment {
    const TYPE: &'static str = "Payment";
    type Command = PaymentCommand;
    type Event = PaymentEvent;
    type Error = PaymentError;
    type Services = ();

    async fn handle(
        &mut self,
        command: PaymentCommand,
        _: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), PaymentError> {
        let mut events = Vec::new();
        match command {
            PaymentCommand::Start { started } => {
                if self.started.is_some() {
                    return Err(PaymentError::AlreadyStarted);
                }
                let sum: i64 = started.invoices.iter().map(|i| i.amount_cents).sum();
                let mut ids: Vec<Uuid> = started.invoices.iter().map(|i| i.invoice_id).collect();
                ids.sort();
                ids.dedup();
                if started.invoices.is_empty()
                    || started.invoices.len() > MAX_INVOICES
                    || ids.len() != started.invoices.len()
                    || started.invoices.iter().any(|i| i.amount_cents <= 0)
                    || sum != started.amount_cents
                {
                    return Err(PaymentError::InvalidInvoices);
                }
                events.push(PaymentEvent::PaymentStarted { started });
            }
            PaymentCommand::Open { operation_id } => {
                if self.started.is_none() {
                    return Err(PaymentError::NotStarted);
                }
                if self.operation_id.as_deref() == Some(operation_id.as_str()) {
                    return Ok(());
                }
                if self.operation_id.is_some() || !self.is_pending() {
                    return Err(PaymentError::AlreadyOpened);
                }
                if !valid_operation_id(&operation_id) {
                    return Err(PaymentError::InvalidOperationId);
                }
                events.push(PaymentEvent::OperationOpened { operation_id });
            }
            PaymentCommand::Observe { observed } => {
                let Some(started) = &self.started else {
                    return Err(PaymentError::NotStarted);
                };
                if self.operation_id.is_none() {
                    return Err(PaymentError::NotOpened);
                }
                // Decided once; told again, or told differently after
                // (an operation cannot change once final), nothing more.
                if !self.is_pending() {
                    return Ok(());
                }
                let outcome = self.outcome(&observed, started.amount_cents);
                let same_as_last = self
                    .history
                    .last()
                    .is_some_and(|last| last.status == observed.status);
                if outcome.is_none() && same_as_last {
                    return Ok(());
                }
                events.push(PaymentEvent::OperationObserved { observed });
                events.extend(outcome);
            }
            PaymentCommand::Abort => {
                if self.started.is_none() {
                    return Err(PaymentError::NotStarted);
                }
                if !self.is_pending() {
                    return Ok(());
                }
                events.push(PaymentEvent::PaymentFailed {
                    because: FailedBecause::NotOpened,
                });
            }
        }
        for event in events {
            sink.write(event, self).await;
        }
        Ok(())
    }

    fn apply(&mut self, event: PaymentEvent) {
        match event {
            PaymentEvent::PaymentStarted { started } => {
                self.started = Some(started);
                self.status = PaymentStatus::Pending;
            }
            PaymentEvent::OperationOpened { operation_id } => self.operation_id = Some(operation_id),
            PaymentEvent::OperationObserved { observed } => self.history.push(observed),
            PaymentEvent::PaymentSucceeded { .. } => self.status = PaymentStatus::Succeeded,
            PaymentEvent::PaymentAnomaly { .. } => self.status = PaymentStatus::Anomaly,
            PaymentEvent::PaymentFailed { because } => self.status = PaymentStatus::Failed(because),
        }
    }
}

#[cfg(test)]
mod tests;
