//! The calendar read model: the state of every reservation by child, unit
//! and day. What a day *can* become (open, deadlines) is computed from the
//! commune's rules at query time; this table says what it *is*.

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, Datelike, Utc};
use espace_famille_domain::reservation::{Reservation, ReservationEvent, Slot};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::engine::Projection;
use crate::store::{Position, RecordedEvent, StoreError};

pub struct CalendarProjection;

pub const CALENDAR: &str = "calendar";

/// The booking's state after `event`; none for the roll call's events,
/// which the attendance read model keeps (a booked day stays booked when
/// the child is there).
fn status_after(event: &ReservationEvent) -> Option<&'static str> {
    Some(match event {
        ReservationEvent::ReservationRequested { .. } => "requested",
        ReservationEvent::WaitListed { .. } | ReservationEvent::AllocationWaitListed { .. } => "waitlisted",
        ReservationEvent::AllocationRequested { .. } => "allocation_pending",
        ReservationEvent::ReservationConfirmed
        | ReservationEvent::Promoted
        | ReservationEvent::PlaceAllocated { .. }
        | ReservationEvent::AgentRejected { .. }
        | ReservationEvent::BookingApproved { .. } => "confirmed",
        ReservationEvent::BookingAwaitingApproval => "awaiting_approval",
        ReservationEvent::PaymentAwaited => "awaiting_payment",
        ReservationEvent::PrepaymentReceived { .. } => "confirmed",
        ReservationEvent::Released => "released",
        ReservationEvent::BookingRejected { .. } => "rejected",
        ReservationEvent::CancellationRequested => "cancellation_requested",
        ReservationEvent::ReservationCancelled
        | ReservationEvent::LeftWaitingList
        | ReservationEvent::AgentApproved { .. }
        | ReservationEvent::ReservationCancelledByCommune { .. } => "cancelled",
        ReservationEvent::AbsenceReported { .. } => "absence_reported",
        ReservationEvent::AbsenceJustified { .. } => "absent_justified",
        ReservationEvent::AbsenceUnjustified { .. } => "absent_unjustified",
        ReservationEvent::AttendanceRecorded { .. } | ReservationEvent::UnexpectedPresenceRecorded { .. } => {
            return None
        }
    })
}

