//! What a family reads of its bookings: a child's calendar in a unit, day
//! by day with what can be done and why not, computed from the read models
//! and the commune's rules; and a reservation with its history.

use std::collections::HashMap;
use std::sync::LazyLock;

use chrono::DateTime;
use chrono::{NaiveDate, Utc};
use cqrs_es::Aggregate;
use espace_famille_domain::calendar::SchoolYear;
use espace_famille_domain::reservation::{Attendance, BookingContext, Reservation, ReservationStatus, Slot};
use espace_famille_projections::attendance;
use espace_famille_projections::store::{self, RecordedEvent};
use sqlx::Row;
use uuid::Uuid;

use crate::auth::identity::Caller;
use crate::commands::Commands;
use crate::error::{ApiError, Refusal};
use crate::i18n::say;

/// Where a day stands for a child in a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayStatus {
    /// Not booked.
    Free,
    /// Requested, not yet confirmed.
    Requested,
    Confirmed,
    /// Booked where an agent approves each booking: not yet.
    AwaitingApproval,
    /// Booked in a prepaid unit: held until its invoice is paid.
    AwaitingPayment,
    /// Not paid in time: free again.
    Released,
    /// An agent refused the booking.
    Rejected,
    /// The parent asked to cancel; an agent decides.
    CancellationRequested,
    Cancelled,
    /// Every place was taken: on the waiting list.
    WaitListed,
    /// Asked while an allocated window is open: waiting for its run.
    AllocationPending,
    /// The parent reported the child absent.
    AbsenceReported,
    /// An agent accepted the absence's reason.
    AbsentJustified,
    /// An agent did not: the day is billed.
    AbsentUnjustified,
}

/// One day of a child's calendar in one unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Day {
    pub date: NaiveDate,
    /// The id a booking of this day has (or would have).
    pub reservation_id: Uuid,
    pub status: DayStatus,
    /// Where the booking waits on the day's waiting list, from 1.
    pub waiting_position: Option<u32>,
    /// When the places of the day are allocated, while its request waits
    /// for the run.
    pub allocation_at: Option<DateTime<Utc>>,
    /// What the roll call recorded, once taken.
    pub attendance: Option<Attendance>,
    /// Why the unit does not run that day; `None` when it does.
    pub closed_reason: Option<String>,
    /// Booking closes at this instant, on open days.
    pub booking_deadline: Option<DateTime<Utc>>,
    /// Cancelling closes at this instant, on open days.
    pub cancellation_deadline: Option<DateTime<Utc>>,
    /// Why the day cannot be booked now; `None` when it can.
    pub book_refusal: Option<Refusal>,
    /// Why the day cannot be cancelled now; `None` when it can.
    pub cancel_refusal: Option<Refusal>,
}

/// A reservation with every event of its stream.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub id: Uuid,
    pub reservation: Reservation,
    pub history: Vec<RecordedEvent>,
}

/// A child's days in a unit, with whose child it is, which commune the
/// unit is, and their streams' versions; binds the child, the unit and the
/// first and last day.
static CALENDAR: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT c.family_id, u.collectivity_id,
           {} AS family_version, {} AS collectivity_version, r.days, r.statuses, a.attended, a.presences,
           w.waiting, w.positions
         FROM (VALUES (1)) AS one(n)
         LEFT JOIN directory_children c ON c.child_id = $1
         LEFT JOIN directory_units u ON u.unit_id = $2
         CROSS JOIN LATERAL (
           SELECT coalesce(array_agg(day ORDER BY day), '{{}}') AS days,
                  coalesce(array_agg(status ORDER BY day), '{{}}') AS statuses
           FROM calendar_reservations
           WHERE child_id = $1 AND unit_id = $2 AND day BETWEEN $3 AND $4
         ) AS r
         CROSS JOIN LATERAL (
           SELECT coalesce(array_agg(day), '{{}}') AS attended, coalesce(array_agg(presence), '{{}}') AS presences
           FROM attendance
           WHERE child_id = $1 AND unit_id = $2 AND day BETWEEN $3 AND $4
         ) AS a
         CROSS JOIN LATERAL (
           SELECT coalesce(array_agg(c.day), '{{}}') AS waiting,
                  coalesce(array_agg((
                    SELECT count(*)::int FROM waiting_lists o
                    JOIN calendar_reservations oc ON oc.reservation_id = o.reservation_id
                    WHERE o.unit_id = w.unit_id AND o.day = w.day AND o.ticket <= w.ticket
                      AND oc.status = 'waitlisted')), '{{}}') AS positions
           FROM calendar_reservations c
           JOIN waiting_lists w ON w.reservation_id = c.reservation_id
           WHERE c.child_id = $1 AND c.unit_id = $2 AND c.day BETWEEN $3 AND $4 AND c.status = 'waitlisted'
         ) AS w",
        store::sql::version("'Family'", "c.family_id::text"),
        store::sql::version("'Collectivity'", "u.collectivity_id::text"),
    )
});

