//! Paying invoices online: one payment for one or several invoices of a
//! family at one régie, through the régie's provider (see `payment`).
//!
//! - [`pay_invoices`]: the parent's choice checked (its family's invoices,
//!   one régie, still payable online, at least the commune's minimum, no
//!   other payment of them in progress), the payment started with its
//!   invoices in one transaction, the operation opened at the provider,
//!   and where the parent pays;
//! - [`settle`]: what the provider answers about an operation, asked by
//!   the server — on a notification, or by the reconciliation — recorded
//!   once: paid (the invoices paid in the same transaction), an anomaly
//!   (another amount: nothing paid), or failed (the invoices free to pay
//!   again);
//! - [`start_reconciliation`]: the process manager that asks the provider
//!   again about every payment still undecided after a delay, so a lost
//!   notification still ends in the right state, and ends the payments
//!   whose operation was never opened.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use cqrs_es::Aggregate;
use espace_famille_domain::calendar::paris_today;
use espace_famille_domain::invoice::{Invoice, InvoiceCommand, InvoiceError, InvoiceKind, InvoiceStatus};
use espace_famille_domain::payment::{
    PaidInvoice, Payment, PaymentCommand, PaymentStatus, Started, MAX_INVOICES,
};
use espace_famille_projections::invoices::INVOICES;
use espace_famille_projections::store::{self, Metadata};
use sqlx::Row;
use uuid::Uuid;

use crate::commands::Commands;
use crate::error::{ApiError, ErrorCode, Refusal};
use crate::i18n::{current, euros, invoice_error, say};
use crate::payment::{OperationRequest, Payments, ProviderError};
use crate::services::{periodic, Failure, Work, Write};

/// A payment started: where its payer pays.
#[derive(Debug, Clone)]
pub struct PaymentOpened {
    pub payment_id: Uuid,
    pub amount_cents: i64,
    pub payment_url: String,
}

/// Whether `invoice_ids` can be paid together: 1 to [`MAX_INVOICES`], each
/// once.
pub fn check_chosen(invoice_ids: &[Uuid]) -> Result<(), ApiError> {
    let chosen: BTreeSet<&Uuid> = invoice_ids.iter().collect();
    if chosen.is_empty() || chosen.len() > MAX_INVOICES || chosen.len() != invoice_ids.len() {
        return Err(ApiError::Validation(say(
            "payment.none_chosen",
            &[("max", &MAX_INVOICES)],
        )));
    }
    Ok(())
}

/// The parent of `family_id` pays `invoice_ids` at once.
pub async fn pay_invoices(
    commands: &Commands,
    payments: &Payments,
    family_id: Uuid,
    payer_email: &str,
    invoice_ids: &[Uuid],
    metadata: &Metadata,
) -> Result<PaymentOpened, ApiError> {
    check_chosen(invoice_ids)?;
    let payment_id = Uuid::new_v4();
    // A basket's prepayment invoices are paid as part of the basket. (Not
    // a month's: one billing run issued them all, and each payment is
    // its family's own operation.)
    let metadata = &match prepaid_under(commands, invoice_ids).await? {
        Some(correlation_id) => Metadata {
            correlation_id,
            ..metadata.clone()
        },
        None => metadata.clone(),
    };
    let started = commands
        .write(StartPayment {
            payment_id,
            family_id,
            invoice_ids: invoice_ids.to_vec(),
            metadata,
        })
        .await?;
    let request = OperationRequest {
        amount_cents: started.amount_cents,
        reference: payment_id.simple().to_string(),
        invoices: started.invoices.iter().map(|i| i.number.clone()).collect(),
        payer_email: payer_email.to_string(),
        return_url: payments.return_url(),
        notification_url: payments.notification_url(),
    };
    let operation_id = match payments.provider.open(&request).await {
        Ok(id) => id,
        Err(error) => {
            tracing::warn!(%payment_id, %error, "the provider did not open the payment's operation");
            commands.write(EndUnopened { payment_id, metadata }).await?;
            return Err(ApiError::Unavailable(say("payment.provider_unavailable", &[])));
        }
    };
    commands
        .write(OpenOperation {
            payment_id,
            operation_id: &operation_id,
            metadata,
        })
        .await?;
    Ok(PaymentOpened {
        payment_id,
        amount_cents: started.amount_cents,
        payment_url: payments.provider.page_url(&operation_id),
    })
}