#[async_trait]
impl Projection for CalendarProjection {
    fn name(&self) -> &'static str {
        CALENDAR
    }

    fn tables(&self) -> &'static [&'static str] {
        &["calendar_reservations"]
    }

    /// A day's booking state is a reservation's alone.
    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        Some(&["Reservation"])
    }

    /// Reservations are nearly every event of a rush: reading them all
    /// costs less than asking the store to pick them.
    fn store_filters_types(&self) -> bool {
        false
    }

    /// The calendar reads no metadata.
    fn metadata_of(&self) -> Option<&'static [&'static str]> {
        Some(&[])
    }

    /// A few statements per batch, whatever its size: an insert of the
    /// reservations first requested in it, an upsert of those requested
    /// again after a cancellation, an update of the others.
    async fn apply_batch(&self, conn: &mut PgConnection, events: &[RecordedEvent]) -> Result<(), StoreError> {
        let changes = Self::fold(events)?;
        let (requested, moved): (Vec<_>, Vec<_>) = changes.into_iter().partition(|(_, c)| c.slot.is_some());
        // A stream whose first event is in the batch cannot meet a row:
        // plain inserts skip the conflict check.
        let (new, again): (Vec<_>, Vec<_>) = requested.into_iter().partition(|(_, c)| c.first);
        insert(conn, &new, "").await?;
        insert(
            conn,
            &again,
            " ON CONFLICT (reservation_id) DO UPDATE SET status = EXCLUDED.status, updated_at = EXCLUDED.updated_at",
        )
        .await?;
        if !moved.is_empty() {
            let ids: Vec<Uuid> = moved.iter().map(|(id, _)| *id).collect();
            let statuses: Vec<&str> = moved.iter().map(|(_, c)| c.status).collect();
            let times: Vec<DateTime<Utc>> = moved.iter().map(|(_, c)| c.at).collect();
            sqlx::query(
                "UPDATE calendar_reservations c SET status = u.status, updated_at = u.at
                 FROM UNNEST($1::uuid[], $2::text[], $3::timestamptz[]) AS u(id, status, at)
                 WHERE c.reservation_id = u.id",
            )
            .bind(&ids)
            .bind(&statuses)
            .bind(&times)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }

    async fn apply(&self, conn: &mut PgConnection, event: &RecordedEvent) -> Result<(), StoreError> {
        self.apply_batch(conn, std::slice::from_ref(event)).await
    }

    /// A rebuild inserts each reservation once, in the batch that holds its
    /// stream's first event, into a table without its primary key yet; the
    /// rest (later statuses, requests after a cancellation) is staged
    /// unindexed and applied by [`Projection::settle`].
    fn fills_without_keys(&self) -> bool {
        true
    }

    async fn fill(&self, conn: &mut PgConnection, events: &[RecordedEvent]) -> Result<(), StoreError> {
        let (new, later): (Vec<_>, Vec<_>) = Self::fold(events)?.into_iter().partition(|(_, c)| c.first);
        copy_new(conn, &new).await?;
        if later.is_empty() {
            return Ok(());
        }
        if !staged(conn).await? {
            // In the rebuild's own schema, first on its search path.
            sqlx::query(
                "CREATE UNLOGGED TABLE calendar_later (reservation_id uuid, transaction_id bigint,
                   global_position bigint, status text, updated_at timestamptz)",
            )
            .execute(&mut *conn)
            .await?;
        }
        let ids: Vec<Uuid> = later.iter().map(|(id, _)| *id).collect();
        let transactions: Vec<i64> = later.iter().map(|(_, c)| c.last.transaction_id).collect();
        let positions: Vec<i64> = later.iter().map(|(_, c)| c.last.global_position).collect();
        let statuses: Vec<&str> = later.iter().map(|(_, c)| c.status).collect();
        let times: Vec<DateTime<Utc>> = later.iter().map(|(_, c)| c.at).collect();
        sqlx::query(
            "INSERT INTO calendar_later
             SELECT * FROM UNNEST($1::uuid[], $2::bigint[], $3::bigint[], $4::text[], $5::timestamptz[])",
        )
        .bind(&ids)
        .bind(&transactions)
        .bind(&positions)
        .bind(&statuses)
        .bind(&times)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }

    /// Applies the last staged status of each reservation, in commit order.
    async fn settle(&self, conn: &mut PgConnection) -> Result<(), StoreError> {
        if !staged(conn).await? {
            return Ok(());
        }
        sqlx::query(
            "UPDATE calendar_reservations c SET status = l.status, updated_at = l.updated_at
             FROM (SELECT DISTINCT ON (reservation_id) reservation_id, status, updated_at FROM calendar_later
                   ORDER BY reservation_id, transaction_id DESC, global_position DESC) l
             WHERE c.reservation_id = l.reservation_id",
        )
        .execute(&mut *conn)
        .await?;
        sqlx::query("DROP TABLE calendar_later")
            .execute(&mut *conn)
            .await?;
        Ok(())
    }
}

/// Whether a rebuild's fill has staged later statuses (in its table
/// `calendar_later`).
async fn staged(conn: &mut PgConnection) -> Result<bool, StoreError> {
    Ok(
        sqlx::query_scalar("SELECT to_regclass('calendar_later') IS NOT NULL")
            .fetch_one(&mut *conn)
            .await?,
    )
}

/// The calendar's columns, in the order its writers send them.
const COLUMNS: &str =
    "(reservation_id, family_id, child_id, collectivity_id, service_id, unit_id, day, status, updated_at)";

