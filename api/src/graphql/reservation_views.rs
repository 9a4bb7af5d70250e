//! A reservation's GraphQL types: a child's calendar day, a reservation
//! with its history, a pending cancellation; the basket's inputs.

use std::sync::Arc;

use async_graphql::{ComplexObject, Context, Enum, InputObject, Json, SimpleObject};
use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use espace_famille_projections::store::{self, RecordedEvent};
use espace_famille_projections::work_queue;
use uuid::Uuid;

use espace_famille_domain::calendar::in_paris;
use espace_famille_domain::reservation::{Attendance, Reservation};

use super::booking_views::{BasketActionView, RefusalView};
use crate::commands::Commands;
use crate::error::ApiError;
use crate::services::basket::{Period, Weeks};
use crate::services::calendar::{Day, DayStatus, Recorded};

#[derive(InputObject)]
pub struct BasketLineInput {
    pub action: BasketActionView,
    pub child_id: Uuid,
    pub unit_id: Uuid,
    pub date: NaiveDate,
}

#[derive(InputObject)]
pub struct SubmitBasketInput {
    /// Chosen by the client and reused on retry: the same id never books twice.
    pub basket_id: Uuid,
    pub family_id: Uuid,
    pub lines: Vec<BasketLineInput>,
    /// Date ranges with a weekly pattern, turned into lines.
    #[graphql(default)]
    pub periods: Vec<BasketPeriodInput>,
    /// Write the valid lines even when others are refused (default: all or nothing).
    #[graphql(default = false)]
    pub keep_valid_lines: bool,
}

/// Which ISO weeks a period takes.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "Weeks")]
pub enum WeeksView {
    Every,
    /// ISO weeks 2, 4, 6...
    Even,
    /// ISO weeks 1, 3, 5...
    Odd,
}

/// Some days of the week between two dates, both included, for some
/// children and units (1 to 10 of each; at most 366 days).
#[derive(InputObject)]
pub struct BasketPeriodInput {
    pub action: BasketActionView,
    pub child_ids: Vec<Uuid>,
    pub unit_ids: Vec<Uuid>,
    pub first: NaiveDate,
    /// Included.
    pub last: NaiveDate,
    pub weekdays: Vec<super::collectivity_views::WeekdayGql>,
    #[graphql(default_with = "WeeksView::Every")]
    pub weeks: WeeksView,
}

impl BasketPeriodInput {
    pub fn period(&self) -> Period {
        Period {
            action: self.action.into(),
            child_ids: self.child_ids.clone(),
            unit_ids: self.unit_ids.clone(),
            first: self.first,
            last: self.last,
            weekdays: self.weekdays.iter().map(|d| (*d).into()).collect(),
            weeks: match self.weeks {
                WeeksView::Every => Weeks::Every,
                WeeksView::Even => Weeks::Even,
                WeeksView::Odd => Weeks::Odd,
            },
        }
    }
}