/// Asks the provider about `operation_id` and records its answer: the
/// payment's status after it (`None`: no payment has that operation).
pub async fn settle(
    commands: &Commands,
    payments: &Payments,
    operation_id: &str,
    metadata: &Metadata,
) -> Result<Option<PaymentStatus>, ApiError> {
    let found = sqlx::query("SELECT payment_id FROM payment_operations WHERE operation_id = $1")
        .bind(operation_id)
        .fetch_optional(&commands.pool)
        .await?;
    let Some(row) = found else {
        return Ok(None);
    };
    let payment_id: Uuid = row.try_get("payment_id")?;
    let metadata = &carried_on(commands, Payment::TYPE, payment_id, metadata).await?;
    let result = match payments.provider.result(operation_id).await {
        Ok(result) => result,
        Err(ProviderError::UnknownOperation(_)) => {
            tracing::error!(%payment_id, operation_id, "the provider knows no such operation");
            return Ok(Some(PaymentStatus::Pending));
        }
        Err(error) => return Err(ApiError::Unavailable(error.to_string())),
    };
    let status = commands
        .write(Observe {
            payment_id,
            observed: result.observed(),
            metadata,
        })
        .await?;
    Ok(Some(status))
}

/// The payment and its invoices, checked and started in one transaction;
/// a row beside them finds it by its operation once opened.
struct StartPayment<'a> {
    payment_id: Uuid,
    family_id: Uuid,
    invoice_ids: Vec<Uuid>,
    metadata: &'a Metadata,
}

impl Write for StartPayment<'_> {
    type Answer = Started;

    async fn attempt(&mut self, work: &mut Work<'_>) -> Result<Started, Failure> {
        let commands = work.commands();
        let ids: Vec<String> = self.invoice_ids.iter().map(Uuid::to_string).collect();
        let loaded = store::load_many::<Invoice>(&commands.pool, &ids).await?;
        let today = paris_today(Utc::now());
        let mut invoices = Vec::with_capacity(loaded.len());
        let mut collectivity_id = None;
        for (id, invoice) in self.invoice_ids.iter().zip(&loaded) {
            // Another family's invoice is as unknown as one that is not.
            let issued = match &invoice.aggregate.issued {
                Some(issued) if issued.family_id == self.family_id => issued,
                _ => return Err(ApiError::NotFound(say("api.no_invoice", &[("id", id)])).into()),
            };
            if *collectivity_id.get_or_insert(issued.collectivity_id) != issued.collectivity_id {
                return Err(ApiError::Validation(say("payment.several_communes", &[])).into());
            }
            let refuse = |error: InvoiceError, code| {
                Failure::Refused(ApiError::refused(
                    code,
                    &invoice_error(&error, &issued.number, current()),
                ))
            };
            match invoice.aggregate.status {
                InvoiceStatus::Paid => {
                    return Err(refuse(InvoiceError::AlreadyPaid, ErrorCode::InvoiceNotPayable))
                }
                InvoiceStatus::Cancelled => {
                    return Err(refuse(InvoiceError::Cancelled, ErrorCode::InvoiceNotPayable))
                }
                InvoiceStatus::Issued | InvoiceStatus::None => {}
            }
            if invoice.aggregate.pending_payment.is_some() {
                return Err(refuse(
                    InvoiceError::PaymentInProgress,
                    ErrorCode::PaymentInProgress,
                ));
            }
            if issued.payable_online_until < today {
                return Err(ApiError::refused(
                    ErrorCode::InvoiceNotPayable,
                    &say(
                        "payment.past_online_date",
                        &[
                            ("number", &issued.number),
                            ("day", &crate::i18n::day(issued.payable_online_until, current())),
                        ],
                    ),
                )
                .into());
            }
            invoices.push(PaidInvoice {
                invoice_id: *id,
                number: issued.number.clone(),
                amount_cents: invoice.aggregate.due_cents(),
            });
        }
        let collectivity_id = collectivity_id.unwrap_or_default();
        let amount: i64 = invoices.iter().map(|i| i.amount_cents).sum();
        let minimum = commands
            .current_collectivity(collectivity_id)
            .await?
            .payment_rules
            .minimum_online_cents;
        if amount < minimum {
            let message = say(
                "payment.below_minimum",
                &[
                    ("minimum", &euros(minimum, current())),
                    ("amount", &euros(amount, current())),
                ],
            );
            return Err(Failure::Refused(ApiError::Refused(Refusal {
                minimum_cents: Some(minimum),
                ..Refusal::new(ErrorCode::BelowMinimum, message)
            })));
        }
        let started = Started {
            collectivity_id,
            family_id: self.family_id,
            invoices,
            amount_cents: amount,
            started_at: Utc::now(),
        };
        let services = ();
        for (id, invoice) in self.invoice_ids.iter().zip(loaded) {
            let command = InvoiceCommand::StartPayment {
                payment_id: self.payment_id,
            };
            work.decide::<Invoice>(*id, invoice, command, &services, self.metadata)
                .await?;
        }
        let start = PaymentCommand::Start {
            started: started.clone(),
        };
        work.execute::<Payment>(self.payment_id, start, &services, self.metadata)
            .await?;
        let conn = work.transaction().await?;
        sqlx::query(
            "INSERT INTO payment_operations (payment_id, collectivity_id, family_id, started_at)
             VALUES ($1, $2, $3, $4)",
        )
        .bind(self.payment_id)
        .bind(collectivity_id)
        .bind(self.family_id)
        .bind(started.started_at)
        .execute(&mut *conn)
        .await?;
        Ok(started)
    }

    fn reads(&self) -> Option<&'static [&'static str]> {
        Some(&[INVOICES])
    }
}

