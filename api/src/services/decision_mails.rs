//! When an agent approves or rejects a booking or a cancellation, or a
//! booking is promoted from the waiting list, the family's guardians are
//! told by e-mail, once per decision, in two steps:
//!
//! 1. a process manager in the bookings' group (which reads every
//!    reservation event once for all its projections) keeps a notice of
//!    each decision, in one statement per batch and in the batch's
//!    transaction: nothing is lost, nothing is noticed twice. It owns no
//!    read model and is never rebuilt (that would send every message
//!    again).
//! 2. a worker turns the notices into messages in the outbox at the pace
//!    they are delivered (`MAIL_PER_SECOND`), a tenth of a second's worth a
//!    round: slots, units, families
//!    (names opened with their keys), guardians and one insert, and the
//!    notices deleted, in one transaction.
//!
//! Composing the messages inside the bookings' transaction made every
//! approval wait for it (decision 0021).

use std::collections::HashMap;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use cqrs_es::Aggregate;
use espace_famille_domain::family::Family;
use espace_famille_domain::reservation::{Reservation, ReservationEvent};
use espace_famille_projections::engine::Projection;
use espace_famille_projections::slots;
use espace_famille_projections::store::{self, RecordedEvent, StoreError};
use sqlx::{PgConnection, PgPool, Row};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::auth::accounts;
use crate::error::ApiError;
use crate::mail::{self, Decided, MailSettings};

pub const DECISION_MAILS: &str = "decision_mails";

/// The decisions a family is told of.
const DECISIONS: &[&str] = &[
    "BookingApproved",
    "BookingRejected",
    "AgentApproved",
    "AgentRejected",
    "Promoted",
    "PlaceAllocated",
    "AllocationWaitListed",
];

/// The process manager: a notice per decision.
pub struct DecisionMails;

#[async_trait]
impl Projection for DecisionMails {
    fn name(&self) -> &'static str {
        DECISION_MAILS
    }

    fn tables(&self) -> &'static [&'static str] {
        &[]
    }

    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        Some(&[Reservation::TYPE])
    }

    /// Read with the calendar, which reads every reservation event.
    fn store_filters_types(&self) -> bool {
        false
    }

    fn metadata_of(&self) -> Option<&'static [&'static str]> {
        Some(&[])
    }

    async fn apply(&self, conn: &mut PgConnection, event: &RecordedEvent) -> Result<(), StoreError> {
        self.apply_batch(conn, std::slice::from_ref(event)).await
    }

    /// One insert for a batch's decisions; a batch without any writes
    /// nothing.
    async fn apply_batch(&self, conn: &mut PgConnection, events: &[RecordedEvent]) -> Result<(), StoreError> {
        let mut notices = Notices::default();
        for event in events {
            if event.aggregate_type != Reservation::TYPE || !DECISIONS.contains(&event.event_type.as_str()) {
                continue;
            }
            let (decided, note) = match event.decode::<Reservation>()? {
                ReservationEvent::BookingApproved { comment } => (Decided::BookingApproved, comment),
                ReservationEvent::BookingRejected { reason } => (Decided::BookingRejected, Some(reason)),
                ReservationEvent::AgentApproved { comment } => (Decided::CancellationApproved, comment),
                ReservationEvent::AgentRejected { reason } => (Decided::CancellationRejected, Some(reason)),
                ReservationEvent::Promoted => (Decided::Promoted, None),
                ReservationEvent::PlaceAllocated { .. } => (Decided::Allocated, None),
                ReservationEvent::AllocationWaitListed { position, .. } => {
                    (Decided::AllocationWaitListed, Some(position.to_string()))
                }
                _ => continue,
            };
            let reservation_id: Uuid = event.aggregate_id.parse().map_err(|_| {
                StoreError::Corrupt(format!("reservation id {} is not a uuid", event.aggregate_id))
            })?;
            notices.events.push(event.event_id);
            notices.reservations.push(reservation_id);
            notices.decided.push(decided_name(decided));
            notices.notes.push(note);
            notices.at.push(event.recorded_at);
        }
        if notices.events.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO decision_notices (event_id, reservation_id, decided, note, recorded_at)
             SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::timestamptz[])
             ON CONFLICT (event_id) DO NOTHING",
        )
        .bind(&notices.events)
        .bind(&notices.reservations)
        .bind(&notices.decided)
        .bind(&notices.notes)
        .bind(&notices.at)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}

/// The rows of the notices' insert, column by column.
#[derive(Default)]
struct Notices {
    events: Vec<Uuid>,
    reservations: Vec<Uuid>,
    decided: Vec<&'static str>,
    notes: Vec<Option<String>>,
    at: Vec<DateTime<Utc>>,
}

fn decided_name(decided: Decided) -> &'static str {
    match decided {
        Decided::BookingApproved => "booking_approved",
        Decided::BookingRejected => "booking_rejected",
        Decided::CancellationApproved => "cancellation_approved",
        Decided::CancellationRejected => "cancellation_rejected",
        Decided::Promoted => "promoted",
        Decided::Allocated => "allocated",
        Decided::AllocationWaitListed => "allocation_wait_listed",
    }
}