/// The state of a slot.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
#[graphql(remote = "crate::services::calendar::DayStatus")]
pub enum SlotStatus {
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
    /// An agent refused the booking (the reason is in its history).
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
#[derive(SimpleObject)]
pub struct CalendarDay {
    pub date: NaiveDate,
    /// The id a booking of this day has (or would have).
    pub reservation_id: Uuid,
    pub status: SlotStatus,
    /// On the waiting list: where, from 1 (it moves up as places free up
    /// or others leave).
    pub waiting_position: Option<u32>,
    /// Where the day stands, as the parent reads it ("liste d'attente,
    /// 3e", "demande enregistrée, attribution le …").
    pub label: String,
    /// A request of an allocated window: when the places are allocated
    /// (with Paris's offset).
    pub allocation_at: Option<DateTime<FixedOffset>>,
    /// Whether the unit runs that day.
    pub open: bool,
    /// Why the unit does not run that day.
    pub closed_reason: Option<String>,
    /// Where the day stands, in one word: closed, bookable, booked...
    pub state: SlotState,
    /// Booking closes at this instant (with Paris's offset), on open days.
    pub booking_deadline: Option<DateTime<FixedOffset>>,
    /// Cancelling closes at this instant (with Paris's offset), on open days.
    pub cancellation_deadline: Option<DateTime<FixedOffset>>,
    pub can_book: bool,
    /// Why the day cannot be booked now.
    pub book_refusal: Option<RefusalView>,
    pub can_cancel: bool,
    /// Why the day cannot be cancelled now.
    pub cancel_refusal: Option<RefusalView>,
}

/// One stored event, as an auditor reads it.
#[derive(Clone, SimpleObject)]
pub struct HistoryEvent {
    pub sequence: i64,
    pub event_id: Uuid,
    pub event_type: String,
    pub event_version: String,
    pub recorded_at: DateTime<Utc>,
    pub actor_id: Option<String>,
    pub actor_role: Option<String>,
    pub correlation_id: Option<String>,
    pub causation_id: Option<String>,
    pub command_id: Option<String>,
    pub payload: Json<serde_json::Value>,
}

impl From<&RecordedEvent> for HistoryEvent {
    fn from(e: &RecordedEvent) -> Self {
        let meta = |key: &str| e.metadata_field(key);
        HistoryEvent {
            sequence: e.sequence,
            event_id: e.event_id,
            event_type: e.event_type.clone(),
            event_version: e.event_version.clone(),
            recorded_at: e.recorded_at,
            actor_id: meta("actor_id"),
            actor_role: meta("actor_role"),
            correlation_id: meta("correlation_id"),
            causation_id: meta("causation_id"),
            command_id: meta("command_id"),
            payload: Json(e.payload_value()),
        }
    }
}

impl From<Day> for CalendarDay {
    fn from(day: Day) -> Self {
        let state = SlotState::of(&day);
        CalendarDay {
            date: day.date,
            reservation_id: day.reservation_id,
            status: day.status.into(),
            waiting_position: day.waiting_position,
            label: crate::i18n::slot_label(
                state.key(),
                day.waiting_position,
                day.allocation_at,
                crate::i18n::current(),
            ),
            allocation_at: day.allocation_at.map(in_paris),
            open: day.closed_reason.is_none(),
            closed_reason: day.closed_reason,
            state,
            booking_deadline: day.booking_deadline.map(in_paris),
            cancellation_deadline: day.cancellation_deadline.map(in_paris),
            can_book: day.book_refusal.is_none(),
            book_refusal: day.book_refusal.as_ref().map(RefusalView::from),
            can_cancel: day.cancel_refusal.is_none(),
            cancel_refusal: day.cancel_refusal.as_ref().map(RefusalView::from),
        }
    }
}

#[derive(SimpleObject)]
#[graphql(name = "Reservation", complex)]
pub struct ReservationView {
    pub id: Uuid,
    pub family_id: Uuid,
    pub child_id: Uuid,
    pub collectivity_id: Uuid,
    pub service_id: Uuid,
    pub unit_id: Uuid,
    pub date: NaiveDate,
    pub status: SlotStatus,
    /// What the roll call recorded, once taken.
    pub attendance: Option<super::attendance::AttendanceView>,
    /// The history, when it was read to build the view; otherwise it is
    /// read only if the caller asks for it.
    #[graphql(skip)]
    pub history: Option<Vec<HistoryEvent>>,
}

impl ReservationView {
    /// A reservation as its events left it; its history is read when asked
    /// for.
    pub fn new(id: Uuid, reservation: &Reservation) -> Result<ReservationView, ApiError> {
        let slot = reservation
            .slot
            .ok_or_else(|| ApiError::NotFound(crate::i18n::say("api.no_reservation", &[("id", &id)])))?;
        Ok(ReservationView {
            id,
            family_id: slot.family_id,
            child_id: slot.child_id,
            collectivity_id: slot.collectivity_id,
            service_id: slot.service_id,
            unit_id: slot.unit_id,
            date: slot.date,
            status: DayStatus::from_domain(reservation.status).into(),
            attendance: reservation.attendance.map(Into::into),
            history: None,
        })
    }