/// Writes requested reservations, one row each; `conflict` is the
/// statement's `ON CONFLICT` clause, if any.
async fn insert(
    conn: &mut PgConnection,
    requested: &[(Uuid, Change)],
    conflict: &str,
) -> Result<(), StoreError> {
    if requested.is_empty() {
        return Ok(());
    }
    // One row per change that carries a slot, every column from the same
    // changes.
    let rows: Vec<(Uuid, Slot, &Change)> = requested
        .iter()
        .filter_map(|(id, change)| change.slot.map(|slot| (*id, slot, change)))
        .collect();
    let ids: Vec<Uuid> = rows.iter().map(|(id, _, _)| *id).collect();
    let column = |get: fn(&Slot) -> Uuid| rows.iter().map(|(_, slot, _)| get(slot)).collect::<Vec<_>>();
    let days: Vec<_> = rows.iter().map(|(_, slot, _)| slot.date).collect();
    let statuses: Vec<&str> = rows.iter().map(|(_, _, change)| change.status).collect();
    let times: Vec<DateTime<Utc>> = rows.iter().map(|(_, _, change)| change.at).collect();
    sqlx::query(&format!(
        "INSERT INTO calendar_reservations {COLUMNS}
         SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::uuid[], $6::uuid[],
                              $7::date[], $8::text[], $9::timestamptz[]){conflict}"
    ))
    .bind(&ids)
    .bind(column(|slot| slot.family_id))
    .bind(column(|slot| slot.child_id))
    .bind(column(|slot| slot.collectivity_id))
    .bind(column(|slot| slot.service_id))
    .bind(column(|slot| slot.unit_id))
    .bind(&days)
    .bind(&statuses)
    .bind(&times)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Writes requested reservations, one row each, by a binary `COPY`: a
/// rebuild's bulk of rows. PostgreSQL inserts copied rows a page at a time
/// and decodes no array; measured on a million-event rebuild, the
/// calendar's insert took 2.5 s as `INSERT ... SELECT FROM UNNEST`.
async fn copy_new(conn: &mut PgConnection, requested: &[(Uuid, Change)]) -> Result<(), StoreError> {
    let mut rows = BinaryCopy::new(9);
    for (id, change) in requested {
        let Some(slot) = change.slot else { continue };
        rows.row();
        for uuid in [
            *id,
            slot.family_id,
            slot.child_id,
            slot.collectivity_id,
            slot.service_id,
            slot.unit_id,
        ] {
            rows.uuid(uuid);
        }
        rows.date(slot.date);
        rows.text(change.status);
        rows.timestamp(change.at)?;
    }
    if rows.is_empty() {
        return Ok(());
    }
    let mut copy = conn
        .copy_in_raw(&format!(
            "COPY calendar_reservations {COLUMNS} FROM STDIN (FORMAT binary)"
        ))
        .await?;
    copy.send(rows.finish()).await?;
    copy.finish().await?;
    Ok(())
}

/// Rows in PostgreSQL's binary `COPY` format: a signature and two zero
/// words, then per row its field count and each field as its length and
/// its bytes in the type's binary form, then -1.
struct BinaryCopy {
    bytes: Vec<u8>,
    fields: i16,
    rows: usize,
}

impl BinaryCopy {
    fn new(fields: i16) -> Self {
        let mut bytes = Vec::with_capacity(64 * 1024);
        bytes.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
        bytes.extend_from_slice(&0i32.to_be_bytes()); // flags
        bytes.extend_from_slice(&0i32.to_be_bytes()); // header extension
        BinaryCopy {
            bytes,
            fields,
            rows: 0,
        }
    }

    fn row(&mut self) {
        self.bytes.extend_from_slice(&self.fields.to_be_bytes());
        self.rows += 1;
    }

    fn field(&mut self, value: &[u8]) {
        self.bytes.extend_from_slice(&(value.len() as i32).to_be_bytes());
        self.bytes.extend_from_slice(value);
    }

