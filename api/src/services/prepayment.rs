//! Prepaid bookings: a booking in a prepaid unit is held
//! (`PaymentAwaited`) until its prepayment invoice is paid.
//!
//! - [`issue_for_basket`] issues a basket's prepayment invoice, one per
//!   commune, for the lines that await payment (the basket's mutation
//!   calls it for its answer; so does the process manager, should the
//!   server stop in between);
//! - [`Prepayments`], the process manager: a booking promoted into a
//!   prepaid unit gets an invoice of its own, and an `InvoicePaid` of a
//!   prepayment confirms its bookings (`PrepaymentReceived`);
//! - [`expire_unpaid`]: a prepayment left unpaid past its delay (60
//!   minutes unless set otherwise) is cancelled and its bookings released
//!   (`Released`: their places go back, see `promotions`); one whose
//!   payment is in progress waits for that payment to end.
//!
//! Every step is idempotent: an invoice's id follows from what caused it,
//! and a booking is confirmed or released only while it awaits payment.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::Utc;
use cqrs_es::Aggregate;
use espace_famille_domain::calendar::paris_today;
use espace_famille_domain::collectivity::Billed;
use espace_famille_domain::invoice::{
    prepayment_invoice_id, Invoice, InvoiceCommand, InvoiceKind, InvoiceStatus,
};
use espace_famille_domain::reservation::{
    BookingContext, Reservation, ReservationCommand, ReservationStatus,
};
use espace_famille_projections::engine::Projection;
use espace_famille_projections::store::{self, Metadata, RecordedEvent, StoreError};
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use crate::commands::Commands;
use crate::error::ApiError;
use crate::services::billing::{self, Draft};
use crate::services::payment::system_metadata;
use crate::services::{Failure, Work, Write};

pub const PREPAYMENTS: &str = "prepayments";

/// How long a prepayment may stay unpaid, unless set otherwise.
pub const DEFAULT_DELAY: Duration = Duration::from_secs(60 * 60);

/// The prepayment invoices of basket `basket_id`'s lines that await
/// payment (issued now if they were not): their ids.
pub async fn issue_for_basket(
    commands: &Commands,
    basket_id: Uuid,
    delay: Duration,
) -> Result<Vec<Uuid>, ApiError> {
    let row = sqlx::query("SELECT outcome FROM baskets WHERE basket_id = $1")
        .bind(basket_id)
        .fetch_optional(&commands.pool)
        .await?;
    let Some(row) = row else {
        return Ok(Vec::new());
    };
    let stored: serde_json::Value = row.try_get("outcome")?;
    let outcome = crate::services::basket::outcome_of(stored)?;
    let awaiting: Vec<Uuid> = outcome
        .lines
        .iter()
        .filter(|l| l.awaiting_payment)
        .map(|l| l.reservation_id)
        .collect();
    issue(commands, basket_id, &awaiting, delay).await
}

/// The prepayment invoices, one per commune, of those of `reservations`
/// that await payment, caused by `cause`: their ids.
async fn issue(
    commands: &Commands,
    cause: Uuid,
    reservations: &[Uuid],
    delay: Duration,
) -> Result<Vec<Uuid>, ApiError> {
    if reservations.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = reservations.iter().map(Uuid::to_string).collect();
    let loaded = store::load_many::<Reservation>(&commands.pool, &ids).await?;
    // Commune → (family, its lines still awaiting payment).
    let mut by_commune: BTreeMap<Uuid, (Uuid, Vec<_>)> = BTreeMap::new();
    for (id, reservation) in reservations.iter().zip(&loaded) {
        let Some(slot) = reservation.aggregate.slot else {
            continue;
        };
        let lines = &mut by_commune
            .entry(slot.collectivity_id)
            .or_insert((slot.family_id, Vec::new()))
            .1;
        // Confirmed or released since: already on its invoice, if any.
        if reservation.aggregate.status == ReservationStatus::AwaitingPayment {
            lines.push((*id, slot));
        }
    }
    let today = paris_today(Utc::now());
    let expires_at = Utc::now() + chrono::Duration::from_std(delay).unwrap_or(chrono::Duration::hours(1));
    let metadata = system_metadata(cause);
    let mut invoices = Vec::new();
    for (collectivity_id, (family_id, slots)) in by_commune {
        let invoice_id = prepayment_invoice_id(cause, collectivity_id);
        if slots.is_empty() {
            let issued = store::load_many::<Invoice>(&commands.pool, &[invoice_id.to_string()]).await?;
            if issued.first().is_some_and(|i| i.version > 0) {
                invoices.push(invoice_id);
            }
            continue;
        }
        let collectivity = commands.current_collectivity(collectivity_id).await?;
        let family = commands.current_family(family_id).await?;
        let mut lines = Vec::with_capacity(slots.len());
        for (reservation_id, slot) in &slots {
            lines.push(billing::line_for(
                &collectivity,
                &family,
                (slot.child_id, slot.unit_id, slot.date),
                *reservation_id,
                Billed::Booked,
            )?);
        }
        // Free days: confirmed at once, nothing to pay.
        if lines.iter().all(|l| l.amount_cents == 0) {
            commands
                .write(Settle {
                    invoice_id,
                    reservations: slots.iter().map(|(id, _)| *id).collect(),
                    release: false,
                    metadata: &metadata,
                })
                .await?;
            continue;
        }
        let draft = Draft {
            id: invoice_id,
            family_id,
            kind: InvoiceKind::Prepayment { basket_id: cause },
            lines,
            payable_online_until: today,
            due_on: today,
            expires_at: Some(expires_at),
            refunds: Vec::new(),
        };
        billing::issue(commands, collectivity_id, &[draft], today, &metadata).await?;
        invoices.push(invoice_id);
    }
    Ok(invoices)
}

