//! The agent work queue: cancellations waiting for an agent's decision, per
//! commune, oldest first.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use espace_famille_domain::reservation::{Reservation, ReservationEvent};
use sqlx::{PgConnection, PgPool, Row};
use uuid::Uuid;

use crate::calendar::parse_id;
use crate::engine::Projection;
use crate::store::{RecordedEvent, StoreError};

pub struct WorkQueueProjection;

pub const WORK_QUEUE: &str = "agent_work_queue";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingCancellation {
    pub reservation_id: Uuid,
    pub collectivity_id: Uuid,
    pub family_id: Uuid,
    pub child_id: Uuid,
    pub unit_id: Uuid,
    pub day: NaiveDate,
    pub requested_at: DateTime<Utc>,
    pub requested_by: String,
}

#[async_trait]
impl Projection for WorkQueueProjection {
    fn name(&self) -> &'static str {
        WORK_QUEUE
    }

    fn tables(&self) -> &'static [&'static str] {
        &["agent_work_queue"]
    }

    async fn apply(&self, conn: &mut PgConnection, event: &RecordedEvent) -> Result<(), StoreError> {
        // Most reservation events do not concern the queue: skip them
        // without decoding.
        let relevant = matches!(
            event.event_type.as_str(),
            "CancellationRequested" | "AgentApproved" | "AgentRejected"
        );
        if event.aggregate_type != "Reservation" || !relevant {
            return Ok(());
        }
        let reservation_id = parse_id(event)?;
        match event.decode::<Reservation>()? {
            ReservationEvent::CancellationRequested => {
                // The slot is in the stream's first event, which is older
                // than this one and immutable.
                let first: serde_json::Value = sqlx::query_scalar(
                    "SELECT payload FROM events
                     WHERE aggregate_type = 'Reservation' AND aggregate_id = $1 AND sequence = 1",
                )
                .bind(&event.aggregate_id)
                .fetch_one(&mut *conn)
                .await?;
                let ReservationEvent::ReservationRequested { slot } = serde_json::from_value(first)
                    .map_err(|e| StoreError::Corrupt(format!("reservation {reservation_id}: {e}")))?
                else {
                    return Err(StoreError::Corrupt(format!(
                        "reservation {reservation_id} does not start with ReservationRequested"
                    )));
                };
                let requested_by = event.metadata_field("actor_id").unwrap_or_default();
                sqlx::query(
                    "INSERT INTO agent_work_queue
                       (reservation_id, collectivity_id, family_id, child_id, unit_id, day, requested_at, requested_by)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
                     ON CONFLICT (reservation_id) DO UPDATE
                       SET requested_at = EXCLUDED.requested_at, requested_by = EXCLUDED.requested_by",
                )
                .bind(reservation_id)
                .bind(slot.collectivity_id)
                .bind(slot.family_id)
                .bind(slot.child_id)
                .bind(slot.unit_id)
                .bind(slot.date)
                .bind(event.recorded_at)
                .bind(requested_by)
                .execute(&mut *conn)
                .await?;
            }
            ReservationEvent::AgentApproved { .. } | ReservationEvent::AgentRejected { .. } => {
                sqlx::query("DELETE FROM agent_work_queue WHERE reservation_id = $1")
                    .bind(reservation_id)
                    .execute(&mut *conn)
                    .await?;
            }
            _ => {}
        }
        Ok(())
    }
}

/// The pending cancellations of a commune, oldest first.
pub async fn pending(pool: &PgPool, collectivity_id: Uuid) -> Result<Vec<PendingCancellation>, StoreError> {
    let rows = sqlx::query(
        "SELECT reservation_id, collectivity_id, family_id, child_id, unit_id, day, requested_at, requested_by
         FROM agent_work_queue WHERE collectivity_id = $1 ORDER BY requested_at, reservation_id",
    )
    .bind(collectivity_id)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(PendingCancellation {
                reservation_id: row.try_get("reservation_id")?,
                collectivity_id: row.try_get("collectivity_id")?,
                family_id: row.try_get("family_id")?,
                child_id: row.try_get("child_id")?,
                unit_id: row.try_get("unit_id")?,
                day: row.try_get("day")?,
                requested_at: row.try_get("requested_at")?,
                requested_by: row.try_get("requested_by")?,
            })
        })
        .collect()
}
