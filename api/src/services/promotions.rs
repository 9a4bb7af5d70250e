//! The promotions' process manager: when a reservation lets go of a place
//! or of its ticket (cancelled, refused by an agent, off the waiting list,
//! its day closed, not paid in time) or a commune gives a unit more places, the day is
//! settled (see [`places::Settle`]): brought in line with its reservations,
//! and whoever is first in line takes each free place, by an event of the
//! day's places and one of the reservation (`Promoted`), which the family
//! is e-mailed (see `decision_mails`).
//!
//! It runs on the projection engine, in a group of its own, and writes
//! through the write path like any command. Exactly once: a settling
//! writes only what the day's places and the reservations' streams, read
//! afresh under the day's lock, say is owed, so a batch applied again (a
//! crash after the write, before the checkpoint) finds nothing more to do.
//! It owns no read model and is never rebuilt.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{NaiveDate, Utc};
use cqrs_es::Aggregate;
use espace_famille_domain::collectivity::{Collectivity, CollectivityEvent};
use espace_famille_domain::reservation::Reservation;
use espace_famille_projections::engine::Projection;
use espace_famille_projections::slots;
use espace_famille_projections::store::{Metadata, RecordedEvent, StoreError};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::commands::Commands;
use crate::error::ApiError;
use crate::services::places::{self, Settle};

pub const PROMOTIONS: &str = "promotions";

/// The reservation events that may let a place or a ticket go.
const LETTING_GO: &[&str] = &[
    "ReservationCancelled",
    "AgentApproved",
    "BookingRejected",
    "ReservationCancelledByCommune",
    "LeftWaitingList",
    "Released",
];

/// The commune's events that may free places.
const MORE_PLACES: &[&str] = &["UnitPlacesSet", "DayPlacesSet"];

pub struct Promotions {
    pub commands: Arc<Commands>,
}