/// A prepayment settled: its bookings confirmed (paid) or released (not
/// paid in time, the invoice cancelled), and its row marked.
struct Settle<'a> {
    invoice_id: Uuid,
    /// Its bookings (those still awaiting payment are settled).
    reservations: Vec<Uuid>,
    release: bool,
    metadata: &'a Metadata,
}

impl Write for Settle<'_> {
    type Answer = ();

    async fn attempt(&mut self, work: &mut Work<'_>) -> Result<(), Failure> {
        let commands = work.commands();
        if self.release {
            let loaded = work.load::<Invoice>(self.invoice_id).await?;
            match loaded.aggregate.status {
                // Paid meanwhile: confirmed by the process manager.
                InvoiceStatus::Paid => return Ok(()),
                // A payment in progress ends first (the reconciliation
                // sees to it); the next pass settles.
                InvoiceStatus::Issued if loaded.aggregate.pending_payment.is_some() => return Ok(()),
                InvoiceStatus::Issued => {
                    let cancel = InvoiceCommand::Cancel {
                        reason: crate::i18n::say("payment.prepayment_lapsed", &[]),
                    };
                    work.decide::<Invoice>(self.invoice_id, loaded, cancel, &(), self.metadata)
                        .await?;
                }
                InvoiceStatus::Cancelled | InvoiceStatus::None => {}
            }
        }
        let ids: Vec<String> = self.reservations.iter().map(Uuid::to_string).collect();
        let loaded = store::load_many::<Reservation>(&commands.pool, &ids).await?;
        for (id, reservation) in self.reservations.iter().zip(loaded) {
            let (Some(slot), ReservationStatus::AwaitingPayment) =
                (reservation.aggregate.slot, reservation.aggregate.status)
            else {
                continue;
            };
            let context = BookingContext {
                now: Utc::now(),
                collectivity: commands.current_collectivity(slot.collectivity_id).await?,
                family: commands.current_family(slot.family_id).await?,
                overdue_cents: 0,
            };
            let command = if self.release {
                ReservationCommand::Release
            } else {
                ReservationCommand::ConfirmPayment {
                    invoice_id: self.invoice_id,
                }
            };
            work.decide::<Reservation>(*id, reservation, command, &context, self.metadata)
                .await?;
        }
        let conn = work.transaction().await?;
        sqlx::query("UPDATE prepayments SET settled_at = now() WHERE invoice_id = $1")
            .bind(self.invoice_id)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }

    fn reads(&self) -> Option<&'static [&'static str]> {
        Some(&[espace_famille_projections::calendar::CALENDAR])
    }
}

/// The prepayment invoice `invoice_id`, if it is one.
async fn prepayment_invoice(commands: &Commands, invoice_id: Uuid) -> Result<Option<Invoice>, ApiError> {
    let loaded = store::load_many::<Invoice>(&commands.pool, &[invoice_id.to_string()]).await?;
    Ok(loaded.into_iter().next().map(|l| l.aggregate).filter(|i| {
        matches!(
            i.issued.as_ref().map(|issued| &issued.kind),
            Some(InvoiceKind::Prepayment { .. })
        )
    }))
}

async fn settle(
    commands: &Commands,
    invoice_id: Uuid,
    release: bool,
    metadata: &Metadata,
) -> Result<(), ApiError> {
    let Some(invoice) = prepayment_invoice(commands, invoice_id).await? else {
        return Ok(());
    };
    let metadata =
        &crate::services::payment::carried_on(commands, Invoice::TYPE, invoice_id, metadata).await?;
    let reservations = invoice
        .issued
        .iter()
        .flat_map(|i| i.lines.iter().map(|l| l.reservation_id))
        .collect();
    commands
        .write(Settle {
            invoice_id,
            reservations,
            release,
            metadata,
        })
        .await
}

