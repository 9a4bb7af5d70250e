//! Absences: a parent reports one on a booked day, against the commune's
//! reasons and delay and the clock. (An agent's judgement of it needs the
//! reservation alone: it is a decision, see [`super::decision`].)

use std::sync::Arc;

use chrono::Utc;
use espace_famille_domain::family::Family;
use espace_famille_domain::reservation::{BookingContext, Reservation, ReservationCommand, Slot};
use espace_famille_projections::store::Metadata;
use uuid::Uuid;

use super::write::{Failure, Work, Write};
use crate::commands::Commands;
use crate::error::ApiError;
use crate::i18n::say;

/// Runs a parent's command that needs the commune, the family and the
/// clock (a reported absence) on one reservation. `authorise` sees what the
/// reservation is about and answers with the metadata of the caller allowed
/// to act, or a refusal. Returns the reservation as it now stands.
pub async fn run(
    commands: &Commands,
    reservation_id: Uuid,
    command: ReservationCommand,
    authorise: impl Fn(&Slot) -> Result<Metadata, ApiError> + Send + Sync,
) -> Result<Reservation, ApiError> {
    commands
        .write(Absence {
            reservation_id,
            command,
            authorise,
        })
        .await
}

struct Absence<F> {
    reservation_id: Uuid,
    command: ReservationCommand,
    authorise: F,
}

impl<F> Write for Absence<F>
where
    F: Fn(&Slot) -> Result<Metadata, ApiError> + Send + Sync,
{
    type Answer = Reservation;

    async fn attempt(&mut self, work: &mut Work<'_>) -> Result<Reservation, Failure> {
        let loaded = work.load::<Reservation>(self.reservation_id).await?;
        let slot = loaded
            .aggregate
            .slot
            .ok_or_else(|| ApiError::NotFound(say("api.no_reservation", &[("id", &self.reservation_id)])))?;
        let metadata = (self.authorise)(&slot)?;
        let commands = work.commands();
        let collectivity = commands.current_collectivity(slot.collectivity_id).await?;
        let family: Arc<Family> = commands.current_family(slot.family_id).await?;
        let context = BookingContext {
            now: Utc::now(),
            collectivity,
            family,
            overdue_cents: 0,
        };
        work.decide::<Reservation>(
            self.reservation_id,
            loaded,
            self.command.clone(),
            &context,
            &metadata,
        )
        .await
    }

    fn contended(&self) -> String {
        say("api.contended_reservation", &[("id", &self.reservation_id)])
    }
}
