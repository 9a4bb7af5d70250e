//! The reservation: one child in one unit on one date.
//!
//! Its id is derived from the three (UUIDv5), so the same booking can never
//! exist twice and a retried request lands on the same stream. Every refusal
//! is a typed reason a parent can read: a date is never greyed out without
//! saying why.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::calendar::{ClosedReason, SchoolYear};
use crate::collectivity::{BillingMode, Collectivity, Unit};
use crate::family::Family;
use crate::text::{self, TextError};

/// Namespace of reservation ids; never change it, or every id changes.
const RESERVATION_NAMESPACE: Uuid = Uuid::from_u128(0x6d3c_5a80_91f2_4c1e_9b7d_2f41_a0c8_e517);

/// The id of the reservation of `child` in `unit` on `date`.
pub fn reservation_id(child_id: Uuid, unit_id: Uuid, date: NaiveDate) -> Uuid {
    let mut name = Vec::with_capacity(42);
    name.extend_from_slice(child_id.as_bytes());
    name.extend_from_slice(unit_id.as_bytes());
    name.extend_from_slice(date.format("%Y-%m-%d").to_string().as_bytes());
    Uuid::new_v5(&RESERVATION_NAMESPACE, &name)
}

/// What a reservation is about, fixed at its first request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    pub family_id: Uuid,
    pub child_id: Uuid,
    pub collectivity_id: Uuid,
    pub service_id: Uuid,
    pub unit_id: Uuid,
    pub date: NaiveDate,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReservationStatus {
    /// Never booked.
    #[default]
    Free,
    Confirmed,
    /// The parent asked to cancel; an agent decides.
    CancellationRequested,
    Cancelled,
}

