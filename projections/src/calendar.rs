//! The calendar read model: the state of every reservation by child, unit
//! and day. What a day *can* become (open, deadlines) is computed from the
//! commune's rules at query time; this table says what it *is*.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use espace_famille_domain::reservation::{Reservation, ReservationEvent};
use sqlx::{PgConnection, PgPool, Row};
use uuid::Uuid;

use crate::engine::Projection;
use crate::store::{RecordedEvent, StoreError};

pub struct CalendarProjection;

pub const CALENDAR: &str = "calendar";

/// The state of one booked (or once booked) slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarEntry {
    pub reservation_id: Uuid,
    pub day: NaiveDate,
    pub status: String,
    pub updated_at: DateTime<Utc>,
}

fn status_after(event: &ReservationEvent) -> &'static str {
    match event {
        ReservationEvent::ReservationRequested { .. } => "requested",
        ReservationEvent::ReservationConfirmed | ReservationEvent::AgentRejected { .. } => "confirmed",
        ReservationEvent::CancellationRequested => "cancellation_requested",
        ReservationEvent::ReservationCancelled | ReservationEvent::AgentApproved { .. } => "cancelled",
    }
}

#[async_trait]
impl Projection for CalendarProjection {
    fn name(&self) -> &'static str {
        CALENDAR
    }

    fn tables(&self) -> &'static [&'static str] {
        &["calendar_reservations"]
    }

    async fn apply(&self, conn: &mut PgConnection, event: &RecordedEvent) -> Result<(), StoreError> {
        if event.aggregate_type != "Reservation" {
            return Ok(());
        }
        let payload = event.decode::<Reservation>()?;
        let reservation_id = parse_id(event)?;
        let status = status_after(&payload);
        if let ReservationEvent::ReservationRequested { slot } = payload {
            sqlx::query(
                "INSERT INTO calendar_reservations
                   (reservation_id, family_id, child_id, collectivity_id, service_id, unit_id, day, status, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (reservation_id) DO UPDATE SET status = EXCLUDED.status, updated_at = EXCLUDED.updated_at",
            )
            .bind(reservation_id)
            .bind(slot.family_id)
            .bind(slot.child_id)
            .bind(slot.collectivity_id)
            .bind(slot.service_id)
            .bind(slot.unit_id)
            .bind(slot.date)
            .bind(status)
            .bind(event.recorded_at)
            .execute(&mut *conn)
            .await?;
        } else {
            sqlx::query(
                "UPDATE calendar_reservations SET status = $2, updated_at = $3 WHERE reservation_id = $1",
            )
            .bind(reservation_id)
            .bind(status)
            .bind(event.recorded_at)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}

pub(crate) fn parse_id(event: &RecordedEvent) -> Result<Uuid, StoreError> {
    event
        .aggregate_id
        .parse()
        .map_err(|_| StoreError::Corrupt(format!("aggregate id {} is not a uuid", event.aggregate_id)))
}

/// The entries of one child in one unit between two days, inclusive.
pub async fn entries(
    pool: &PgPool,
    child_id: Uuid,
    unit_id: Uuid,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<CalendarEntry>, StoreError> {
    let rows = sqlx::query(
        "SELECT reservation_id, day, status, updated_at FROM calendar_reservations
         WHERE child_id = $1 AND unit_id = $2 AND day BETWEEN $3 AND $4 ORDER BY day",
    )
    .bind(child_id)
    .bind(unit_id)
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(CalendarEntry {
                reservation_id: row.try_get("reservation_id")?,
                day: row.try_get("day")?,
                status: row.try_get("status")?,
                updated_at: row.try_get("updated_at")?,
            })
        })
        .collect()
}
