//! An agent closes days: the closure is recorded, then every booking that
//! stands on those days is cancelled by the commune (not charged) and the
//! families are told by e-mail. Sending the same closure again records
//! nothing new and cancels what is still booked: a closure interrupted
//! between the two is completed so.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::{NaiveDate, Utc};
use espace_famille_domain::calendar::Closure;
use espace_famille_domain::collectivity::{Collectivity, CollectivityCommand};
use espace_famille_domain::family::Family;
use espace_famille_domain::reservation::{BookingContext, Reservation, ReservationCommand};
use espace_famille_projections::calendar::CALENDAR;
use espace_famille_projections::store::{self, Metadata};
use sqlx::Row;
use uuid::Uuid;

use super::write::{Failure, Work, Write};
use crate::auth::accounts;
use crate::commands::Commands;
use crate::error::ApiError;
use crate::i18n::say;
use crate::mail::MailSettings;

/// A booking the closure cancelled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cancelled {
    pub reservation_id: Uuid,
    pub family_id: Uuid,
    pub child_id: Uuid,
    pub unit_id: Uuid,
    pub date: NaiveDate,
}

/// How many bookings one write cancels (a closure of a whole term for a
/// large commune is written in several).
const PER_WRITE: usize = 400;

/// Records the closure, then cancels the bookings on its days; returns them.
pub async fn close(
    commands: &Commands,
    collectivity_id: Uuid,
    closure: Closure,
    metadata: &Metadata,
    mail: &MailSettings,
) -> Result<Vec<Cancelled>, ApiError> {
    let command = CollectivityCommand::AddClosure {
        closure: closure.clone(),
    };
    let commune = commands
        .execute::<Collectivity>(collectivity_id, command, metadata)
        .await?;
    // The bookings are found in the calendar: it must hold every booking
    // committed so far.
    if !commands.wait_for_everything(&[CALENDAR]).await? {
        return Err(ApiError::Unavailable(say("api.calendar_catching_up", &[])));
    }
    let units: Vec<Uuid> = match closure.unit_id {
        Some(unit) => vec![unit],
        None => commune.units.keys().copied().collect(),
    };
    let rows = sqlx::query(
        "SELECT reservation_id, family_id, child_id, unit_id, day FROM calendar_reservations
         WHERE collectivity_id = $1 AND unit_id = ANY($2) AND day BETWEEN $3 AND $4
           AND status IN ('requested', 'confirmed', 'awaiting_approval', 'cancellation_requested', 'waitlisted')
         ORDER BY family_id, day, child_id, unit_id",
    )
    .bind(collectivity_id)
    .bind(&units)
    .bind(closure.range.first)
    .bind(closure.range.last)
    .fetch_all(&commands.pool)
    .await?;
    let booked = rows
        .iter()
        .map(|row| {
            Ok(Cancelled {
                reservation_id: row.try_get("reservation_id")?,
                family_id: row.try_get("family_id")?,
                child_id: row.try_get("child_id")?,
                unit_id: row.try_get("unit_id")?,
                date: row.try_get("day")?,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
    let mut cancelled = Vec::with_capacity(booked.len());
    for chunk in booked.chunks(PER_WRITE) {
        cancelled.extend(
            commands
                .write(CancelByCommune {
                    bookings: chunk,
                    reason: &closure.reason,
                    commune: &commune,
                    metadata,
                    mail,
                })
                .await?,
        );
    }
    Ok(cancelled)
}

struct CancelByCommune<'a> {
    bookings: &'a [Cancelled],
    reason: &'a str,
    commune: &'a Collectivity,
    metadata: &'a Metadata,
    mail: &'a MailSettings,
}

impl Write for CancelByCommune<'_> {
    type Answer = Vec<Cancelled>;

    async fn attempt(&mut self, work: &mut Work<'_>) -> Result<Vec<Cancelled>, Failure> {
        let ids: Vec<String> = self
            .bookings
            .iter()
            .map(|b| b.reservation_id.to_string())
            .collect();
        let loaded = store::load_many::<Reservation>(&work.commands().pool, &ids).await?;
        let mut cancelled = Vec::new();
        let mut by_family: BTreeMap<Uuid, Vec<(NaiveDate, String, String)>> = BTreeMap::new();
        let mut families: HashMap<Uuid, Arc<Family>> = HashMap::new();
        let commune = Arc::new(self.commune.clone());
        for (booking, reservation) in self.bookings.iter().zip(loaded) {
            // Cancelled meanwhile (by the parent, by an earlier attempt):
            // nothing to do.
            if reservation
                .aggregate
                .check_cancel_by_commune(self.reason)
                .is_err()
            {
                continue;
            }
            let family = match families.get(&booking.family_id) {
                Some(family) => family.clone(),
                None => {
                    let family = work.commands().current_family(booking.family_id).await?;
                    families.insert(booking.family_id, family.clone());
                    family
                }
            };
            let context = BookingContext {
                now: Utc::now(),
                collectivity: commune.clone(),
                family: family.clone(),
                overdue_cents: 0,
            };
            let command = ReservationCommand::CancelByCommune {
                reason: self.reason.to_string(),
            };
            work.decide::<Reservation>(
                booking.reservation_id,
                reservation,
                command,
                &context,
                self.metadata,
            )
            .await?;
            let child = family
                .children
                .get(&booking.child_id)
                .and_then(|c| c.first_name.known().cloned())
                .unwrap_or_else(|| "votre enfant".into());
            let unit = self
                .commune
                .units
                .get(&booking.unit_id)
                .map(|u| u.name.clone())
                .unwrap_or_default();
            by_family
                .entry(booking.family_id)
                .or_default()
                .push((booking.date, child, unit));
            cancelled.push(booking.clone());
        }
        if cancelled.is_empty() {
            return Ok(cancelled);
        }
        let conn = work.transaction().await?;
        for (family_id, days) in &by_family {
            let (subject, body) = crate::mail::closure_cancellations(self.mail, self.reason, days);
            for email in accounts::guardian_emails(&mut *conn, *family_id).await? {
                crate::mail::enqueue(&mut *conn, Some(*family_id), &email, &subject, &body).await?;
            }
        }
        Ok(cancelled)
    }

    fn contended(&self) -> String {
        say("api.contended_closure", &[])
    }
}
