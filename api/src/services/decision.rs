//! An agent's decision on one reservation: approve or reject a
//! cancellation.

use espace_famille_domain::reservation::{Decision, Reservation, Slot};
use espace_famille_projections::store::{Metadata, StreamAppend};
use uuid::Uuid;

use super::write::{Failure, Work, Write};
use crate::commands::Commands;
use crate::error::ApiError;

/// Decides on one reservation. `authorise` sees what the reservation is
/// about and answers with the metadata of the caller allowed to decide, or
/// a refusal. A decision needs the reservation alone: one read, then one
/// insert (shared with the decisions that arrive together). Returns the
/// reservation as decided.
pub async fn decide(
    commands: &Commands,
    reservation_id: Uuid,
    decision: Decision,
    authorise: impl Fn(&Slot) -> Result<Metadata, ApiError> + Send + Sync,
) -> Result<Reservation, ApiError> {
    commands
        .write(Decide {
            reservation_id,
            decision,
            authorise,
        })
        .await
}

struct Decide<F> {
    reservation_id: Uuid,
    decision: Decision,
    authorise: F,
}

impl<F> Write for Decide<F>
where
    F: Fn(&Slot) -> Result<Metadata, ApiError> + Send + Sync,
{
    type Answer = Reservation;

    async fn attempt(&mut self, work: &mut Work<'_>) -> Result<Reservation, Failure> {
        let loaded = work.load::<Reservation>(self.reservation_id).await?;
        let slot = loaded
            .aggregate
            .slot
            .ok_or_else(|| ApiError::NotFound(format!("no reservation {}", self.reservation_id)))?;
        let metadata = (self.authorise)(&slot)?;
        let event = loaded
            .aggregate
            .check_decision(self.decision.clone())
            .map_err(ApiError::from)?;
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

    fn contended(&self) -> String {
        format!("reservation {} kept changing; try again", self.reservation_id)
    }
}
