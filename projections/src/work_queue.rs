//! The agent work queue: cancellations waiting for an agent's decision, per
//! commune, oldest first.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use espace_famille_domain::reservation::Slot;
use sqlx::{PgConnection, PgPool, Row};
use uuid::Uuid;

use crate::calendar::parse_id;
use crate::engine::Projection;
use crate::store::{RecordedEvent, StoreError};

pub struct WorkQueueProjection;

pub const WORK_QUEUE: &str = "agent_work_queue";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingCancellation {
    /// What waits: a booking to approve, or a cancellation.
    pub kind: PendingKind,
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

    /// What awaits an agent is a reservation's request.
    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        Some(&["Reservation"])
    }

    /// Reservations are nearly every event of a rush: reading them all
    /// costs less than asking the store to pick them.
    fn store_filters_types(&self) -> bool {
        false
    }

    /// Who asked for a cancellation: the only metadata the queue shows.
    fn metadata_of(&self) -> Option<&'static [&'static str]> {
        Some(&["CancellationRequested", "BookingAwaitingApproval"])
    }

    async fn apply(&self, conn: &mut PgConnection, event: &RecordedEvent) -> Result<(), StoreError> {
        self.apply_batch(conn, std::slice::from_ref(event)).await
    }

    /// At most three statements per batch: the slots of the reservations
    /// whose first event is not in the batch, a delete of the decided
    /// ones, an upsert of the waiting ones.
    async fn apply_batch(&self, conn: &mut PgConnection, events: &[RecordedEvent]) -> Result<(), StoreError> {
        let fold = Self::fold(events)?;
        if fold.changes.is_empty() {
            return Ok(());
        }
        let mut slots = fold.slots;
        let missing: Vec<String> = fold
            .changes
            .iter()
            .filter(|(id, change)| matches!(change, QueueChange::Waiting { .. }) && !slots.contains_key(id))
            .map(|(id, _)| id.to_string())
            .collect();
        if !missing.is_empty() {
            slots.extend(crate::slots::from_first_events(&mut *conn, &missing).await?);
        }

        let decided: Vec<Uuid> = fold
            .changes
            .iter()
            .filter(|(_, change)| matches!(change, QueueChange::Decided))
            .map(|(id, _)| *id)
            .collect();
        if !decided.is_empty() {
            sqlx::query("DELETE FROM agent_work_queue WHERE reservation_id = ANY($1)")
                .bind(&decided)
                .execute(&mut *conn)
                .await?;
        }

        let mut waiting = Waiting::default();
        for (id, change) in &fold.changes {
            let QueueChange::Waiting { kind, at, by } = change else {
                continue;
            };
            let slot = slots
                .get(id)
                .ok_or_else(|| StoreError::Corrupt(format!("reservation {id} has no first event")))?;
            waiting.reservations.push(*id);
            waiting.communes.push(slot.collectivity_id);
            waiting.families.push(slot.family_id);
            waiting.children.push(slot.child_id);
            waiting.units.push(slot.unit_id);
            waiting.days.push(slot.date);
            waiting.at.push(*at);
            waiting.by.push(by.clone());
            waiting.kinds.push(kind.as_str());
        }
        if !waiting.reservations.is_empty() {
            sqlx::query(
                "INSERT INTO agent_work_queue
                   (reservation_id, collectivity_id, family_id, child_id, unit_id, day, requested_at, requested_by, kind)
                 SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::uuid[], $6::date[],
                                      $7::timestamptz[], $8::text[], $9::text[])
                 ON CONFLICT (reservation_id) DO UPDATE
                   SET requested_at = EXCLUDED.requested_at, requested_by = EXCLUDED.requested_by,
                       kind = EXCLUDED.kind",
            )
            .bind(&waiting.reservations)
            .bind(&waiting.communes)
            .bind(&waiting.families)
            .bind(&waiting.children)
            .bind(&waiting.units)
            .bind(&waiting.days)
            .bind(&waiting.at)
            .bind(&waiting.by)
            .bind(&waiting.kinds)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}

/// What a batch leaves of one reservation in the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
enum QueueChange {
    /// A booking or a cancellation waits for an agent: asked at, by.
    Waiting {
        kind: PendingKind,
        at: DateTime<Utc>,
        by: String,
    },
    /// An agent decided: nothing waits any more.
    Decided,
}

/// A batch folded: the last change of each reservation it concerns, in
/// order of first appearance, and the slots it requested.
#[derive(Default)]
struct Fold {
    changes: Vec<(Uuid, QueueChange)>,
    slots: HashMap<Uuid, Slot>,
}

/// The rows of an upsert, column by column.
#[derive(Default)]
struct Waiting {
    reservations: Vec<Uuid>,
    communes: Vec<Uuid>,
    families: Vec<Uuid>,
    children: Vec<Uuid>,
    units: Vec<Uuid>,
    days: Vec<NaiveDate>,
    at: Vec<DateTime<Utc>>,
    by: Vec<String>,
    kinds: Vec<&'static str>,
}

/// What waits for an agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PendingKind {
    Booking,
    Cancellation,
}

impl PendingKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PendingKind::Booking => "booking",
            PendingKind::Cancellation => "cancellation",
        }
    }
}