/// The operation's id, with the payment's event.
struct OpenOperation<'a> {
    payment_id: Uuid,
    operation_id: &'a str,
    metadata: &'a Metadata,
}

impl Write for OpenOperation<'_> {
    type Answer = ();

    async fn attempt(&mut self, work: &mut Work<'_>) -> Result<(), Failure> {
        let open = PaymentCommand::Open {
            operation_id: self.operation_id.to_string(),
        };
        work.execute::<Payment>(self.payment_id, open, &(), self.metadata)
            .await?;
        let conn = work.transaction().await?;
        sqlx::query("UPDATE payment_operations SET operation_id = $2 WHERE payment_id = $1")
            .bind(self.payment_id)
            .bind(self.operation_id)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    fn reads(&self) -> Option<&'static [&'static str]> {
        Some(&[])
    }
}

/// Ends a payment and frees its invoices, when it failed or was an
/// anomaly; pays them when it succeeded. Marks it settled.
async fn conclude(
    work: &mut Work<'_>,
    payment_id: Uuid,
    payment: &Payment,
    metadata: &Metadata,
) -> Result<(), Failure> {
    let Some(started) = &payment.started else {
        return Ok(());
    };
    let paid_at = payment.history.last().map_or_else(Utc::now, |o| o.at);
    for invoice in &started.invoices {
        let command = match payment.status {
            PaymentStatus::Pending | PaymentStatus::None => return Ok(()),
            PaymentStatus::Succeeded => InvoiceCommand::RecordPayment {
                payment_id,
                amount_cents: invoice.amount_cents,
                paid_at,
            },
            PaymentStatus::Anomaly | PaymentStatus::Failed(_) => {
                InvoiceCommand::ReleasePayment { payment_id }
            }
        };
        work.execute::<Invoice>(invoice.invoice_id, command, &(), metadata)
            .await?;
    }
    let conn = work.transaction().await?;
    sqlx::query("UPDATE payment_operations SET settled_at = now() WHERE payment_id = $1")
        .bind(payment_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// The provider's answer recorded: its status after it.
struct Observe<'a> {
    payment_id: Uuid,
    observed: espace_famille_domain::payment::Observed,
    metadata: &'a Metadata,
}

impl Write for Observe<'_> {
    type Answer = PaymentStatus;

    async fn attempt(&mut self, work: &mut Work<'_>) -> Result<PaymentStatus, Failure> {
        let loaded = work.load::<Payment>(self.payment_id).await?;
        if !loaded.aggregate.is_pending() {
            return Ok(loaded.aggregate.status);
        }
        let observe = PaymentCommand::Observe {
            observed: self.observed.clone(),
        };
        let payment = work
            .decide::<Payment>(self.payment_id, loaded, observe, &(), self.metadata)
            .await?;
        conclude(work, self.payment_id, &payment, self.metadata).await?;
        Ok(payment.status)
    }

    fn reads(&self) -> Option<&'static [&'static str]> {
        Some(&[INVOICES])
    }
}

/// A payment whose operation was never opened, ended.
struct EndUnopened<'a> {
    payment_id: Uuid,
    metadata: &'a Metadata,
}

impl Write for EndUnopened<'_> {
    type Answer = ();

    async fn attempt(&mut self, work: &mut Work<'_>) -> Result<(), Failure> {
        let loaded = work.load::<Payment>(self.payment_id).await?;
        if !loaded.aggregate.is_pending() || loaded.aggregate.operation_id.is_some() {
            return Ok(());
        }
        let payment = work
            .decide::<Payment>(self.payment_id, loaded, PaymentCommand::Abort, &(), self.metadata)
            .await?;
        conclude(work, self.payment_id, &payment, self.metadata).await
    }

    fn reads(&self) -> Option<&'static [&'static str]> {
        Some(&[INVOICES])
    }
}

