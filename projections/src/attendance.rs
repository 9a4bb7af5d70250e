//! The attendance read model: what the roll call recorded of each child,
//! unit and day, and the counts built on it with the calendar's bookings —
//! per child, unit and month (what billing counts) and per unit and day
//! (the kitchen's headcount).

use std::collections::HashMap;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use espace_famille_domain::reservation::{Attendance, Reservation, ReservationEvent};
use sqlx::{PgConnection, PgPool, Row};
use uuid::Uuid;

use crate::calendar::parse_id;
use crate::engine::Projection;
use crate::store::{RecordedEvent, StoreError};

pub struct AttendanceProjection;

pub const ATTENDANCE: &str = "attendance";

/// The roll call's events; every other event of a reservation is skipped
/// without decoding.
const ROLL_CALL_EVENTS: &[&str] = &["AttendanceRecorded", "UnexpectedPresenceRecorded"];

#[async_trait]
impl Projection for AttendanceProjection {
    fn name(&self) -> &'static str {
        ATTENDANCE
    }

    fn tables(&self) -> &'static [&'static str] {
        &["attendance"]
    }

    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        Some(&["Reservation"])
    }

    /// Read with the calendar, which reads every reservation event.
    fn store_filters_types(&self) -> bool {
        false
    }

    /// Who took the roll call.
    fn metadata_of(&self) -> Option<&'static [&'static str]> {
        Some(ROLL_CALL_EVENTS)
    }

    async fn apply(&self, conn: &mut PgConnection, event: &RecordedEvent) -> Result<(), StoreError> {
        self.apply_batch(conn, std::slice::from_ref(event)).await
    }

    /// At most two statements per batch: the slots of the streams whose
    /// first event is not in it, and one upsert.
    async fn apply_batch(&self, conn: &mut PgConnection, events: &[RecordedEvent]) -> Result<(), StoreError> {
        let mut index: HashMap<Uuid, usize> = HashMap::new();
        let mut changes: Vec<(Uuid, Recorded)> = Vec::new();
        for event in events.iter().filter(|e| {
            e.aggregate_type == "Reservation" && ROLL_CALL_EVENTS.contains(&e.event_type.as_str())
        }) {
            let presence = match event.decode::<Reservation>()? {
                ReservationEvent::AttendanceRecorded { present: true } => Attendance::Present,
                ReservationEvent::AttendanceRecorded { present: false } => Attendance::Absent,
                ReservationEvent::UnexpectedPresenceRecorded { .. } => Attendance::Unexpected,
                _ => continue,
            };
            let by = event.actor_id()?;
            let change = Recorded {
                presence,
                at: event.recorded_at,
                by,
            };
            let id = parse_id(event)?;
            match index.get(&id) {
                Some(&position) => changes[position].1 = change,
                None => {
                    index.insert(id, changes.len());
                    changes.push((id, change));
                }
            }
        }
        if changes.is_empty() {
            return Ok(());
        }
        let mut slots = crate::slots::in_batch(events, |id| index.contains_key(id))?;
        let missing: Vec<String> = changes
            .iter()
            .filter(|(id, _)| !slots.contains_key(id))
            .map(|(id, _)| id.to_string())
            .collect();
        if !missing.is_empty() {
            slots.extend(crate::slots::from_first_events(&mut *conn, &missing).await?);
        }
        let mut rows = Rows::default();
        for (id, change) in &changes {
            let slot = slots
                .get(id)
                .ok_or_else(|| StoreError::Corrupt(format!("reservation {id} has no first event")))?;
            rows.reservations.push(*id);
            rows.communes.push(slot.collectivity_id);
            rows.families.push(slot.family_id);
            rows.children.push(slot.child_id);
            rows.units.push(slot.unit_id);
            rows.days.push(slot.date);
            rows.presences.push(presence_name(change.presence));
            rows.at.push(change.at);
            rows.by.push(change.by.clone());
        }
        sqlx::query(
            "INSERT INTO attendance
               (reservation_id, collectivity_id, family_id, child_id, unit_id, day, presence, recorded_at, recorded_by)
             SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::uuid[], $6::date[],
                                  $7::text[], $8::timestamptz[], $9::text[])
             ON CONFLICT (reservation_id) DO UPDATE
               SET presence = EXCLUDED.presence, recorded_at = EXCLUDED.recorded_at,
                   recorded_by = EXCLUDED.recorded_by",
        )
        .bind(&rows.reservations)
        .bind(&rows.communes)
        .bind(&rows.families)
        .bind(&rows.children)
        .bind(&rows.units)
        .bind(&rows.days)
        .bind(&rows.presences)
        .bind(&rows.at)
        .bind(&rows.by)
        .execute(&mut *conn)
        .await?;
        Ok(())
    }
}

