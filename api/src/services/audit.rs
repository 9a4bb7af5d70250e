//! What auditors and agents read of the store itself: the history of any
//! aggregate, paged, and the state of one as its events recorded up to an
//! instant built it.
//!
//! Who may read a stream's history is who may read the aggregate: a
//! reservation's, an invoice's, a payment's family and commune; a family's
//! guardians, and the staff of its communes; a commune's staff. An agent
//! of one commune does not read the events of a family that name only
//! another commune (an enrolment there, a quotient familial there).

use chrono::{DateTime, Utc};
use espace_famille_domain::collectivity::Collectivity;
use espace_famille_domain::family::Family;
use espace_famille_domain::invoice::Invoice;
use espace_famille_domain::payment::Payment;
use espace_famille_domain::reservation::Reservation;
use espace_famille_projections::store::{self, RecordedEvent};
use uuid::Uuid;

use crate::auth::identity::Caller;
use crate::commands::Commands;
use crate::error::ApiError;
use crate::i18n::say;

/// The aggregates whose history can be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Reservation,
    Family,
    Invoice,
    Payment,
    Collectivity,
}

impl Kind {
    pub fn aggregate_type(self) -> &'static str {
        use cqrs_es::Aggregate;
        match self {
            Kind::Reservation => Reservation::TYPE,
            Kind::Family => Family::TYPE,
            Kind::Invoice => Invoice::TYPE,
            Kind::Payment => Payment::TYPE,
            Kind::Collectivity => Collectivity::TYPE,
        }
    }
}

/// The most events of one page.
pub const MAX_PAGE: i64 = 500;

/// A page of a stream's history.
pub struct HistoryPage {
    pub events: Vec<RecordedEvent>,
    /// The sequence to ask after for the next page; none: the last page.
    pub next_after: Option<i64>,
}

/// Checks `caller` may read `id`'s history; for a family read by staff,
/// the communes whose events it may see (`None`: every event).
async fn readable(
    commands: &Commands,
    caller: &Caller,
    kind: Kind,
    id: Uuid,
) -> Result<Option<Vec<Uuid>>, ApiError> {
    caller.identity()?;
    let hidden = || ApiError::NotFound(say("api.no_history", &[("id", &id)]));
    let key = id.to_string();
    match kind {
        Kind::Reservation => {
            let (reservation, _) = store::state_as_of::<Reservation>(&commands.pool, &key, None).await?;
            let slot = reservation.slot.ok_or_else(hidden)?;
            caller
                .require_reader_of(slot.family_id, &[slot.collectivity_id])
                .map_err(|_| hidden())?;
        }
        Kind::Invoice => {
            let (invoice, _) = store::state_as_of::<Invoice>(&commands.pool, &key, None).await?;
            let issued = invoice.issued.ok_or_else(hidden)?;
            caller
                .require_reader_of(issued.family_id, &[issued.collectivity_id])
                .map_err(|_| hidden())?;
        }
        Kind::Payment => {
            let (payment, _) = store::state_as_of::<Payment>(&commands.pool, &key, None).await?;
            let started = payment.started.ok_or_else(hidden)?;
            caller
                .require_reader_of(started.family_id, &[started.collectivity_id])
                .map_err(|_| hidden())?;
        }
        Kind::Collectivity => {
            caller.require_staff_reader_of(id).map_err(|_| hidden())?;
        }
        Kind::Family => {
            let family = commands.current_family(id).await.map_err(|_| hidden())?;
            caller
                .require_reader_of(id, &family.collectivities())
                .map_err(|_| hidden())?;
            return Ok(caller.visible_communes(id));
        }
    }
    Ok(None)
}

/// The communes an event's payload names (its `collectivity_id` fields).
fn communes_named(value: &serde_json::Value, found: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, value) in map {
                match (key.as_str(), value) {
                    ("collectivity_id", serde_json::Value::String(id)) => found.push(id.clone()),
                    _ => communes_named(value, found),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| communes_named(v, found)),
        _ => {}
    }
}

/// Whether a family's event is for a reader who sees `communes`: it names
/// none, or one of them.
fn visible_to(event: &RecordedEvent, communes: &[Uuid]) -> bool {
    let mut named = Vec::new();
    communes_named(&event.payload_value(), &mut named);
    named.is_empty() || named.iter().any(|n| communes.iter().any(|c| c.to_string() == *n))
}

/// A page of `id`'s history: its events after sequence `after`, at most
/// `first`, in order.
pub async fn history(
    commands: &Commands,
    caller: &Caller,
    kind: Kind,
    id: Uuid,
    after: i64,
    first: i64,
) -> Result<HistoryPage, ApiError> {
    if !(1..=MAX_PAGE).contains(&first) || after < 0 {
        return Err(ApiError::Validation(say("api.first_out_of_range", &[])));
    }
    let communes = readable(commands, caller, kind, id).await?;
    let mut events = store::stream_page(
        &commands.pool,
        kind.aggregate_type(),
        &id.to_string(),
        after,
        first + 1,
        None,
    )
    .await?;
    let more = events.len() as i64 > first;
    events.truncate(first as usize);
    let next_after = more.then(|| events.last().map(|e| e.sequence)).flatten();
    if let Some(communes) = communes {
        events.retain(|e| visible_to(e, &communes));
    }
    Ok(HistoryPage { events, next_after })
}

/// `A`'s state as its events recorded up to `as_of` built it; `None`: as
/// it is now. An aggregate that did not exist yet is its default state.
pub async fn as_of<A: cqrs_es::Aggregate>(
    commands: &Commands,
    id: Uuid,
    as_of: Option<DateTime<Utc>>,
) -> Result<A, ApiError> {
    Ok(store::state_as_of::<A>(&commands.pool, &id.to_string(), as_of)
        .await?
        .0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_names_its_communes_at_any_depth() {
        let payload = serde_json::json!({ "ChildEnrolled": { "enrolment": {
            "child_id": "c", "collectivity_id": "a", "service_id": "s" } } });
        let mut found = Vec::new();
        communes_named(&payload, &mut found);
        assert_eq!(found, ["a"]);
        let mut none = Vec::new();
        communes_named(
            &serde_json::json!({ "ChildRegistered": { "child": { "id": "c" } } }),
            &mut none,
        );
        assert!(none.is_empty());
    }
}