fn decided_of(name: &str) -> Option<Decided> {
    Some(match name {
        "booking_approved" => Decided::BookingApproved,
        "booking_rejected" => Decided::BookingRejected,
        "cancellation_approved" => Decided::CancellationApproved,
        "cancellation_rejected" => Decided::CancellationRejected,
        "promoted" => Decided::Promoted,
        "allocated" => Decided::Allocated,
        "allocation_wait_listed" => Decided::AllocationWaitListed,
        _ => return None,
    })
}

/// How long the worker waits between rounds, and when no notice is left.
const ROUND: Duration = Duration::from_millis(100);
const IDLE: Duration = Duration::from_secs(1);

/// The running worker that turns notices into messages.
pub struct NoticesWorker {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl NoticesWorker {
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Starts turning notices into messages, until shut down.
pub fn start(pool: PgPool, settings: MailSettings) -> NoticesWorker {
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        loop {
            // Composed at the pace they are delivered (a tenth of a
            // second's worth each round): e-mail gives way to the requests
            // being served, in small steps rather than in bursts that
            // would hold them up.
            let per_round = i64::from((settings.per_second / 10).clamp(1, 500));
            let wait = match compose(&pool, &settings, per_round).await {
                Ok(0) => IDLE,
                Ok(_) => ROUND,
                Err(error) => {
                    tracing::warn!(error = %error.message(), "decision e-mails not composed; will retry");
                    IDLE * 5
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stopped.changed() => return,
            }
        }
    });
    NoticesWorker { stop, task }
}

/// Turns the oldest notices into messages in the outbox, in one
/// transaction; how many it handled.
pub async fn compose(pool: &PgPool, settings: &MailSettings, limit: i64) -> Result<usize, ApiError> {
    let mut tx = pool.begin().await?;
    let rows = sqlx::query(
        "SELECT event_id, reservation_id, decided, note FROM decision_notices
         ORDER BY recorded_at LIMIT $1 FOR UPDATE SKIP LOCKED",
    )
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    if rows.is_empty() {
        return Ok(0);
    }
    let mut handled = Vec::with_capacity(rows.len());
    let mut decisions = Vec::with_capacity(rows.len());
    for row in &rows {
        let event_id: Uuid = row.try_get("event_id")?;
        let reservation_id: Uuid = row.try_get("reservation_id")?;
        let decided: String = row.try_get("decided")?;
        let note: Option<String> = row.try_get("note")?;
        handled.push(event_id);
        let decided = decided_of(&decided)
            .ok_or_else(|| ApiError::Internal(format!("unknown decision {decided:?}")))?;
        decisions.push((reservation_id, decided, note));
    }
    let ids: Vec<String> = decisions.iter().map(|(id, _, _)| id.to_string()).collect();
    let slots = slots::from_first_events(&mut tx, &ids).await?;
    let units: Vec<Uuid> = slots.values().map(|s| s.unit_id).collect();
    let unit_names: HashMap<Uuid, String> =
        sqlx::query("SELECT unit_id, name FROM directory_units WHERE unit_id = ANY($1)")
            .bind(&units)
            .fetch_all(&mut *tx)
            .await?
            .iter()
            .map(|row| Ok((row.try_get("unit_id")?, row.try_get("name")?)))
            .collect::<Result<_, sqlx::Error>>()?;
    let mut family_ids: Vec<Uuid> = slots.values().map(|s| s.family_id).collect();
    family_ids.sort_unstable();
    family_ids.dedup();
    let families: HashMap<Uuid, Family> = family_ids
        .iter()
        .copied()
        .zip(store::load_families(&mut tx, &family_ids).await?)
        .filter(|(_, loaded)| loaded.aggregate.exists() && !loaded.aggregate.erased)
        .map(|(id, loaded)| (id, loaded.aggregate))
        .collect();
    let mut guardians: HashMap<Uuid, Vec<String>> = HashMap::new();
    for (family_id, email) in accounts::guardians_emails(&mut tx, &family_ids).await? {
        guardians.entry(family_id).or_default().push(email);
    }
    let mut messages = Vec::new();
    for (reservation_id, decided, note) in decisions {
        let slot = slots
            .get(&reservation_id)
            .ok_or_else(|| ApiError::Internal(format!("reservation {reservation_id} has no first event")))?;
        // Erased meanwhile: nobody to write to.
        let Some(family) = families.get(&slot.family_id) else {
            continue;
        };
        let child = family
            .children
            .get(&slot.child_id)
            .and_then(|c| c.first_name.known().cloned())
            .unwrap_or_else(|| "votre enfant".to_string());
        let unit = unit_names
            .get(&slot.unit_id)
            .map(String::as_str)
            .unwrap_or("le service");
        let (subject, body) = mail::decision(settings, decided, slot.date, &child, unit, note.as_deref());
        for email in guardians.get(&slot.family_id).into_iter().flatten() {
            messages.push(mail::Queued {
                family_id: Some(slot.family_id),
                recipient: email.clone(),
                subject: subject.clone(),
                body: body.clone(),
            });
        }
    }
    mail::enqueue_many(&mut tx, &messages).await?;
    sqlx::query("DELETE FROM decision_notices WHERE event_id = ANY($1)")
        .bind(&handled)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(handled.len())
}
