//! The waiting lists read model: who waits for a place, on which unit and
//! day, with which ticket, as the days' places streams record it. The
//! calendar counts a booking's position from it.

use async_trait::async_trait;
use chrono::NaiveDate;
use espace_famille_domain::places::{Places, PlacesEvent};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::engine::Projection;
use crate::store::{RecordedEvent, StoreError};

pub struct WaitingListsProjection;

pub const WAITING_LISTS: &str = "waiting_lists";

#[async_trait]
impl Projection for WaitingListsProjection {
    fn name(&self) -> &'static str {
        WAITING_LISTS
    }

    fn tables(&self) -> &'static [&'static str] {
        &["waiting_lists"]
    }

    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        Some(&["Places"])
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

    /// In order, runs of joins as one insert and runs of departures as one
    /// delete: a booking may join, leave and join again in one batch.
    async fn apply_batch(&self, conn: &mut PgConnection, events: &[RecordedEvent]) -> Result<(), StoreError> {
        let mut joined = Joined::default();
        let mut left: Vec<Uuid> = Vec::new();
        for event in events.iter().filter(|e| e.aggregate_type == "Places") {
            match event.decode::<Places>()? {
                PlacesEvent::WaitListJoined {
                    reservation_id,
                    unit_id,
                    date,
                    ticket,
                    ..
                } => {
                    if !left.is_empty() {
                        delete(conn, &mut left).await?;
                    }
                    joined.push(reservation_id, unit_id, date, ticket);
                }
                PlacesEvent::WaitListLeft { reservation_id }
                | PlacesEvent::Promoted { reservation_id, .. } => {
                    if !joined.ids.is_empty() {
                        joined.insert(conn).await?;
                    }
                    left.push(reservation_id);
                }
                PlacesEvent::AllocationRun {
                    unit_id,
                    date,
                    order,
                    placed,
                    first_ticket,
                    ..
                } => {
                    if !left.is_empty() {
                        delete(conn, &mut left).await?;
                    }
                    for (offset, reservation_id) in order.into_iter().skip(placed as usize).enumerate() {
                        let ticket = first_ticket.saturating_add(u32::try_from(offset).unwrap_or(u32::MAX));
                        joined.push(reservation_id, unit_id, date, ticket);
                    }
                }
                PlacesEvent::PlaceTaken { .. }
                | PlacesEvent::PlaceFreed { .. }
                | PlacesEvent::RequestCollected { .. } => {}
            }
        }
        joined.insert(conn).await?;
        delete(conn, &mut left).await
    }
}

#[derive(Default)]
struct Joined {
    ids: Vec<Uuid>,
    units: Vec<Uuid>,
    days: Vec<NaiveDate>,
    tickets: Vec<i32>,
}

impl Joined {
    fn push(&mut self, id: Uuid, unit: Uuid, day: NaiveDate, ticket: u32) {
        self.ids.push(id);
        self.units.push(unit);
        self.days.push(day);
        self.tickets.push(i32::try_from(ticket).unwrap_or(i32::MAX));
    }

    async fn insert(&mut self, conn: &mut PgConnection) -> Result<(), StoreError> {
        if self.ids.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO waiting_lists (reservation_id, unit_id, day, ticket)
             SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::date[], $4::int[])
             ON CONFLICT (reservation_id) DO UPDATE SET ticket = EXCLUDED.ticket",
        )
        .bind(&self.ids)
        .bind(&self.units)
        .bind(&self.days)
        .bind(&self.tickets)
        .execute(&mut *conn)
        .await?;
        *self = Joined::default();
        Ok(())
    }
}

async fn delete(conn: &mut PgConnection, ids: &mut Vec<Uuid>) -> Result<(), StoreError> {
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query("DELETE FROM waiting_lists WHERE reservation_id = ANY($1)")
        .bind(&*ids)
        .execute(&mut *conn)
        .await?;
    ids.clear();
    Ok(())
}
