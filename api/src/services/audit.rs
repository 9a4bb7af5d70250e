//! What auditors and agents read of the store itself: the history of any
//! aggregate, paged, what one business operation did across streams, and
//! the state of an aggregate as its events recorded up to an instant
//! built it.
//!
//! Who may read a stream's history is who may read the aggregate: a
//! reservation's, an invoice's, a payment's, a request's family and
//! commune; a family's
//! guardians, and the staff of its communes; a commune's staff. An agent
//! of one commune does not read the events of a family that name only
//! another commune (an enrolment there, a quotient familial there).

use chrono::{DateTime, Utc};
use espace_famille_domain::collectivity::Collectivity;
use espace_famille_domain::family::Family;
use espace_famille_domain::invoice::Invoice;
use espace_famille_domain::payment::Payment;
use espace_famille_domain::request::Request;
use espace_famille_domain::reservation::Reservation;
use std::collections::HashMap;

use espace_famille_domain::invoice::numbers_id;
use espace_famille_projections::store::{self, Commune, FeedFilter, Position, RecordedEvent};
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
    Request,
}

impl Kind {
    /// The kind of the streams of this aggregate type, among those whose
    /// history can be read.
    pub fn of(aggregate_type: &str) -> Option<Kind> {
        [
            Kind::Reservation,
            Kind::Family,
            Kind::Invoice,
            Kind::Payment,
            Kind::Collectivity,
            Kind::Request,
        ]
        .into_iter()
        .find(|kind| kind.aggregate_type() == aggregate_type)
    }

    pub fn aggregate_type(self) -> &'static str {
        use cqrs_es::Aggregate;
        match self {
            Kind::Reservation => Reservation::TYPE,
            Kind::Family => Family::TYPE,
            Kind::Invoice => Invoice::TYPE,
            Kind::Payment => Payment::TYPE,
            Kind::Collectivity => Collectivity::TYPE,
            Kind::Request => Request::TYPE,
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
        Kind::Request => {
            let (request, _) = store::state_as_of::<Request>(&commands.pool, &key, None).await?;
            let submitted = request.submitted.ok_or_else(hidden)?;
            caller
                .require_reader_of(submitted.family_id, &[submitted.collectivity_id])
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

/// A page of events across streams, in commit order: what one business
/// operation did, or a commune's feed.
pub struct CorrelationPage {
    pub events: Vec<RecordedEvent>,
    /// The position to ask after for the next page; none: the last page.
    pub next_after: Option<Position>,
}

/// The events of correlation `id` after `after`, at most `first`, in
/// commit order: of the streams among them `caller` may read the history
/// of (the others, and those of no readable kind but to an auditor of
/// everything, are left out, as a history would hide them).
pub async fn correlation(
    commands: &Commands,
    caller: &Caller,
    id: Uuid,
    after: Option<Position>,
    first: i64,
) -> Result<CorrelationPage, ApiError> {
    caller.identity()?;
    if !(1..=MAX_PAGE).contains(&first) {
        return Err(ApiError::Validation(say("api.first_out_of_range", &[])));
    }
    let mut events = store::correlated(&commands.pool, id, after.unwrap_or_default(), first + 1).await?;
    let more = events.len() as i64 > first;
    events.truncate(first as usize);
    let next_after = more.then(|| events.last().map(|e| e.position)).flatten();
    let mut streams: HashMap<(String, String), Option<Option<Vec<Uuid>>>> = HashMap::new();
    let mut visible = Vec::with_capacity(events.len());
    for event in events {
        let key = (event.aggregate_type.clone(), event.aggregate_id.clone());
        if !streams.contains_key(&key) {
            let access = match (
                Kind::of(&event.aggregate_type),
                event.aggregate_id.parse::<Uuid>(),
            ) {
                (Some(kind), Ok(stream)) => readable(commands, caller, kind, stream).await.ok(),
                _ => caller.require_auditor_of_any(&[]).ok().map(|_| None),
            };
            streams.insert(key.clone(), access);
        }
        match &streams[&key] {
            Some(None) => visible.push(event),
            Some(Some(communes)) if visible_to(&event, communes) => visible.push(event),
            _ => {}
        }
    }
    Ok(CorrelationPage {
        events: visible,
        next_after,
    })
}

/// How many windows of the store one page of a feed reads at most.
const FEED_WINDOWS: usize = 10;

/// The most aggregate or event types a feed filters by, and their length.
pub const MAX_TYPES: usize = 20;
const MAX_TYPE_LENGTH: usize = 64;

/// Who commune `collectivity_id` is, as its events name it.
pub async fn commune(commands: &Commands, collectivity_id: Uuid) -> Result<Commune, ApiError> {
    let collectivity = commands.current_collectivity(collectivity_id).await?;
    let year = chrono::Datelike::year(&Utc::now());
    Ok(Commune {
        collectivity_id,
        unit_ids: collectivity.units.keys().copied().collect(),
        // Invoice numbers run per régie and year, from the first invoices.
        numbers_ids: (2024..=year + 1)
            .map(|y| numbers_id(collectivity_id, y))
            .collect(),
    })
}

/// Checks a feed's filter: a few types, each of bounded length; a range
/// that ends after it starts.
pub fn check_filter(filter: &FeedFilter) -> Result<(), ApiError> {
    let types = [&filter.aggregate_types, &filter.event_types];
    let too_many = types.iter().any(|t| {
        t.as_ref().is_some_and(|t| {
            t.is_empty() || t.len() > MAX_TYPES || t.iter().any(|n| n.len() > MAX_TYPE_LENGTH)
        })
    });
    if too_many {
        return Err(ApiError::Validation(say(
            "api.feed_types",
            &[("max", &MAX_TYPES), ("length", &MAX_TYPE_LENGTH)],
        )));
    }
    if let (Some(from), Some(to)) = (filter.from, filter.to) {
        if to <= from {
            return Err(ApiError::Validation(say("api.feed_range", &[])));
        }
    }
    Ok(())
}

/// A page of every event of commune `collectivity_id` after `after`, in
/// commit order, for its auditors (and auditors of everything).
pub async fn feed(
    commands: &Commands,
    caller: &Caller,
    collectivity_id: Uuid,
    after: Option<Position>,
    first: i64,
    filter: &FeedFilter,
) -> Result<CorrelationPage, ApiError> {
    caller
        .require_auditor_of_any(&[collectivity_id])
        .map_err(|_| ApiError::NotFound(say("api.no_history", &[("id", &collectivity_id)])))?;
    if !(1..=MAX_PAGE).contains(&first) {
        return Err(ApiError::Validation(say("api.first_out_of_range", &[])));
    }
    check_filter(filter)?;
    let commune = commune(commands, collectivity_id).await?;
    let mut events: Vec<RecordedEvent> = Vec::new();
    let mut next_after = after;
    // A few windows of the store at most, then the page ends where the
    // reading stopped, however few events it holds.
    for _ in 0..FEED_WINDOWS {
        let wanted = first + 1 - events.len() as i64;
        let window = store::commune_events(
            &commands.pool,
            &commune,
            next_after.unwrap_or_default(),
            wanted,
            filter,
        )
        .await?;
        events.extend(window.events);
        next_after = window.next;
        if next_after.is_none() || events.len() as i64 > first {
            break;
        }
    }
    if events.len() as i64 > first {
        events.truncate(first as usize);
        next_after = events.last().map(|e| e.position);
    }
    Ok(CorrelationPage { events, next_after })
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