/// What a batch leaves of one reservation's roll call.
struct Recorded {
    presence: Attendance,
    at: DateTime<Utc>,
    by: String,
}

/// The rows of the upsert, column by column.
#[derive(Default)]
struct Rows {
    reservations: Vec<Uuid>,
    communes: Vec<Uuid>,
    families: Vec<Uuid>,
    children: Vec<Uuid>,
    units: Vec<Uuid>,
    days: Vec<NaiveDate>,
    presences: Vec<&'static str>,
    at: Vec<DateTime<Utc>>,
    by: Vec<String>,
}

fn presence_name(presence: Attendance) -> &'static str {
    match presence {
        Attendance::Present => "present",
        Attendance::Absent => "absent",
        Attendance::Unexpected => "unexpected",
    }
}

/// A presence as the table spells it.
pub fn presence_of(name: &str) -> Option<Attendance> {
    match name {
        "present" => Some(Attendance::Present),
        "absent" => Some(Attendance::Absent),
        "unexpected" => Some(Attendance::Unexpected),
        _ => None,
    }
}

/// The calendar's statuses of a booking that stands for the roll call.
const BOOKED: &str =
    "('confirmed', 'cancellation_requested', 'absence_reported', 'absent_justified', 'absent_unjustified')";

/// The days the three readings below count: in the units `$1` (an array),
/// from `$2` to `$3` (included), each booking that stands for the roll call
/// with what the roll call saw of it, and each presence without one — the
/// calendar's rows and attendance's, joined.
static DAYS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "days AS (
           SELECT coalesce(c.reservation_id, a.reservation_id) AS reservation_id,
                  coalesce(c.family_id, a.family_id) AS family_id, coalesce(c.child_id, a.child_id) AS child_id,
                  coalesce(c.unit_id, a.unit_id) AS unit_id, coalesce(c.day, a.day) AS day, c.status, a.presence
           FROM (SELECT * FROM calendar_reservations
                 WHERE unit_id = ANY($1) AND day BETWEEN $2 AND $3 AND status IN {BOOKED}) c
           FULL JOIN (SELECT * FROM attendance WHERE unit_id = ANY($1) AND day BETWEEN $2 AND $3) a
             ON a.reservation_id = c.reservation_id
           WHERE c.status IS NOT NULL OR a.presence = 'unexpected'
         )"
    )
});

/// One line of a roll call's sheet: a child booked in the unit that day
/// (or recorded there), and what the roll call recorded so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SheetLine {
    pub reservation_id: Uuid,
    pub family_id: Uuid,
    pub child_id: Uuid,
    /// The calendar's status of the booking; `None` for a child there
    /// without one.
    pub status: Option<String>,
    pub presence: Option<Attendance>,
}

/// The children booked in `unit` on `day`, and those recorded there
/// without a booking, with what the roll call recorded.
pub async fn sheet(pool: &PgPool, unit_id: Uuid, day: NaiveDate) -> Result<Vec<SheetLine>, StoreError> {
    Ok(billable_days(pool, &[unit_id], day, day)
        .await?
        .into_iter()
        .map(|d| SheetLine {
            reservation_id: d.reservation_id,
            family_id: d.family_id,
            child_id: d.child_id,
            status: d.status,
            presence: d.presence,
        })
        .collect())
}

/// What billing counts for one child in one unit over a period.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub child_id: Uuid,
    pub family_id: Uuid,
    pub unit_id: Uuid,
    /// Days booked (confirmed, cancellation pending, or with an absence).
    pub booked: i64,
    /// Booked days the child was there.
    pub present: i64,
    /// Booked days absent with a reason an agent accepted.
    pub absent_justified: i64,
    /// Booked days absent without an accepted reason: judged unjustified,
    /// or absent at the roll call with no absence reported.
    pub absent_unjustified: i64,
    /// Booked days with an absence reported that no agent judged yet.
    pub absence_pending: i64,
    /// Days there without a booking.
    pub unexpected: i64,
    /// Booked days with no roll call and no absence: not taken yet.
    pub not_taken: i64,
}