    fn uuid(&mut self, value: Uuid) {
        self.field(value.as_bytes());
    }

    /// Days since 2000-01-01.
    fn date(&mut self, value: chrono::NaiveDate) {
        let days = value.num_days_from_ce() - EPOCH_DAYS_FROM_CE;
        self.field(&days.to_be_bytes());
    }

    fn text(&mut self, value: &str) {
        self.field(value.as_bytes());
    }

    /// Microseconds since 2000-01-01 00:00 UTC.
    fn timestamp(&mut self, value: DateTime<Utc>) -> Result<(), StoreError> {
        let micros = value
            .timestamp_micros()
            .checked_sub(EPOCH_UNIX_MICROS)
            .ok_or_else(|| StoreError::Corrupt(format!("instant out of range: {value}")))?;
        self.field(&micros.to_be_bytes());
        Ok(())
    }

    fn is_empty(&self) -> bool {
        self.rows == 0
    }

    fn finish(mut self) -> Vec<u8> {
        self.bytes.extend_from_slice(&(-1i16).to_be_bytes());
        self.bytes
    }
}

/// PostgreSQL's epoch, 2000-01-01 00:00 UTC: in days from the common era
/// (chrono's count) and in microseconds from the Unix epoch.
const EPOCH_DAYS_FROM_CE: i32 = 730_120;
const EPOCH_UNIX_MICROS: i64 = 946_684_800_000_000;

/// What a batch leaves of one reservation: its slot if the batch requested
/// it, whether the batch holds the stream's first event (then no row can
/// exist yet), its last status and the position of its last event.
struct Change {
    slot: Option<Slot>,
    first: bool,
    status: &'static str,
    at: DateTime<Utc>,
    last: Position,
}

impl CalendarProjection {
    /// Folds a batch into one final state per reservation, in order of first
    /// appearance; the status depends only on the last event.
    fn fold(events: &[RecordedEvent]) -> Result<Vec<(Uuid, Change)>, StoreError> {
        let mut changes: Vec<(Uuid, Change)> = Vec::new();
        let mut index: HashMap<Uuid, usize> = HashMap::new();
        for event in events.iter().filter(|e| e.aggregate_type == "Reservation") {
            let payload = event.decode::<Reservation>()?;
            let Some(status) = status_after(&payload) else {
                continue;
            };
            let id = parse_id(event)?;
            let position = *index.entry(id).or_insert_with(|| {
                changes.push((
                    id,
                    Change {
                        slot: None,
                        first: false,
                        status: "",
                        at: event.recorded_at,
                        last: event.position,
                    },
                ));
                changes.len() - 1
            });
            let change = &mut changes[position].1;
            change.status = status;
            change.at = event.recorded_at;
            change.last = event.position;
            change.first |= event.sequence == 1;
            if let ReservationEvent::ReservationRequested { slot, .. } = payload {
                change.slot = Some(slot);
            }
        }
        Ok(changes)
    }
}

pub fn parse_id(event: &RecordedEvent) -> Result<Uuid, StoreError> {
    event
        .aggregate_id
        .parse()
        .map_err(|_| StoreError::Corrupt(format!("aggregate id {} is not a uuid", event.aggregate_id)))
}

