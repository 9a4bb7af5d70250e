//! Where a reservation is (its family, child, commune, unit and day): in
//! its stream's first event, immutable. Read models that see later events
//! take it from their batch, or from the store.

use std::collections::HashMap;

use espace_famille_domain::reservation::{Reservation, ReservationEvent, Slot};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::calendar::parse_id;
use crate::store::{RecordedEvent, StoreError};

/// The slots of the reservations `wanted` whose first event is in this
/// batch: no query.
pub fn in_batch(
    events: &[RecordedEvent],
    wanted: impl Fn(&Uuid) -> bool,
) -> Result<HashMap<Uuid, Slot>, StoreError> {
    let mut slots = HashMap::new();
    let firsts = events
        .iter()
        .filter(|e| e.aggregate_type == "Reservation" && e.sequence == 1);
    for event in firsts {
        let id = parse_id(event)?;
        if !wanted(&id) {
            continue;
        }
        if let Some(slot) = event.decode::<Reservation>()?.slot() {
            slots.insert(id, slot);
        }
    }
    Ok(slots)
}

/// The slots of these reservations from their streams' first events: one
/// index lookup per stream.
pub async fn from_first_events(
    conn: &mut PgConnection,
    reservation_ids: &[String],
) -> Result<HashMap<Uuid, Slot>, StoreError> {
    let mut slots = HashMap::with_capacity(reservation_ids.len());
    for (id, payload) in crate::store::first_events(&mut *conn, "Reservation", reservation_ids).await? {
        let corrupt = |e: String| StoreError::Corrupt(format!("reservation {id}: {e}"));
        let reservation_id: Uuid = id.parse().map_err(|_| corrupt("not a uuid".into()))?;
        let first: ReservationEvent = serde_json::from_value(payload).map_err(|e| corrupt(e.to_string()))?;
        let slot = first
            .slot()
            .ok_or_else(|| corrupt("does not start with its slot".into()))?;
        slots.insert(reservation_id, slot);
    }
    Ok(slots)
}