/// The counts of every child booked or recorded in these units between
/// `from` and `to` (included), by child and unit.
pub async fn counts(
    pool: &PgPool,
    unit_ids: &[Uuid],
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<Counts>, StoreError> {
    let rows = sqlx::query(&format!(
        "WITH {} SELECT child_id, family_id, unit_id,
           count(status) AS booked,
           count(*) FILTER (WHERE status IS NOT NULL AND presence = 'present') AS present,
           count(*) FILTER (WHERE presence IS DISTINCT FROM 'present' AND status = 'absent_justified')
             AS absent_justified,
           count(*) FILTER (WHERE presence IS DISTINCT FROM 'present' AND (status = 'absent_unjustified'
             OR (presence = 'absent' AND status IN ('confirmed', 'cancellation_requested')))) AS absent_unjustified,
           count(*) FILTER (WHERE presence IS DISTINCT FROM 'present' AND status = 'absence_reported')
             AS absence_pending,
           count(*) FILTER (WHERE presence = 'unexpected') AS unexpected,
           count(*) FILTER (WHERE presence IS NULL AND status IN ('confirmed', 'cancellation_requested'))
             AS not_taken
         FROM days
         GROUP BY child_id, family_id, unit_id
         ORDER BY unit_id, child_id",
        *DAYS
    ))
    .bind(unit_ids)
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(Counts {
                child_id: row.try_get("child_id")?,
                family_id: row.try_get("family_id")?,
                unit_id: row.try_get("unit_id")?,
                booked: row.try_get("booked")?,
                present: row.try_get("present")?,
                absent_justified: row.try_get("absent_justified")?,
                absent_unjustified: row.try_get("absent_unjustified")?,
                absence_pending: row.try_get("absence_pending")?,
                unexpected: row.try_get("unexpected")?,
                not_taken: row.try_get("not_taken")?,
            })
        })
        .collect()
}

/// One unit's day, for the kitchen's order and the staff.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headcount {
    pub day: NaiveDate,
    /// Bookings that stand.
    pub booked: i64,
    /// Of them, without an absence reported: the meals to prepare.
    pub expected: i64,
    /// Children there, booked or not, once the roll call is taken.
    pub present: i64,
    /// Of them, without a booking.
    pub unexpected: i64,
}

/// A unit's headcount for each day from `from` to `to` (included) that has
/// a booking or a presence.
pub async fn headcount(
    pool: &PgPool,
    unit_id: Uuid,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<Headcount>, StoreError> {
    let rows = sqlx::query(&format!(
        "WITH {} SELECT day,
           count(status) AS booked,
           count(*) FILTER (WHERE status IN ('confirmed', 'cancellation_requested')) AS expected,
           count(*) FILTER (WHERE presence IN ('present', 'unexpected')) AS present,
           count(*) FILTER (WHERE presence = 'unexpected') AS unexpected
         FROM days
         GROUP BY day ORDER BY day",
        *DAYS
    ))
    .bind([unit_id])
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(Headcount {
                day: row.try_get("day")?,
                booked: row.try_get("booked")?,
                expected: row.try_get("expected")?,
                present: row.try_get("present")?,
                unexpected: row.try_get("unexpected")?,
            })
        })
        .collect()
}

/// One day of a unit: a booking that stood for the roll call, or a
/// presence without one, with what the roll call recorded (what billing
/// reads, and the sheet).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BillableDay {
    pub reservation_id: Uuid,
    pub family_id: Uuid,
    pub child_id: Uuid,
    pub unit_id: Uuid,
    pub day: NaiveDate,
    /// The calendar's status; `None` for a child there without a booking.
    pub status: Option<String>,
    pub presence: Option<Attendance>,
}

/// Every day booked or attended in these units between `from` and `to`
/// (included), by family, child, unit and day.
pub async fn billable_days(
    pool: &PgPool,
    units: &[Uuid],
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<BillableDay>, StoreError> {
    let rows = sqlx::query(&format!(
        "WITH {} SELECT reservation_id, family_id, child_id, unit_id, day, status, presence FROM days
         ORDER BY family_id, child_id, unit_id, day",
        *DAYS
    ))
    .bind(units)
    .bind(from)
    .bind(to)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            let presence: Option<String> = row.try_get("presence")?;
            Ok(BillableDay {
                reservation_id: row.try_get("reservation_id")?,
                family_id: row.try_get("family_id")?,
                child_id: row.try_get("child_id")?,
                unit_id: row.try_get("unit_id")?,
                day: row.try_get("day")?,
                status: row.try_get("status")?,
                presence: presence.as_deref().and_then(presence_of),
            })
        })
        .collect()
}
