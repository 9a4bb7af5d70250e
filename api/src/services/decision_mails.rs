//! A process manager: when an agent approves or rejects a booking or a
//! cancellation, the family's guardians are told by e-mail — once per
//! decision, queued in the outbox in the projection's transaction. It
//! owns no read model and is never rebuilt (that would send every message
//! again). It runs in the bookings' group, which reads every reservation
//! event once for all its projections: picking the decisions out of a
//! batch costs a comparison per event, where a group of its own would read
//! a rush's every event again.

use std::collections::HashMap;

use async_trait::async_trait;
use cqrs_es::Aggregate;
use espace_famille_domain::family::Family;
use espace_famille_domain::reservation::{Reservation, ReservationEvent};
use espace_famille_projections::engine::Projection;
use espace_famille_projections::slots;
use espace_famille_projections::store::{self, RecordedEvent, StoreError};
use sqlx::{PgConnection, Row};
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
];

pub struct DecisionMails {
    pub mail: MailSettings,
}

fn store_error(error: ApiError) -> StoreError {
    match error {
        ApiError::Internal(detail) => StoreError::Corrupt(detail),
        other => StoreError::Corrupt(other.message()),
    }
}

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

    /// A batch's decisions in a few statements, whatever its size: their
    /// slots, units, families (names opened with their keys), guardians,
    /// and one insert of the messages.
    async fn apply_batch(&self, conn: &mut PgConnection, events: &[RecordedEvent]) -> Result<(), StoreError> {
        let mut decisions = Vec::new();
        for event in events {
            if event.aggregate_type != Reservation::TYPE || !DECISIONS.contains(&event.event_type.as_str()) {
                continue;
            }
            let (decided, note) = match event.decode::<Reservation>()? {
                ReservationEvent::BookingApproved { comment } => (Decided::BookingApproved, comment),
                ReservationEvent::BookingRejected { reason } => (Decided::BookingRejected, Some(reason)),
                ReservationEvent::AgentApproved { comment } => (Decided::CancellationApproved, comment),
                ReservationEvent::AgentRejected { reason } => (Decided::CancellationRejected, Some(reason)),
                _ => continue,
            };
            decisions.push((event.aggregate_id.clone(), decided, note));
        }
        if decisions.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = decisions.iter().map(|(id, _, _)| id.clone()).collect();
        let slots = slots::from_first_events(&mut *conn, &ids).await?;
        let units: Vec<Uuid> = slots.values().map(|s| s.unit_id).collect();
        let unit_names: HashMap<Uuid, String> =
            sqlx::query("SELECT unit_id, name FROM directory_units WHERE unit_id = ANY($1)")
                .bind(&units)
                .fetch_all(&mut *conn)
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
            .zip(store::load_families(&mut *conn, &family_ids).await?)
            .filter(|(_, loaded)| loaded.aggregate.exists() && !loaded.aggregate.erased)
            .map(|(id, loaded)| (id, loaded.aggregate))
            .collect();
        let mut guardians: HashMap<Uuid, Vec<String>> = HashMap::new();
        for (family_id, email) in accounts::guardians_emails(&mut *conn, &family_ids)
            .await
            .map_err(store_error)?
        {
            guardians.entry(family_id).or_default().push(email);
        }
        let mut messages = Vec::new();
        for (id, decided, note) in decisions {
            let reservation_id: Uuid = id
                .parse()
                .map_err(|_| StoreError::Corrupt(format!("reservation id {id} is not a uuid")))?;
            let slot = slots
                .get(&reservation_id)
                .ok_or_else(|| StoreError::Corrupt(format!("reservation {id} has no first event")))?;
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
            let (subject, body) =
                mail::decision(&self.mail, decided, slot.date, &child, unit, note.as_deref());
            for email in guardians.get(&slot.family_id).into_iter().flatten() {
                messages.push(mail::Queued {
                    family_id: Some(slot.family_id),
                    recipient: email.clone(),
                    subject: subject.clone(),
                    body: body.clone(),
                });
            }
        }
        mail::enqueue_many(&mut *conn, &messages)
            .await
            .map_err(store_error)?;
        Ok(())
    }
}