/// Which part of a commune's queue to read, and how much of it.
#[derive(Debug, Clone, Default)]
pub struct QueueFilter {
    pub unit_id: Option<Uuid>,
    pub child_id: Option<Uuid>,
    pub kind: Option<PendingKind>,
    /// Days from, to (included).
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    /// The page: after this item (its asking instant and reservation), at
    /// most `limit`.
    pub after: Option<(DateTime<Utc>, Uuid)>,
    pub limit: i64,
}

impl WorkQueueProjection {
    fn fold(events: &[RecordedEvent]) -> Result<Fold, StoreError> {
        let mut fold = Fold::default();
        let mut index: HashMap<Uuid, usize> = HashMap::new();
        for event in events.iter().filter(|e| e.aggregate_type == "Reservation") {
            // Most reservation events do not concern the queue: they are
            // skipped without decoding.
            let change = match event.event_type.as_str() {
                kind @ ("CancellationRequested" | "BookingAwaitingApproval") => QueueChange::Waiting {
                    kind: if kind == "BookingAwaitingApproval" {
                        PendingKind::Booking
                    } else {
                        PendingKind::Cancellation
                    },
                    at: event.recorded_at,
                    by: event.actor_id()?,
                },
                "AgentApproved"
                | "AgentRejected"
                | "BookingApproved"
                | "BookingRejected"
                | "ReservationCancelledByCommune"
                | "ReservationCancelled" => QueueChange::Decided,
                _ => continue,
            };
            let id = parse_id(event)?;
            match index.get(&id) {
                Some(&position) => fold.changes[position].1 = change,
                None => {
                    index.insert(id, fold.changes.len());
                    fold.changes.push((id, change));
                }
            }
        }
        fold.slots = crate::slots::in_batch(events, |id| index.contains_key(id))?;
        Ok(fold)
    }
}

/// What waits in a commune's queue, oldest first, as the filter says.
pub async fn pending(
    pool: &PgPool,
    collectivity_id: Uuid,
    filter: &QueueFilter,
) -> Result<Vec<PendingCancellation>, StoreError> {
    let rows = sqlx::query(
        "SELECT reservation_id, collectivity_id, family_id, child_id, unit_id, day, requested_at, requested_by, kind
         FROM agent_work_queue
         WHERE collectivity_id = $1
           AND ($2::uuid IS NULL OR unit_id = $2) AND ($3::uuid IS NULL OR child_id = $3)
           AND ($4::text IS NULL OR kind = $4)
           AND ($5::date IS NULL OR day >= $5) AND ($6::date IS NULL OR day <= $6)
           AND ($7::timestamptz IS NULL OR (requested_at, reservation_id) > ($7, $8))
         ORDER BY requested_at, reservation_id LIMIT $9",
    )
    .bind(collectivity_id)
    .bind(filter.unit_id)
    .bind(filter.child_id)
    .bind(filter.kind.map(PendingKind::as_str))
    .bind(filter.from)
    .bind(filter.to)
    .bind(filter.after.map(|(at, _)| at))
    .bind(filter.after.map(|(_, id)| id))
    .bind(filter.limit)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            let kind: String = row.try_get("kind")?;
            Ok(PendingCancellation {
                kind: if kind == "booking" {
                    PendingKind::Booking
                } else {
                    PendingKind::Cancellation
                },
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::recorded_reservation as recorded;
    use espace_famille_domain::reservation::{Origin, ReservationEvent};

    #[test]
    fn a_batch_folds_to_the_last_decision_of_each_reservation() {
        let (decided, asked_again, asked) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3));
        let slot = Slot {
            family_id: Uuid::from_u128(4),
            child_id: Uuid::from_u128(5),
            collectivity_id: Uuid::from_u128(6),
            service_id: Uuid::from_u128(7),
            unit_id: Uuid::from_u128(8),
            date: NaiveDate::from_ymd_opt(2026, 12, 7).unwrap(),
        };
        let events = [
            recorded(decided, 3, &ReservationEvent::CancellationRequested, "parent"),
            recorded(
                asked_again,
                4,
                &ReservationEvent::AgentRejected {
                    reason: "trop tard".into(),
                },
                "agent",
            ),
            recorded(
                asked,
                1,
                &ReservationEvent::ReservationRequested {
                    slot,
                    origin: Origin::Calendar,
                },
                "parent",
            ),
            recorded(asked, 2, &ReservationEvent::ReservationConfirmed, "parent"),
            recorded(
                decided,
                4,
                &ReservationEvent::AgentApproved { comment: None },
                "agent",
            ),
            recorded(asked_again, 5, &ReservationEvent::CancellationRequested, "mother"),
            recorded(asked, 3, &ReservationEvent::CancellationRequested, "father"),
        ];
        let fold = WorkQueueProjection::fold(&events).unwrap();
        let changes: Vec<_> = fold
            .changes
            .iter()
            .map(|(id, change)| match change {
                QueueChange::Waiting { by, .. } => (*id, Some(by.as_str())),
                QueueChange::Decided => (*id, None),
            })
            .collect();
        assert_eq!(
            changes,
            [
                (decided, None),
                (asked_again, Some("mother")),
                (asked, Some("father"))
            ]
        );
        // Only the stream that starts in this batch has its slot at hand.
        assert_eq!(fold.slots.len(), 1);
        assert_eq!(fold.slots[&asked], slot);
    }
}