#[async_trait]
impl Projection for Promotions {
    fn name(&self) -> &'static str {
        PROMOTIONS
    }

    fn tables(&self) -> &'static [&'static str] {
        &[]
    }

    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        Some(&[Reservation::TYPE, Collectivity::TYPE])
    }

    /// Reservations are nearly every event of a rush: reading them all
    /// costs less than asking the store to pick them.
    fn store_filters_types(&self) -> bool {
        false
    }

    fn metadata_of(&self) -> Option<&'static [&'static str]> {
        Some(&[])
    }

    async fn apply(&self, conn: &mut PgConnection, event: &RecordedEvent) -> Result<(), StoreError> {
        self.apply_batch(conn, std::slice::from_ref(event)).await
    }

    /// The days the batch touched, each settled once, in order.
    async fn apply_batch(&self, conn: &mut PgConnection, events: &[RecordedEvent]) -> Result<(), StoreError> {
        let mut letting_go: Vec<(Uuid, Uuid)> = Vec::new();
        let mut raised: Vec<(Uuid, Option<NaiveDate>, Uuid)> = Vec::new();
        for event in events {
            let kind = event.event_type.as_str();
            if event.aggregate_type == Reservation::TYPE && LETTING_GO.contains(&kind) {
                letting_go.push((
                    espace_famille_projections::calendar::parse_id(event)?,
                    event.event_id,
                ));
            } else if event.aggregate_type == Collectivity::TYPE && MORE_PLACES.contains(&kind) {
                match event.decode::<Collectivity>()? {
                    CollectivityEvent::UnitPlacesSet { unit_id, .. } => {
                        raised.push((unit_id, None, event.event_id))
                    }
                    CollectivityEvent::DayPlacesSet { unit_id, date, .. } => {
                        raised.push((unit_id, Some(date), event.event_id))
                    }
                    _ => {}
                }
            }
        }
        if letting_go.is_empty() && raised.is_empty() {
            return Ok(());
        }
        // Day → the reservations that changed in it, and the first event
        // that caused it.
        let mut days: BTreeMap<(Uuid, NaiveDate), (BTreeSet<Uuid>, Uuid)> = BTreeMap::new();
        if !letting_go.is_empty() {
            let ids: BTreeSet<Uuid> = letting_go.iter().map(|(id, _)| *id).collect();
            let mut found = slots::in_batch(events, |id| ids.contains(id))?;
            let missing: Vec<String> = ids
                .iter()
                .filter(|id| !found.contains_key(id))
                .map(Uuid::to_string)
                .collect();
            if !missing.is_empty() {
                found.extend(slots::from_first_events(conn, &missing).await?);
            }
            for (id, cause) in letting_go {
                if let Some(slot) = found.get(&id) {
                    let entry = days
                        .entry((slot.unit_id, slot.date))
                        .or_insert_with(|| (BTreeSet::new(), cause));
                    entry.0.insert(id);
                }
            }
        }
        for (unit_id, date, cause) in raised {
            let dates: Vec<NaiveDate> = match date {
                Some(date) => vec![date],
                None => {
                    let today = espace_famille_domain::calendar::paris_today(Utc::now());
                    sqlx::query_scalar(
                        "SELECT DISTINCT day FROM waiting_lists WHERE unit_id = $1 AND day >= $2 ORDER BY day",
                    )
                    .bind(unit_id)
                    .bind(today)
                    .fetch_all(&mut *conn)
                    .await?
                }
            };
            for date in dates {
                days.entry((unit_id, date))
                    .or_insert_with(|| (BTreeSet::new(), cause));
            }
        }
        // A day whose unit counts no places and collects no requests has
        // nothing to hand on (when its limit was lifted, everyone waiting
        // was promoted): no write at all, as for most of a canteen's
        // cancellations.
        let units: Vec<Uuid> = days
            .keys()
            .map(|(unit, _)| *unit)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let communes: Vec<(Uuid, Uuid)> =
            sqlx::query_as("SELECT unit_id, collectivity_id FROM directory_units WHERE unit_id = ANY($1)")
                .bind(&units)
                .fetch_all(&mut *conn)
                .await?;
        let mut counting: BTreeSet<(Uuid, NaiveDate)> = BTreeSet::new();
        for (unit_id, commune) in communes {
            let collectivity =
                self.commands
                    .current_collectivity(commune)
                    .await
                    .map_err(|error| match error {
                        ApiError::Unavailable(_) => StoreError::Conflict,
                        other => StoreError::Corrupt(format!("the commune of unit {unit_id}: {other:?}")),
                    })?;
            for (unit, date) in days.keys().filter(|(unit, _)| *unit == unit_id) {
                let allocated = collectivity
                    .window_of(*unit, *date)
                    .is_some_and(|w| w.allocation.is_some());
                if collectivity.places_on(*unit, *date).is_some() || allocated {
                    counting.insert((*unit, *date));
                }
            }
        }
        days.retain(|day, _| counting.contains(day));
        for ((unit_id, date), (changed, cause)) in days {
            let settle = Settle {
                unit_id,
                date,
                changed: changed.into_iter().collect(),
                metadata: system_metadata(cause),
            };
            places::settle(&self.commands, settle)
                .await
                .map_err(|error| match error {
                    // Tried again with the batch.
                    ApiError::Conflict(_) | ApiError::Unavailable(_) => StoreError::Conflict,
                    other => {
                        StoreError::Corrupt(format!("settling the places of {unit_id} on {date}: {other:?}"))
                    }
                })?;
        }
        Ok(())
    }
}

/// The metadata of a settling caused by the event `cause`.
fn system_metadata(cause: Uuid) -> Metadata {
    Metadata {
        actor_id: "system:promotions".into(),
        actor_role: "system".into(),
        correlation_id: cause,
        causation_id: cause,
        command_id: Uuid::new_v4(),
        requested_at: Utc::now(),
    }
}