    /// A reservation with its history, read with it.
    pub fn recorded(recorded: &Recorded) -> Result<ReservationView, ApiError> {
        let mut view = ReservationView::new(recorded.id, &recorded.reservation)?;
        view.history = Some(recorded.history.iter().map(HistoryEvent::from).collect());
        Ok(view)
    }
}

#[ComplexObject]
impl ReservationView {
    /// Every event of the reservation, oldest first.
    async fn history(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<HistoryEvent>> {
        if let Some(history) = &self.history {
            return Ok(history.clone());
        }
        let pool = &ctx.data_unchecked::<Arc<Commands>>().pool;
        let events = store::stream_history(pool, "Reservation", &self.id.to_string())
            .await
            .map_err(ApiError::from)?;
        Ok(events.iter().map(HistoryEvent::from).collect())
    }
}

#[derive(SimpleObject)]
#[graphql(name = "PendingCancellation")]
pub struct PendingCancellationView {
    /// A booking to approve, or a cancellation.
    pub kind: PendingKindView,
    /// Where the next page starts (`after`).
    pub cursor: String,
    pub reservation_id: Uuid,
    pub collectivity_id: Uuid,
    pub family_id: Uuid,
    pub child_id: Uuid,
    pub unit_id: Uuid,
    pub date: NaiveDate,
    pub requested_at: DateTime<Utc>,
    pub requested_by: String,
}

impl From<work_queue::PendingCancellation> for PendingCancellationView {
    fn from(p: work_queue::PendingCancellation) -> Self {
        PendingCancellationView {
            kind: match p.kind {
                work_queue::PendingKind::Booking => PendingKindView::Booking,
                work_queue::PendingKind::Cancellation => PendingKindView::Cancellation,
            },
            cursor: format!("{}/{}", p.requested_at.to_rfc3339(), p.reservation_id),
            reservation_id: p.reservation_id,
            collectivity_id: p.collectivity_id,
            family_id: p.family_id,
            child_id: p.child_id,
            unit_id: p.unit_id,
            date: p.day,
            requested_at: p.requested_at,
            requested_by: p.requested_by,
        }
    }
}

/// A family's ISO week.
#[derive(SimpleObject)]
#[graphql(name = "FamilyWeek")]
pub struct FamilyWeekView {
    pub year: i32,
    pub week: u32,
    /// Its Monday and its Sunday.
    pub first: NaiveDate,
    pub last: NaiveDate,
    pub children: Vec<ChildWeekView>,
}

#[derive(SimpleObject)]
#[graphql(name = "ChildWeek")]
pub struct ChildWeekView {
    pub child_id: Uuid,
    pub first_name: Option<String>,
    /// Days booked in the week, every unit counted.
    pub booked: i32,
    pub units: Vec<UnitWeekView>,
}

#[derive(SimpleObject)]
#[graphql(name = "UnitWeek")]
pub struct UnitWeekView {
    pub unit_id: Uuid,
    pub collectivity_id: Uuid,
    pub name: String,
    pub days: Vec<CalendarDay>,
}

impl From<crate::services::calendar::Week> for FamilyWeekView {
    fn from(week: crate::services::calendar::Week) -> Self {
        FamilyWeekView {
            year: week.year,
            week: week.week,
            first: week.monday,
            last: week.monday + chrono::Duration::days(6),
            children: week
                .children
                .into_iter()
                .map(|child| ChildWeekView {
                    child_id: child.child_id,
                    first_name: child.first_name,
                    booked: child.booked as i32,
                    units: child
                        .units
                        .into_iter()
                        .map(|unit| UnitWeekView {
                            unit_id: unit.unit_id,
                            collectivity_id: unit.collectivity_id,
                            name: unit.name,
                            days: unit.days.into_iter().map(CalendarDay::from).collect(),
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}

/// What waits for an agent.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "PendingKind")]
pub enum PendingKindView {
    Booking,
    Cancellation,
}

/// One decision of many taken at once.
#[derive(InputObject)]
pub struct DecisionInput {
    pub reservation_id: Uuid,
    pub approve: bool,
    /// A comment on an approval; the reason of a refusal (needed).
    pub note: Option<String>,
}

/// Reads a queue's cursor ("instant/reservation id").
pub fn parse_cursor(cursor: &str) -> Result<(DateTime<Utc>, Uuid), ApiError> {
    let invalid = || ApiError::Validation(crate::i18n::say("api.bad_cursor", &[]));
    if cursor.len() > 100 {
        return Err(invalid());
    }
    let (at, id) = cursor.split_once('/').ok_or_else(invalid)?;
    Ok((
        DateTime::parse_from_rfc3339(at)
            .map_err(|_| invalid())?
            .with_timezone(&Utc),
        id.parse().map_err(|_| invalid())?,
    ))
}

/// Where a day stands for a child in a unit, in one word.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum SlotState {
    /// The unit does not run that day (`closedReason` says why).
    Closed,
    /// Free, and it can be booked now.
    Bookable,
    /// Free, but it cannot be booked now (`bookRefusal` says why: a
    /// deadline passed, not enrolled).
    Unavailable,
    Booked,
    AwaitingApproval,
    /// Booked in a prepaid unit: to be paid within the hour, or released.
    AwaitingPayment,
    /// Every place was taken: on the waiting list (`waitingPosition`).
    WaitListed,
    /// Asked while an allocated window is open (`allocationAt`).
    AllocationPending,
    Rejected,
    CancellationRequested,
    Cancelled,
    AbsenceReported,
    AbsentJustified,
    AbsentUnjustified,
    /// Booked, and there at the roll call.
    Present,
    /// Booked, not there at the roll call, no absence reported.
    Absent,
    /// There at the roll call without a booking.
    UnexpectedPresence,
}

impl SlotState {
    /// Its key in the message catalogue.
    fn key(self) -> &'static str {
        match self {
            SlotState::Closed => "closed",
            SlotState::Bookable => "bookable",
            SlotState::Unavailable => "unavailable",
            SlotState::Booked => "booked",
            SlotState::AwaitingApproval => "awaiting_approval",
            SlotState::AwaitingPayment => "awaiting_payment",
            SlotState::WaitListed => "wait_listed",
            SlotState::AllocationPending => "allocation_pending",
            SlotState::Rejected => "rejected",
            SlotState::CancellationRequested => "cancellation_requested",
            SlotState::Cancelled => "cancelled",
            SlotState::AbsenceReported => "absence_reported",
            SlotState::AbsentJustified => "absent_justified",
            SlotState::AbsentUnjustified => "absent_unjustified",
            SlotState::Present => "present",
            SlotState::Absent => "absent",
            SlotState::UnexpectedPresence => "unexpected_presence",
        }
    }

    fn of(day: &Day) -> SlotState {
        // What the roll call saw comes first, except an absence the family
        // reported, which says more than "absent".
        match day.attendance {
            Some(Attendance::Present) => return SlotState::Present,
            Some(Attendance::Unexpected) => return SlotState::UnexpectedPresence,
            Some(Attendance::Absent)
                if matches!(
                    day.status,
                    DayStatus::Confirmed | DayStatus::CancellationRequested
                ) =>
            {
                return SlotState::Absent
            }
            _ => {}
        }
        match day.status {
            DayStatus::Free | DayStatus::Released | DayStatus::Cancelled | DayStatus::Rejected
                if day.closed_reason.is_some() =>
            {
                SlotState::Closed
            }
            DayStatus::Free | DayStatus::Released if day.book_refusal.is_none() => SlotState::Bookable,
            DayStatus::Free | DayStatus::Released => SlotState::Unavailable,
            DayStatus::AwaitingPayment => SlotState::AwaitingPayment,
            DayStatus::Requested | DayStatus::Confirmed => SlotState::Booked,
            DayStatus::AwaitingApproval => SlotState::AwaitingApproval,
            DayStatus::Rejected => SlotState::Rejected,
            DayStatus::WaitListed => SlotState::WaitListed,
            DayStatus::AllocationPending => SlotState::AllocationPending,
            DayStatus::CancellationRequested => SlotState::CancellationRequested,
            DayStatus::Cancelled => SlotState::Cancelled,
            DayStatus::AbsenceReported => SlotState::AbsenceReported,
            DayStatus::AbsentJustified => SlotState::AbsentJustified,
            DayStatus::AbsentUnjustified => SlotState::AbsentUnjustified,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::Locale;

    #[test]
    fn every_state_has_a_label_in_each_language() {
        for state in <SlotState as async_graphql::resolver_utils::EnumType>::items() {
            for locale in [Locale::Fr, Locale::En] {
                let label = crate::i18n::slot_label(state.value.key(), None, None, locale);
                assert!(
                    !label.starts_with("slot."),
                    "{:?} in {locale:?}: {label}",
                    state.value
                );
            }
        }
    }
}