/// Cancels the prepayments unpaid past their delay and releases their
/// bookings, a hundred at a time: how many it looked at.
pub async fn expire_unpaid(commands: &Commands) -> Result<usize, ApiError> {
    let due: Vec<Uuid> = sqlx::query_scalar(
        "SELECT invoice_id FROM prepayments WHERE settled_at IS NULL AND expires_at < now()
         ORDER BY expires_at LIMIT 100",
    )
    .fetch_all(&commands.pool)
    .await?;
    for invoice_id in &due {
        settle(commands, *invoice_id, true, &system_metadata(*invoice_id)).await?;
    }
    Ok(due.len())
}

/// The process manager of prepaid bookings (see the module). It runs on
/// the projection engine beside the promotions, and writes through the
/// write path; it owns no read model and is never rebuilt.
pub struct Prepayments {
    pub commands: Arc<Commands>,
    pub delay: Duration,
}

#[async_trait]
impl Projection for Prepayments {
    fn name(&self) -> &'static str {
        PREPAYMENTS
    }

    fn tables(&self) -> &'static [&'static str] {
        &[]
    }

    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        Some(&[Reservation::TYPE, Invoice::TYPE])
    }

    fn store_filters_types(&self) -> bool {
        false
    }

    fn metadata_of(&self) -> Option<&'static [&'static str]> {
        Some(&["PaymentAwaited"])
    }

    async fn apply(&self, conn: &mut PgConnection, event: &RecordedEvent) -> Result<(), StoreError> {
        self.apply_batch(conn, std::slice::from_ref(event)).await
    }

    async fn apply_batch(
        &self,
        _conn: &mut PgConnection,
        events: &[RecordedEvent],
    ) -> Result<(), StoreError> {
        // A PaymentAwaited's correlation: its basket, or what promoted it.
        let mut awaited: Vec<(Option<Uuid>, Uuid, Uuid)> = Vec::new();
        let mut paid: BTreeSet<Uuid> = BTreeSet::new();
        for event in events {
            match (event.aggregate_type.as_str(), event.event_type.as_str()) {
                ("Reservation", "PaymentAwaited") => {
                    let correlation = event
                        .metadata
                        .as_deref()
                        .and_then(|m| serde_json::from_str::<serde_json::Value>(m).ok())
                        .and_then(|m| m["correlation_id"].as_str().and_then(|c| c.parse::<Uuid>().ok()));
                    let reservation = espace_famille_projections::calendar::parse_id(event)?;
                    awaited.push((correlation, event.event_id, reservation));
                }
                ("Invoice", "InvoicePaid") => {
                    paid.insert(espace_famille_projections::calendar::parse_id(event)?);
                }
                _ => {}
            }
        }
        // Each correlation looked up once: a basket's lines share one.
        let correlations: Vec<Uuid> = awaited
            .iter()
            .filter_map(|(c, _, _)| *c)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let baskets: BTreeSet<Uuid> = self.baskets_among(&correlations).await?;
        // Promoted from a waiting list: an invoice of its own.
        let promoted: Vec<(Uuid, Uuid)> = awaited
            .iter()
            .filter(|(c, _, _)| !c.is_some_and(|c| baskets.contains(&c)))
            .map(|(_, event_id, reservation)| (*event_id, *reservation))
            .collect();
        let failed = |e: ApiError| StoreError::Corrupt(format!("prepayments: {}", e.message()));
        for basket in baskets {
            issue_for_basket(&self.commands, basket, self.delay)
                .await
                .map_err(failed)?;
        }
        for (cause, reservation) in promoted {
            issue(&self.commands, cause, &[reservation], self.delay)
                .await
                .map_err(failed)?;
        }
        for invoice_id in paid {
            settle(&self.commands, invoice_id, false, &system_metadata(invoice_id))
                .await
                .map_err(failed)?;
        }
        Ok(())
    }
}

impl Prepayments {
    /// Those of `ids` that are baskets' ids.
    async fn baskets_among(&self, ids: &[Uuid]) -> Result<BTreeSet<Uuid>, StoreError> {
        if ids.is_empty() {
            return Ok(BTreeSet::new());
        }
        let found: Vec<Uuid> = sqlx::query_scalar("SELECT basket_id FROM baskets WHERE basket_id = ANY($1)")
            .bind(ids)
            .fetch_all(&self.commands.pool)
            .await?;
        Ok(found.into_iter().collect())
    }
}