/// The longest range one calendar query may cover.
pub const MAX_CALENDAR_DAYS: i64 = 93;

/// One child's days in one unit: each day's state, whether it can be booked
/// or cancelled now and, when not, why; and the absolute deadlines.
pub async fn calendar(
    commands: &Commands,
    caller: &Caller,
    child_id: Uuid,
    unit_id: Uuid,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<Day>, ApiError> {
    if to < from {
        return Err(ApiError::Validation(say("api.range_reversed", &[])));
    }
    let days = (to - from).num_days() + 1;
    if days > MAX_CALENDAR_DAYS {
        return Err(ApiError::Validation(say(
            "api.calendar_too_long",
            &[("max", &MAX_CALENDAR_DAYS), ("days", &days)],
        )));
    }
    caller.identity()?;
    let pool = &commands.pool;
    // Whose child, which commune, the versions of their streams and the
    // child's days in the unit, in one round trip; the commune and the
    // family then come from the cache.
    type Stream = Option<(Uuid, i64)>;
    type Days<T> = HashMap<NaiveDate, T>;
    let (family, commune, booked, attended, waiting): (
        Stream,
        Stream,
        Days<String>,
        Days<Attendance>,
        Days<i32>,
    ) = {
        let row = sqlx::query(&CALENDAR)
            .bind(child_id)
            .bind(unit_id)
            .bind(from)
            .bind(to)
            .fetch_one(pool)
            .await?;
        let family: Option<Uuid> = row.try_get("family_id")?;
        let commune: Option<Uuid> = row.try_get("collectivity_id")?;
        let family_version: Option<i64> = row.try_get("family_version")?;
        let commune_version: Option<i64> = row.try_get("collectivity_version")?;
        let days: Vec<NaiveDate> = row.try_get("days")?;
        let statuses: Vec<String> = row.try_get("statuses")?;
        let attended: Vec<NaiveDate> = row.try_get("attended")?;
        let presences: Vec<String> = row.try_get("presences")?;
        let waiting: Vec<NaiveDate> = row.try_get("waiting")?;
        let positions: Vec<i32> = row.try_get("positions")?;
        (
            family.map(|id| (id, family_version.unwrap_or(0))),
            commune.map(|id| (id, commune_version.unwrap_or(0))),
            days.into_iter().zip(statuses).collect(),
            attended
                .into_iter()
                .zip(presences)
                .filter_map(|(day, presence)| Some((day, attendance::presence_of(&presence)?)))
                .collect(),
            waiting.into_iter().zip(positions).collect(),
        )
    };
    // A child the caller may not read answers as a child that does not
    // exist: the answer confirms no id.
    let hidden = || ApiError::NotFound(say("api.no_child", &[("id", &child_id)]));
    let (family_id, family_version) = family.ok_or_else(hidden)?;
    let (collectivity_id, collectivity_version) =
        commune.ok_or_else(|| ApiError::NotFound(say("api.no_unit", &[("id", &unit_id)])))?;
    let family = commands.family_at(family_id, family_version as usize).await?;
    // The unit's commune reads the calendar only of a family that joined it.
    let communes: &[Uuid] = if family.is_member_of(collectivity_id) {
        &[collectivity_id]
    } else {
        &[]
    };
    caller
        .require_reader_of(family_id, communes)
        .map_err(|_| hidden())?;

    let collectivity = commands
        .collectivity_at(collectivity_id, collectivity_version as usize)
        .await?;
    let unit = collectivity
        .units
        .get(&unit_id)
        .ok_or_else(|| ApiError::NotFound(say("api.no_unit", &[("id", &unit_id)])))?
        .clone();
    let overdue_cents = crate::services::billing::overdue_for(commands, family_id, &collectivity).await?;
    let context = BookingContext {
        now: Utc::now(),
        collectivity: collectivity.clone(),
        family,
        overdue_cents,
    };

    let mut result = Vec::with_capacity(days as usize);
    for date in from.iter_days().take(days as usize) {
        let status = booked
            .get(&date)
            .map(|status| DayStatus::from_read_model(status))
            .unwrap_or(DayStatus::Free);
        let reservation = Reservation {
            slot: Some(Slot {
                family_id,
                child_id,
                collectivity_id,
                service_id: unit.service_id,
                unit_id,
                date,
            }),
            status: status.as_domain(),
            attendance: attended.get(&date).copied(),
            paid_by: None,
        };
        let open = unit.opening.check_unit(unit_id, date, &collectivity.calendar);
        let can_book = reservation.check_request(child_id, unit_id, date, &context);
        let can_cancel = reservation.check_cancel(&context);
        result.push(Day {
            date,
            reservation_id: espace_famille_domain::reservation::reservation_id(child_id, unit_id, date),
            status,
            waiting_position: waiting.get(&date).map(|&p| p.max(1) as u32),
            allocation_at: (status == DayStatus::AllocationPending)
                .then(|| collectivity.window_of(unit_id, date))
                .flatten()
                .and_then(|w| w.allocation.as_ref())
                .map(|a| a.closes_at),
            attendance: reservation.attendance,
            closed_reason: open
                .as_ref()
                .err()
                .map(|r| crate::i18n::closed_reason(r, crate::i18n::current())),
            booking_deadline: open
                .is_ok()
                .then(|| unit.booking_deadline.deadline_for(date, &collectivity.calendar)),
            cancellation_deadline: open.is_ok().then(|| {
                unit.cancellation_deadline
                    .deadline_for(date, &collectivity.calendar)
            }),
            book_refusal: can_book.err().map(|e| Refusal::from(&e)),
            cancel_refusal: can_cancel.err().map(|e| Refusal::from(&e)),
        });
    }
    Ok(result)
}

/// A reservation with every event of its stream, for a caller who may
/// read it; with `as_of`, as its events recorded up to that instant left
/// it.
pub async fn reservation(
    commands: &Commands,
    caller: &Caller,
    id: Uuid,
    as_of: Option<chrono::DateTime<Utc>>,
) -> Result<Recorded, ApiError> {
    caller.identity()?;
    let history = store::stream_page(
        &commands.pool,
        Reservation::TYPE,
        &id.to_string(),
        0,
        i64::MAX,
        as_of,
    )
    .await?;
    let mut reservation = Reservation::default();
    for event in &history {
        reservation.apply(event.decode::<Reservation>()?);
    }
    let hidden = || ApiError::NotFound(say("api.no_reservation", &[("id", &id)]));
    let slot = reservation.slot.ok_or_else(hidden)?;
    caller
        .require_reader_of(slot.family_id, &[slot.collectivity_id])
        .map_err(|_| hidden())?;
    Ok(Recorded {
        id,
        reservation,
        history,
    })
}

impl DayStatus {
    fn from_read_model(status: &str) -> DayStatus {
        match status {
            "confirmed" => DayStatus::Confirmed,
            "cancellation_requested" => DayStatus::CancellationRequested,
            "cancelled" => DayStatus::Cancelled,
            "requested" => DayStatus::Requested,
            "awaiting_approval" => DayStatus::AwaitingApproval,
            "awaiting_payment" => DayStatus::AwaitingPayment,
            "released" => DayStatus::Released,
            "rejected" => DayStatus::Rejected,
            "waitlisted" => DayStatus::WaitListed,
            "allocation_pending" => DayStatus::AllocationPending,
            "absence_reported" => DayStatus::AbsenceReported,
            "absent_justified" => DayStatus::AbsentJustified,
            "absent_unjustified" => DayStatus::AbsentUnjustified,
            _ => DayStatus::Free,
        }
    }

    pub fn from_domain(status: ReservationStatus) -> DayStatus {
        match status {
            ReservationStatus::Free => DayStatus::Free,
            ReservationStatus::Confirmed => DayStatus::Confirmed,
            ReservationStatus::AwaitingApproval => DayStatus::AwaitingApproval,
            ReservationStatus::AwaitingPayment => DayStatus::AwaitingPayment,
            ReservationStatus::Released => DayStatus::Released,
            ReservationStatus::Rejected => DayStatus::Rejected,
            ReservationStatus::WaitListed => DayStatus::WaitListed,
            ReservationStatus::AllocationPending => DayStatus::AllocationPending,
            ReservationStatus::CancellationRequested => DayStatus::CancellationRequested,
            ReservationStatus::Cancelled => DayStatus::Cancelled,
            ReservationStatus::AbsenceReported => DayStatus::AbsenceReported,
            ReservationStatus::AbsentJustified => DayStatus::AbsentJustified,
            ReservationStatus::AbsentUnjustified => DayStatus::AbsentUnjustified,
        }
    }

    fn as_domain(self) -> ReservationStatus {
        match self {
            DayStatus::Free => ReservationStatus::Free,
            DayStatus::Requested | DayStatus::Confirmed => ReservationStatus::Confirmed,
            DayStatus::CancellationRequested => ReservationStatus::CancellationRequested,
            DayStatus::Cancelled => ReservationStatus::Cancelled,
            DayStatus::Rejected => ReservationStatus::Rejected,
            DayStatus::WaitListed => ReservationStatus::WaitListed,
            DayStatus::AllocationPending => ReservationStatus::AllocationPending,
            DayStatus::AwaitingApproval => ReservationStatus::AwaitingApproval,
            DayStatus::AwaitingPayment => ReservationStatus::AwaitingPayment,
            DayStatus::Released => ReservationStatus::Released,
            DayStatus::AbsenceReported => ReservationStatus::AbsenceReported,
            DayStatus::AbsentJustified => ReservationStatus::AbsentJustified,
            DayStatus::AbsentUnjustified => ReservationStatus::AbsentUnjustified,
        }
    }
}

/// One ISO week of a family: for each child, each unit of the services it
/// is enrolled in (in the communes the caller may see), the seven days, and
/// how many of them are booked.
#[derive(Debug, Clone)]
pub struct Week {
    pub year: i32,
    pub week: u32,
    pub monday: NaiveDate,
    pub children: Vec<ChildWeek>,
}

#[derive(Debug, Clone)]
pub struct ChildWeek {
    pub child_id: Uuid,
    /// `None` once erased.
    pub first_name: Option<String>,
    /// Days booked in the week, every unit counted (a canteen day is one
    /// meal): requested, confirmed, or with a cancellation pending.
    pub booked: usize,
    pub units: Vec<UnitWeek>,
}

#[derive(Debug, Clone)]
pub struct UnitWeek {
    pub unit_id: Uuid,
    pub collectivity_id: Uuid,
    pub name: String,
    pub days: Vec<Day>,
}

/// The family's week `week` of ISO year `year`.
pub async fn family_week(
    commands: &Commands,
    caller: &Caller,
    family_id: Uuid,
    year: i32,
    week: u32,
) -> Result<Week, ApiError> {
    caller.identity()?;
    let monday = NaiveDate::from_isoywd_opt(year, week, chrono::Weekday::Mon)
        .ok_or_else(|| ApiError::Validation(say("api.no_week", &[("week", &week), ("year", &year)])))?;
    let sunday = monday + chrono::Duration::days(6);
    let hidden = || ApiError::NotFound(say("api.no_family", &[("id", &family_id)]));
    let family = commands.current_family(family_id).await.map_err(|_| hidden())?;
    let communes = caller.visible_of(family_id, family.memberships.keys().copied());
    caller
        .require_reader_of(family_id, &communes)
        .map_err(|_| hidden())?;
    let years = [SchoolYear::of(monday), SchoolYear::of(sunday)];
    let mut children = Vec::with_capacity(family.children.len());
    for (child_id, child) in &family.children {
        let mut units: Vec<(Uuid, Uuid, String)> = Vec::new();
        for enrolment in family
            .enrolments
            .iter()
            .filter(|e| e.child_id == *child_id && years.contains(&e.school_year))
            .filter(|e| communes.contains(&e.collectivity_id))
        {
            let commune = commands.current_collectivity(enrolment.collectivity_id).await?;
            for unit in commune
                .units
                .values()
                .filter(|u| u.service_id == enrolment.service_id)
            {
                if !units.iter().any(|(id, _, _)| *id == unit.id) {
                    units.push((unit.id, enrolment.collectivity_id, unit.name.clone()));
                }
            }
        }
        let mut weeks = Vec::with_capacity(units.len());
        let mut booked = 0;
        for (unit_id, collectivity_id, name) in units {
            let days = calendar(commands, caller, *child_id, unit_id, monday, sunday).await?;
            booked += days
                .iter()
                .filter(|d| {
                    matches!(
                        d.status,
                        DayStatus::Requested | DayStatus::Confirmed | DayStatus::CancellationRequested
                    )
                })
                .count();
            weeks.push(UnitWeek {
                unit_id,
                collectivity_id,
                name,
                days,
            });
        }
        children.push(ChildWeek {
            child_id: *child_id,
            first_name: child.first_name.known().cloned(),
            booked,
            units: weeks,
        });
    }
    Ok(Week {
        year,
        week,
        monday,
        children,
    })
}

/// The first and last day of a month written `2026-12`.
pub fn month_bounds(month: &str) -> Result<(NaiveDate, NaiveDate), ApiError> {
    let invalid = || ApiError::Validation(say("api.not_a_month", &[("value", &month)]));
    let (year, number) = month.trim().split_once('-').ok_or_else(invalid)?;
    let year: i32 = year.parse().map_err(|_| invalid())?;
    let number: u32 = number.parse().map_err(|_| invalid())?;
    if !(2000..=2100).contains(&year) {
        return Err(invalid());
    }
    let first = NaiveDate::from_ymd_opt(year, number, 1).ok_or_else(invalid)?;
    let last = first
        .checked_add_months(chrono::Months::new(1))
        .and_then(|next| next.pred_opt())
        .ok_or_else(invalid)?;
    Ok((first, last))
}