/// The cancelled bookings of `units` (prepaid ones: a refund may be owed)
/// on days up to `to`, by family: reservation and family ids.
pub async fn cancelled_up_to(
    pool: &sqlx::PgPool,
    units: &[Uuid],
    to: chrono::NaiveDate,
) -> Result<Vec<(Uuid, Uuid)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT reservation_id, family_id FROM calendar_reservations
         WHERE unit_id = ANY($1) AND day <= $2 AND status = 'cancelled'
         ORDER BY family_id, day",
    )
    .bind(units)
    .bind(to)
    .fetch_all(pool)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use espace_famille_domain::reservation::Origin;

    #[test]
    fn binary_copy_counts_dates_and_instants_from_postgres_epoch() {
        let field = |encode: &dyn Fn(&mut BinaryCopy)| {
            let mut rows = BinaryCopy::new(1);
            let header = rows.bytes.len();
            encode(&mut rows);
            rows.bytes[header + 4..].to_vec()
        };
        let day = |y, m, d| chrono::NaiveDate::from_ymd_opt(y, m, d).unwrap();
        assert_eq!(field(&|r| r.date(day(2000, 1, 1))), 0i32.to_be_bytes());
        assert_eq!(field(&|r| r.date(day(2026, 12, 7))), 9837i32.to_be_bytes());
        assert_eq!(field(&|r| r.date(day(1999, 12, 31))), (-1i32).to_be_bytes());
        let instant = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let micros = |rows: &mut BinaryCopy, at| rows.timestamp(at).unwrap();
        assert_eq!(
            field(&|r| micros(r, instant("2000-01-01T00:00:00Z"))),
            0i64.to_be_bytes()
        );
        assert_eq!(
            field(&|r| micros(r, instant("2000-01-01T00:00:01.000002Z"))),
            1_000_002i64.to_be_bytes()
        );
    }
    use crate::store::recorded_reservation;
    use chrono::NaiveDate;

    #[test]
    fn a_batch_folds_to_the_last_status_of_each_reservation_with_its_slot() {
        let (first, second, third) = (Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(8));
        let slot = Slot {
            family_id: Uuid::from_u128(3),
            child_id: Uuid::from_u128(4),
            collectivity_id: Uuid::from_u128(5),
            service_id: Uuid::from_u128(6),
            unit_id: Uuid::from_u128(7),
            date: NaiveDate::from_ymd_opt(2026, 12, 7).unwrap(),
        };
        let events = [
            recorded_reservation(
                first,
                1,
                &ReservationEvent::ReservationRequested {
                    slot,
                    origin: Origin::Calendar,
                },
                "parent",
            ),
            recorded_reservation(
                second,
                3,
                &ReservationEvent::AgentApproved { comment: None },
                "parent",
            ),
            recorded_reservation(first, 2, &ReservationEvent::ReservationConfirmed, "parent"),
            recorded_reservation(first, 3, &ReservationEvent::CancellationRequested, "parent"),
            recorded_reservation(
                third,
                4,
                &ReservationEvent::ReservationRequested {
                    slot,
                    origin: Origin::Calendar,
                },
                "parent",
            ),
        ];
        let changes = CalendarProjection::fold(&events).unwrap();
        assert_eq!(changes.len(), 3);
        assert_eq!(changes[0].0, first);
        assert_eq!(changes[0].1.slot, Some(slot));
        assert!(changes[0].1.first, "requested by the stream's first event");
        assert_eq!(changes[0].1.status, "cancellation_requested");
        assert_eq!(changes[1].0, second);
        assert_eq!(changes[1].1.slot, None);
        assert_eq!(changes[1].1.status, "cancelled");
        assert_eq!(changes[2].1.slot, Some(slot));
        assert!(!changes[2].1.first, "requested again after a cancellation");

        // Requested, cancelled and requested again in one batch: the
        // batch still holds the stream's first event.
        let fourth = Uuid::from_u128(9);
        let events = [
            recorded_reservation(
                fourth,
                1,
                &ReservationEvent::ReservationRequested {
                    slot,
                    origin: Origin::Calendar,
                },
                "p",
            ),
            recorded_reservation(fourth, 2, &ReservationEvent::ReservationCancelled, "p"),
            recorded_reservation(
                fourth,
                3,
                &ReservationEvent::ReservationRequested {
                    slot,
                    origin: Origin::Calendar,
                },
                "p",
            ),
        ];
        let changes = CalendarProjection::fold(&events).unwrap();
        assert!(changes[0].1.first, "no row can exist yet");
        assert_eq!(changes[0].1.status, "requested");
        assert_eq!(changes[0].1.last, events[2].position);
    }
}