/// What a command needs to know beyond the reservation's own history: the
/// time, and the commune's and family's state as their events built them.
#[derive(Debug, Clone)]
pub struct BookingContext {
    pub now: DateTime<Utc>,
    pub collectivity: Arc<Collectivity>,
    pub family: Arc<Family>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReservationCommand {
    Request {
        child_id: Uuid,
        unit_id: Uuid,
        date: NaiveDate,
    },
    Cancel,
    /// An agent accepts the pending cancellation.
    Approve {
        comment: Option<String>,
    },
    /// An agent refuses the pending cancellation; the booking stands.
    Reject {
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReservationEvent {
    ReservationRequested {
        slot: Slot,
    },
    ReservationConfirmed,
    CancellationRequested,
    /// Cancelled by the parent within the deadline, where no approval is needed.
    ReservationCancelled,
    AgentApproved {
        comment: Option<String>,
    },
    AgentRejected {
        reason: String,
    },
}

impl DomainEvent for ReservationEvent {
    fn event_type(&self) -> String {
        match self {
            ReservationEvent::ReservationRequested { .. } => "ReservationRequested",
            ReservationEvent::ReservationConfirmed => "ReservationConfirmed",
            ReservationEvent::CancellationRequested => "CancellationRequested",
            ReservationEvent::ReservationCancelled => "ReservationCancelled",
            ReservationEvent::AgentApproved { .. } => "AgentApproved",
            ReservationEvent::AgentRejected { .. } => "AgentRejected",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReservationError {
    #[error("no unit {0} in this commune")]
    UnknownUnit(Uuid),
    #[error("no child {0} in this family")]
    UnknownChild(Uuid),
    #[error("the unit is closed on {date}: {reason}")]
    UnitClosed { date: NaiveDate, reason: ClosedReason },
    #[error("the child is not enrolled in this service for the school year {0}")]
    NotEnrolled(SchoolYear),
    #[error("the deadline passed on {} (Paris time)", crate::calendar::paris_display(*.0))]
    DeadlinePassed(DateTime<Utc>),
    #[error("this slot is already booked")]
    AlreadyBooked,
    #[error("this slot is not booked")]
    NotBooked,
    #[error("a cancellation of this booking is already waiting for an agent")]
    CancellationAlreadyRequested,
    #[error("this booking is already cancelled")]
    AlreadyCancelled,
    #[error("there is no cancellation waiting for a decision on this booking")]
    NoPendingCancellation,
    #[error("a refusal needs a reason")]
    EmptyReason,
    #[error("online payment is not available yet: prepaid units cannot be booked")]
    PrepaidNotAvailable,
    #[error(transparent)]
    InvalidText(#[from] TextError),
    /// The stream holds another family's booking: no line of this family
    /// may touch it (reachable only through ids that collided before ids
    /// were claimed once for all).
    #[error("this booking belongs to another family")]
    OtherFamily,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Reservation {
    pub slot: Option<Slot>,
    pub status: ReservationStatus,
}

impl Reservation {
    fn unit(context: &BookingContext, unit_id: Uuid) -> Result<&Unit, ReservationError> {
        context
            .collectivity
            .units
            .get(&unit_id)
            .ok_or(ReservationError::UnknownUnit(unit_id))
    }

    /// Whether `child` can be booked into `unit` on `date` now: the slot it
    /// would book, or the reason it cannot. The calendar shows this same
    /// verdict next to every day.
    pub fn check_request(
        &self,
        child_id: Uuid,
        unit_id: Uuid,
        date: NaiveDate,
        context: &BookingContext,
    ) -> Result<Slot, ReservationError> {
        text::date("a day", date)?;
        let unit = Self::unit(context, unit_id)?;
        let family = &context.family;
        if !family.children.contains_key(&child_id) {
            return Err(ReservationError::UnknownChild(child_id));
        }
        self.check_family(context)?;
        match self.status {
            ReservationStatus::Confirmed | ReservationStatus::CancellationRequested => {
                return Err(ReservationError::AlreadyBooked)
            }
            ReservationStatus::Free | ReservationStatus::Cancelled => {}
        }
        let calendar = &context.collectivity.calendar;
        unit.opening
            .check(date, calendar)
            .map_err(|reason| ReservationError::UnitClosed { date, reason })?;
        let collectivity_id = context
            .collectivity
            .id
            .ok_or(ReservationError::UnknownUnit(unit_id))?;
        let year = SchoolYear::of(date);
        if !family.is_enrolled(child_id, collectivity_id, unit.service_id, year) {
            return Err(ReservationError::NotEnrolled(year));
        }
        let deadline = unit.booking_deadline.deadline_for(date, calendar);
        if context.now > deadline {
            return Err(ReservationError::DeadlinePassed(deadline));
        }
        if unit.billing == BillingMode::Prepaid {
            return Err(ReservationError::PrepaidNotAvailable);
        }
        Ok(Slot {
            family_id: family.id.ok_or(ReservationError::UnknownChild(child_id))?,
            child_id,
            collectivity_id,
            service_id: unit.service_id,
            unit_id,
            date,
        })
    }

    /// Whether this booking can be cancelled now: the event a cancellation
    /// would record, or the reason it cannot.
    pub fn check_cancel(&self, context: &BookingContext) -> Result<ReservationEvent, ReservationError> {
        self.check_family(context)?;
        let slot = match (self.slot, self.status) {
            (Some(slot), ReservationStatus::Confirmed) => slot,
            (_, ReservationStatus::CancellationRequested) => {
                return Err(ReservationError::CancellationAlreadyRequested)
            }
            (_, ReservationStatus::Cancelled) => return Err(ReservationError::AlreadyCancelled),
            _ => return Err(ReservationError::NotBooked),
        };
        let unit = Self::unit(context, slot.unit_id)?;
        let deadline = unit
            .cancellation_deadline
            .deadline_for(slot.date, &context.collectivity.calendar);
        if context.now > deadline {
            return Err(ReservationError::DeadlinePassed(deadline));
        }
        Ok(if unit.cancellation_needs_approval {
            ReservationEvent::CancellationRequested
        } else {
            ReservationEvent::ReservationCancelled
        })
    }
}

impl Reservation {
    /// A reservation already booked is only ever touched by its own family.
    fn check_family(&self, context: &BookingContext) -> Result<(), ReservationError> {
        match self.slot {
            Some(slot) if Some(slot.family_id) != context.family.id => Err(ReservationError::OtherFamily),
            _ => Ok(()),
        }
    }
}

/// An agent's answer to a pending cancellation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Approve { comment: Option<String> },
    Reject { reason: String },
}

impl Reservation {
    /// The event a decision on this reservation records, or why it cannot be
    /// taken. Unlike booking and cancelling, deciding depends on nothing
    /// but the reservation's own history: no commune, family or clock.
    pub fn check_decision(&self, decision: Decision) -> Result<ReservationEvent, ReservationError> {
        if self.status != ReservationStatus::CancellationRequested {
            return Err(ReservationError::NoPendingCancellation);
        }
        match decision {
            Decision::Approve { comment } => Ok(ReservationEvent::AgentApproved {
                comment: text::multiline("a comment", comment.as_deref(), text::COMMENT)?,
            }),
            Decision::Reject { reason } => {
                let reason = text::multiline("a reason", Some(&reason), text::COMMENT)?
                    .ok_or(ReservationError::EmptyReason)?;
                Ok(ReservationEvent::AgentRejected { reason })
            }
        }
    }
}

impl Aggregate for Reservation {
    const TYPE: &'static str = "Reservation";
    type Command = ReservationCommand;
    type Event = ReservationEvent;
    type Error = ReservationError;
    type Services = BookingContext;

    async fn handle(
        &mut self,
        command: Self::Command,
        context: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        match command {
            ReservationCommand::Request {
                child_id,
                unit_id,
                date,
            } => {
                let slot = self.check_request(child_id, unit_id, date, context)?;
                sink.write(ReservationEvent::ReservationRequested { slot }, self)
                    .await;
                sink.write(ReservationEvent::ReservationConfirmed, self).await;
            }
            ReservationCommand::Cancel => {
                let event = self.check_cancel(context)?;
                sink.write(event, self).await;
            }
            ReservationCommand::Approve { comment } => {
                let event = self.check_decision(Decision::Approve { comment })?;
                sink.write(event, self).await;
            }
            ReservationCommand::Reject { reason } => {
                let event = self.check_decision(Decision::Reject { reason })?;
                sink.write(event, self).await;
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            ReservationEvent::ReservationRequested { slot } => self.slot = Some(slot),
            ReservationEvent::ReservationConfirmed | ReservationEvent::AgentRejected { .. } => {
                self.status = ReservationStatus::Confirmed
            }
            ReservationEvent::CancellationRequested => self.status = ReservationStatus::CancellationRequested,
            ReservationEvent::ReservationCancelled | ReservationEvent::AgentApproved { .. } => {
                self.status = ReservationStatus::Cancelled
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collectivity::tests::{configured, meal, CANTEEN, COMMUNE, MEAL};
    use crate::collectivity::CollectivityEvent;
    use crate::family::tests::{enrolment, louise, opened, FAMILY, LOUISE};
    use crate::family::FamilyEvent;
    use chrono::Weekday;
    use cqrs_es::test::TestFramework;

    /// Monday 7 December 2026: booking closes Thursday 3 December at noon
    /// Paris time (11:00 UTC), cancelling on Friday 4 December at 10:00
    /// Paris time (09:00 UTC).
    fn monday() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, 7).unwrap()
    }

    fn at(instant: &str) -> DateTime<Utc> {
        instant.parse().unwrap()
    }

    fn collectivity(extra: Vec<CollectivityEvent>) -> Collectivity {
        let mut collectivity = Collectivity::default();
        for event in configured().into_iter().chain(extra) {
            collectivity.apply(event);
        }
        collectivity
    }

    fn family(enrolled: bool) -> Family {
        let mut family = Family::default();
        family.apply(opened());
        family.apply(FamilyEvent::ChildRegistered { child: louise() });
        if enrolled {
            family.apply(FamilyEvent::ChildEnrolled {
                enrolment: enrolment(),
            });
        }
        family
    }

    fn context_at(now: &str) -> BookingContext {
        BookingContext {
            now: at(now),
            collectivity: Arc::new(collectivity(vec![])),
            family: Arc::new(family(true)),
        }
    }

    fn framework(now: &str) -> TestFramework<Reservation> {
        TestFramework::with(context_at(now))
    }

    fn slot() -> Slot {
        Slot {
            family_id: FAMILY,
            child_id: LOUISE,
            collectivity_id: COMMUNE,
            service_id: CANTEEN,
            unit_id: MEAL,
            date: monday(),
        }
    }

    fn book() -> ReservationCommand {
        ReservationCommand::Request {
            child_id: LOUISE,
            unit_id: MEAL,
            date: monday(),
        }
    }

    fn booked() -> Vec<ReservationEvent> {
        vec![
            ReservationEvent::ReservationRequested { slot: slot() },
            ReservationEvent::ReservationConfirmed,
        ]
    }

    fn cancellation_pending() -> Vec<ReservationEvent> {
        let mut events = booked();
        events.push(ReservationEvent::CancellationRequested);
        events
    }

    #[test]
    fn the_same_child_unit_and_date_always_give_the_same_reservation_id() {
        assert_eq!(
            reservation_id(LOUISE, MEAL, monday()),
            reservation_id(LOUISE, MEAL, monday())
        );
        assert_ne!(
            reservation_id(LOUISE, MEAL, monday()),
            reservation_id(LOUISE, MEAL, monday().succ_opt().unwrap())
        );
    }

    #[test]
    fn a_monthly_unit_is_confirmed_at_once_before_the_deadline() {
        framework("2026-12-03T10:59:59Z")
            .given_no_previous_events()
            .when(book())
            .then_expect_events(booked());
    }

    #[test]
    fn it_refuses_a_booking_after_the_deadline_and_says_when_it_was() {
        framework("2026-12-03T11:00:01Z")
            .given_no_previous_events()
            .when(book())
            .then_expect_error(ReservationError::DeadlinePassed(at("2026-12-03T11:00:00Z")));
    }

    #[test]
    fn a_passed_deadline_is_told_in_paris_time() {
        let error = ReservationError::DeadlinePassed(at("2026-12-03T11:00:00Z"));
        assert_eq!(
            error.to_string(),
            "the deadline passed on 2026-12-03 12:00 (Paris time)"
        );
    }

    #[test]
    fn it_refuses_a_booking_for_a_child_not_enrolled_in_the_service() {
        let context = BookingContext {
            family: Arc::new(family(false)),
            ..context_at("2026-12-01T08:00:00Z")
        };
        TestFramework::<Reservation>::with(context)
            .given_no_previous_events()
            .when(book())
            .then_expect_error(ReservationError::NotEnrolled(SchoolYear(2026)));
    }

    #[test]
    fn it_refuses_a_booking_on_a_day_the_unit_is_closed() {
        let wednesday = NaiveDate::from_ymd_opt(2026, 12, 9).unwrap();
        framework("2026-12-01T08:00:00Z")
            .given_no_previous_events()
            .when(ReservationCommand::Request {
                child_id: LOUISE,
                unit_id: MEAL,
                date: wednesday,
            })
            .then_expect_error(ReservationError::UnitClosed {
                date: wednesday,
                reason: ClosedReason::ClosedWeekday(Weekday::Wed),
            });
    }

    #[test]
    fn it_refuses_a_booking_on_a_public_holiday() {
        let mut calendar = crate::calendar::SchoolCalendar::default();
        calendar.public_holidays.insert(monday());
        let context = BookingContext {
            collectivity: Arc::new(collectivity(vec![CollectivityEvent::SchoolCalendarSet {
                calendar,
            }])),
            ..context_at("2026-12-01T08:00:00Z")
        };
        TestFramework::<Reservation>::with(context)
            .given_no_previous_events()
            .when(book())
            .then_expect_error(ReservationError::UnitClosed {
                date: monday(),
                reason: ClosedReason::PublicHoliday,
            });
    }

    #[test]
    fn it_refuses_a_slot_that_is_already_booked() {
        framework("2026-12-01T08:00:00Z")
            .given(booked())
            .when(book())
            .then_expect_error(ReservationError::AlreadyBooked);
    }

    #[test]
    fn it_refuses_an_unknown_unit_or_child() {
        let stranger = Uuid::from_u128(0xbad);
        framework("2026-12-01T08:00:00Z")
            .given_no_previous_events()
            .when(ReservationCommand::Request {
                child_id: LOUISE,
                unit_id: stranger,
                date: monday(),
            })
            .then_expect_error(ReservationError::UnknownUnit(stranger));
        framework("2026-12-01T08:00:00Z")
            .given_no_previous_events()
            .when(ReservationCommand::Request {
                child_id: stranger,
                unit_id: MEAL,
                date: monday(),
            })
            .then_expect_error(ReservationError::UnknownChild(stranger));
    }

    #[test]
    fn it_refuses_a_prepaid_unit_until_payment_exists() {
        let mut unit = meal();
        unit.id = Uuid::from_u128(0x0e2);
        unit.billing = BillingMode::Prepaid;
        let context = BookingContext {
            collectivity: Arc::new(collectivity(vec![CollectivityEvent::UnitAdded { unit }])),
            ..context_at("2026-12-01T08:00:00Z")
        };
        TestFramework::<Reservation>::with(context)
            .given_no_previous_events()
            .when(ReservationCommand::Request {
                child_id: LOUISE,
                unit_id: Uuid::from_u128(0x0e2),
                date: monday(),
            })
            .then_expect_error(ReservationError::PrepaidNotAvailable);
    }

    #[test]
    fn a_cancelled_slot_can_be_booked_again_before_the_deadline() {
        let mut history = cancellation_pending();
        history.push(ReservationEvent::AgentApproved { comment: None });
        framework("2026-12-01T08:00:00Z")
            .given(history)
            .when(book())
            .then_expect_events(booked());
    }

    #[test]
    fn a_cancellation_waits_for_an_agent_when_the_unit_requires_it() {
        framework("2026-12-04T08:59:00Z")
            .given(booked())
            .when(ReservationCommand::Cancel)
            .then_expect_events(vec![ReservationEvent::CancellationRequested]);
    }

    #[test]
    fn a_cancellation_is_immediate_when_the_unit_needs_no_approval() {
        let mut unit = meal();
        unit.cancellation_needs_approval = false;
        let mut collectivity = collectivity(vec![]);
        collectivity.units.insert(MEAL, unit);
        let context = BookingContext {
            collectivity: Arc::new(collectivity),
            ..context_at("2026-12-04T08:59:00Z")
        };
        TestFramework::<Reservation>::with(context)
            .given(booked())
            .when(ReservationCommand::Cancel)
            .then_expect_events(vec![ReservationEvent::ReservationCancelled]);
    }

    /// The same child id in another family: what a collision of ids made
    /// before ids were claimed would give.
    fn other_family_at(now: &str) -> BookingContext {
        let mut other = family(true);
        other.id = Some(Uuid::from_u128(0xbad));
        BookingContext {
            family: Arc::new(other),
            ..context_at(now)
        }
    }

    #[test]
    fn it_refuses_a_cancellation_by_a_family_that_does_not_hold_the_booking() {
        TestFramework::<Reservation>::with(other_family_at("2026-12-01T08:00:00Z"))
            .given(booked())
            .when(ReservationCommand::Cancel)
            .then_expect_error(ReservationError::OtherFamily);
    }

    #[test]
    fn it_refuses_to_book_again_a_slot_another_family_had_cancelled() {
        let mut history = booked();
        history.push(ReservationEvent::ReservationCancelled);
        TestFramework::<Reservation>::with(other_family_at("2026-12-01T08:00:00Z"))
            .given(history)
            .when(book())
            .then_expect_error(ReservationError::OtherFamily);
    }

    #[test]
    fn it_refuses_a_day_outside_the_years_served_without_overflowing() {
        framework("2026-12-01T08:00:00Z")
            .given_no_previous_events()
            .when(ReservationCommand::Request {
                child_id: LOUISE,
                unit_id: MEAL,
                date: NaiveDate::MAX,
            })
            .then_expect_error(ReservationError::InvalidText(TextError::OutOfRange {
                field: "a day",
            }));
    }

    #[test]
    fn a_refusal_reason_with_a_nul_byte_is_refused() {
        framework("2026-12-01T08:00:00Z")
            .given(cancellation_pending())
            .when(ReservationCommand::Reject {
                reason: "non\0".into(),
            })
            .then_expect_error(ReservationError::InvalidText(TextError::ControlCharacter {
                field: "a reason",
            }));
    }

    #[test]
    fn it_refuses_a_cancellation_after_the_deadline() {
        framework("2026-12-04T09:00:01Z")
            .given(booked())
            .when(ReservationCommand::Cancel)
            .then_expect_error(ReservationError::DeadlinePassed(at("2026-12-04T09:00:00Z")));
    }

    #[test]
    fn it_refuses_to_cancel_a_slot_that_was_never_booked() {
        framework("2026-12-01T08:00:00Z")
            .given_no_previous_events()
            .when(ReservationCommand::Cancel)
            .then_expect_error(ReservationError::NotBooked);
    }

    #[test]
    fn it_refuses_a_second_cancellation_request() {
        framework("2026-12-01T08:00:00Z")
            .given(cancellation_pending())
            .when(ReservationCommand::Cancel)
            .then_expect_error(ReservationError::CancellationAlreadyRequested);
    }

    #[test]
    fn it_refuses_to_cancel_a_cancelled_booking() {
        let mut history = cancellation_pending();
        history.push(ReservationEvent::AgentApproved { comment: None });
        framework("2026-12-01T08:00:00Z")
            .given(history)
            .when(ReservationCommand::Cancel)
            .then_expect_error(ReservationError::AlreadyCancelled);
    }

    #[test]
    fn an_agent_approves_a_pending_cancellation() {
        framework("2026-12-05T08:00:00Z")
            .given(cancellation_pending())
            .when(ReservationCommand::Approve {
                comment: Some(" malade ".into()),
            })
            .then_expect_events(vec![ReservationEvent::AgentApproved {
                comment: Some("malade".into()),
            }]);
    }

    #[test]
    fn an_agent_rejection_needs_a_reason_and_keeps_the_booking() {
        framework("2026-12-05T08:00:00Z")
            .given(cancellation_pending())
            .when(ReservationCommand::Reject { reason: " ".into() })
            .then_expect_error(ReservationError::EmptyReason);
        let mut history = cancellation_pending();
        history.push(ReservationEvent::AgentRejected {
            reason: "repas déjà commandé".into(),
        });
        let mut reservation = Reservation::default();
        for event in history {
            reservation.apply(event);
        }
        assert_eq!(reservation.status, ReservationStatus::Confirmed);
    }

    #[test]
    fn it_refuses_a_decision_when_no_cancellation_is_pending() {
        framework("2026-12-05T08:00:00Z")
            .given(booked())
            .when(ReservationCommand::Approve { comment: None })
            .then_expect_error(ReservationError::NoPendingCancellation);
    }
}