/// The operation that issued every one of `invoice_ids`, when they are
/// all prepayment invoices of the same one.
async fn prepaid_under(commands: &Commands, invoice_ids: &[Uuid]) -> Result<Option<Uuid>, ApiError> {
    let ids: Vec<String> = invoice_ids.iter().map(Uuid::to_string).collect();
    let loaded = store::load_many::<Invoice>(&commands.pool, &ids).await?;
    let prepaid = loaded.iter().all(|invoice| {
        matches!(
            invoice.aggregate.issued.as_ref().map(|issued| &issued.kind),
            Some(InvoiceKind::Prepayment { .. })
        )
    });
    if !prepaid {
        return Ok(None);
    }
    let issued_under: BTreeSet<Option<Uuid>> = store::first_correlations(&commands.pool, Invoice::TYPE, &ids)
        .await?
        .into_iter()
        .map(|(_, c)| c)
        .collect();
    Ok(match issued_under.into_iter().collect::<Vec<_>>().as_slice() {
        [Some(correlation)] => Some(*correlation),
        _ => None,
    })
}

/// `metadata`, under the correlation the stream `id` was started under:
/// what follows from a payment (or a prepayment invoice) belongs to the
/// operation that started it.
pub async fn carried_on(
    commands: &Commands,
    aggregate_type: &str,
    id: Uuid,
    metadata: &Metadata,
) -> Result<Metadata, ApiError> {
    let started = store::first_correlations(&commands.pool, aggregate_type, &[id.to_string()]).await?;
    Ok(match started.first().and_then(|(_, c)| *c) {
        Some(correlation_id) => Metadata {
            correlation_id,
            ..metadata.clone()
        },
        None => metadata.clone(),
    })
}

/// The metadata of what the server's payments do by themselves.
pub fn system_metadata(cause: Uuid) -> Metadata {
    Metadata {
        actor_id: "system:payments".into(),
        actor_role: "system".into(),
        correlation_id: cause,
        causation_id: cause,
        command_id: Uuid::new_v4(),
        requested_at: Utc::now(),
    }
}

/// Asks the provider about every payment undecided for longer than
/// `after`, a hundred at a time: how many it looked at.
pub async fn reconcile(commands: &Commands, payments: &Payments, after: Duration) -> Result<usize, ApiError> {
    let rows = sqlx::query(
        "SELECT payment_id, operation_id FROM payment_operations
         WHERE settled_at IS NULL AND started_at < now() - $1::interval
         ORDER BY started_at LIMIT 100",
    )
    .bind(format!("{} milliseconds", after.as_millis()))
    .fetch_all(&commands.pool)
    .await?;
    for row in &rows {
        let payment_id: Uuid = row.try_get("payment_id")?;
        let operation_id: Option<String> = row.try_get("operation_id")?;
        let metadata = system_metadata(payment_id);
        match operation_id {
            Some(operation_id) => {
                settle(commands, payments, &operation_id, &metadata).await?;
            }
            // The server stopped between the start and the opening: the
            // payer never reached the provider.
            None => {
                commands
                    .write(EndUnopened {
                        payment_id,
                        metadata: &metadata,
                    })
                    .await?
            }
        }
    }
    Ok(rows.len())
}

/// Reconciles at start and then every `every`, payments undecided for
/// longer than `after`, and releases the prepaid bookings unpaid past
/// their delay.
pub fn start_reconciliation(
    commands: Arc<Commands>,
    payments: Arc<Payments>,
    every: Duration,
    after: Duration,
) -> periodic::Worker {
    periodic::every(Duration::ZERO, every, move || {
        let (commands, payments) = (commands.clone(), payments.clone());
        async move {
            if let Err(error) = reconcile(&commands, &payments, after).await {
                tracing::warn!(error = %error.message(), "payments not reconciled; will retry");
            }
            if let Err(error) = crate::services::prepayment::expire_unpaid(&commands).await {
                tracing::warn!(error = %error.message(), "unpaid prepayments not released; will retry");
            }
        }
    })
}

/// The payment `payment_id`, for its family's guardians and its commune's
/// staff.
pub async fn load(commands: &Commands, payment_id: Uuid) -> Result<Payment, ApiError> {
    Ok(
        store::load_many::<Payment>(&commands.pool, &[payment_id.to_string()])
            .await?
            .pop()
            .unwrap_or_default()
            .aggregate,
    )
}
