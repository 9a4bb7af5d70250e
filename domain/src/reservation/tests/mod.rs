//! Given/when/then tests of the reservation aggregate: the fixtures here,
//! booking and its decisions in `booking`, the day itself (absences, the
//! roll call) in `on_the_day`, the waiting list in `waiting`.

mod booking;
mod on_the_day;
mod waiting;

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
        overdue_cents: 0,
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
        origin: Origin::Calendar,
    }
}

fn booked() -> Vec<ReservationEvent> {
    vec![
        ReservationEvent::ReservationRequested {
            slot: slot(),
            origin: Origin::Calendar,
        },
        ReservationEvent::ReservationConfirmed,
    ]
}

fn cancellation_pending() -> Vec<ReservationEvent> {
    let mut events = booked();
    events.push(ReservationEvent::CancellationRequested);
    events
}
