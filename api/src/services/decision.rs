//! An agent's decision on one reservation: approve or reject a booking or
//! a cancellation, judge an absence.

use espace_famille_domain::reservation::{Decision, Reservation, ReservationError, ReservationEvent, Slot};
use espace_famille_projections::store::{Metadata, StreamAppend};
use uuid::Uuid;

use super::write::{Failure, Work, Write};
use crate::commands::Commands;
use crate::error::ApiError;
use crate::i18n::say;
use crate::unseen::Reader;

/// Decides on one reservation. `authorise` sees what the reservation is
/// about and answers with the metadata of the caller allowed to decide, or
/// a refusal; `decide` gives the event the decision records, from the
/// reservation alone (an agent's decision depends on no commune, family or
/// clock): one read, then one insert (shared with the decisions that
/// arrive together). Returns the reservation as decided, without waiting
/// for the read models: the next query of the agent, the family or the
/// commune waits for them instead (see [`crate::unseen`]).
pub async fn decide(
    commands: &Commands,
    reservation_id: Uuid,
    decide: impl Fn(&Reservation) -> Result<ReservationEvent, ReservationError> + Send + Sync,
    authorise: impl Fn(&Slot) -> Result<Metadata, ApiError> + Send + Sync,
) -> Result<Reservation, ApiError> {
    commands
        .write(Decide {
            reservation_id,
            decide,
            authorise,
        })
        .await
}

struct Decide<D, F> {
    reservation_id: Uuid,
    decide: D,
    authorise: F,
}

impl<D, F> Write for Decide<D, F>
where
    D: Fn(&Reservation) -> Result<ReservationEvent, ReservationError> + Send + Sync,
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
        let event = (self.decide)(&loaded.aggregate).map_err(ApiError::from)?;
        concerns(work, &slot);
        let stream = StreamAppend::new::<Reservation>(
            self.reservation_id.to_string(),
            loaded.version,
            std::slice::from_ref(&event),
        )?;
        work.append(vec![stream], &metadata)?;
        let mut decided = loaded.aggregate;
        cqrs_es::Aggregate::apply(&mut decided, event);
        Ok(decided)
    }

    /// The answer is the reservation as decided, folded from its events.
    fn reads(&self) -> Option<&'static [&'static str]> {
        Some(&[])
    }

    fn contended(&self) -> String {
        say("api.contended_reservation", &[("id", &self.reservation_id)])
    }
}

/// The family and the commune of a reservation see the decision on their
/// next query, as the deciding agent does (see [`crate::unseen`]).
fn concerns(work: &mut Work<'_>, slot: &Slot) {
    work.concerns(Reader::Family(slot.family_id));
    work.concerns(Reader::Collectivity(slot.collectivity_id));
}

/// The most decisions taken at once.
pub const MAX_DECISIONS: usize = 200;

/// Decides on many reservations at once, all or none: `authorise` checks
/// the caller may decide on each (by what it is about); any refusal refuses
/// them all. Returns the reservations as decided, in the order given.
pub async fn decide_many(
    commands: &Commands,
    decisions: Vec<(Uuid, Decision)>,
    metadata: &Metadata,
    authorise: impl Fn(Uuid, &Slot) -> Result<(), ApiError> + Send + Sync,
) -> Result<Vec<(Uuid, Reservation)>, ApiError> {
    if decisions.is_empty() || decisions.len() > MAX_DECISIONS {
        return Err(ApiError::Validation(say(
            "api.decisions_count",
            &[("max", &MAX_DECISIONS)],
        )));
    }
    let mut seen = std::collections::HashSet::new();
    if let Some((id, _)) = decisions.iter().find(|(id, _)| !seen.insert(*id)) {
        return Err(ApiError::Validation(say("api.decided_twice", &[("id", id)])));
    }
    commands
        .write(DecideMany {
            decisions,
            metadata,
            authorise,
        })
        .await
}

struct DecideMany<'a, F> {
    decisions: Vec<(Uuid, Decision)>,
    metadata: &'a Metadata,
    authorise: F,
}

impl<F> Write for DecideMany<'_, F>
where
    F: Fn(Uuid, &Slot) -> Result<(), ApiError> + Send + Sync,
{
    type Answer = Vec<(Uuid, Reservation)>;

    async fn attempt(&mut self, work: &mut Work<'_>) -> Result<Self::Answer, Failure> {
        let ids: Vec<String> = self.decisions.iter().map(|(id, _)| id.to_string()).collect();
        let loaded =
            espace_famille_projections::store::load_many::<Reservation>(&work.commands().pool, &ids).await?;
        let mut streams = Vec::with_capacity(loaded.len());
        let mut decided = Vec::with_capacity(loaded.len());
        for ((id, decision), loaded) in self.decisions.iter().zip(loaded) {
            let slot = loaded
                .aggregate
                .slot
                .ok_or_else(|| ApiError::NotFound(say("api.no_reservation", &[("id", id)])))?;
            (self.authorise)(*id, &slot)?;
            concerns(work, &slot);
            let event = loaded
                .aggregate
                .check_decision(decision.clone())
                .map_err(ApiError::from)?;
            streams.push(StreamAppend::new::<Reservation>(
                id.to_string(),
                loaded.version,
                std::slice::from_ref(&event),
            )?);
            let mut reservation = loaded.aggregate;
            cqrs_es::Aggregate::apply(&mut reservation, event);
            decided.push((*id, reservation));
        }
        work.append(streams, self.metadata)?;
        Ok(decided)
    }

    /// The answers are the reservations as decided, folded from their
    /// events.
    fn reads(&self) -> Option<&'static [&'static str]> {
        Some(&[])
    }

    fn contended(&self) -> String {
        say("api.contended_reservations", &[])
    }
}
