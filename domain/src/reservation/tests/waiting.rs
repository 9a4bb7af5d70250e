//! A booking on a day whose places are all taken: on the waiting list,
//! until it leaves or is promoted.

use super::*;

fn join() -> ReservationCommand {
    ReservationCommand::JoinWaitingList {
        child_id: LOUISE,
        unit_id: MEAL,
        date: monday(),
        origin: Origin::Calendar,
        ticket: 4,
        position: 3,
    }
}

fn waiting() -> Vec<ReservationEvent> {
    vec![
        ReservationEvent::ReservationRequested {
            slot: slot(),
            origin: Origin::Calendar,
        },
        ReservationEvent::WaitListed {
            ticket: 4,
            position: 3,
        },
    ]
}

#[test]
fn a_full_day_puts_the_booking_on_the_waiting_list_after_the_same_checks() {
    framework("2026-12-01T08:00:00Z")
        .given_no_previous_events()
        .when(join())
        .then_expect_events(waiting());
    // Waiting is no way round the rules: after the deadline, refused.
    framework("2026-12-03T11:00:01Z")
        .given_no_previous_events()
        .when(join())
        .then_expect_error(ReservationError::DeadlinePassed(at("2026-12-03T11:00:00Z")));
    framework("2026-12-01T08:00:00Z")
        .given(waiting())
        .when(book())
        .then_expect_error(ReservationError::AlreadyWaitListed);
}

#[test]
fn the_parent_leaves_the_waiting_list_whenever_and_may_book_again() {
    // Past the cancellation deadline: no place was ever given.
    framework("2026-12-06T08:00:00Z")
        .given(waiting())
        .when(ReservationCommand::Cancel)
        .then_expect_events(vec![ReservationEvent::LeftWaitingList]);
    framework("2026-12-06T08:00:00Z")
        .given(waiting())
        .when(ReservationCommand::LeaveWaitingList)
        .then_expect_events(vec![ReservationEvent::LeftWaitingList]);
    framework("2026-12-01T08:00:00Z")
        .given([waiting(), vec![ReservationEvent::LeftWaitingList]].concat())
        .when(book())
        .then_expect_events(booked());
    // Leaving the list never cancels a booking that has its place.
    framework("2026-12-01T08:00:00Z")
        .given(booked())
        .when(ReservationCommand::LeaveWaitingList)
        .then_expect_error(ReservationError::NotWaitListed);
}

#[test]
fn a_promotion_gives_the_place_while_the_booking_still_waits_and_the_day_can_be_booked() {
    let mut reservation = Reservation::default();
    for event in waiting() {
        reservation.apply(event);
    }
    let commune = collectivity(vec![]);
    assert_eq!(
        reservation.check_promotion(&commune, at("2026-12-01T08:00:00Z")),
        Ok(vec![ReservationEvent::Promoted])
    );
    assert_eq!(
        reservation.check_promotion(&commune, at("2026-12-03T11:00:01Z")),
        Err(ReservationError::DeadlinePassed(at("2026-12-03T11:00:00Z"))),
        "after the booking deadline nobody is promoted"
    );
    let mut approving = commune.clone();
    if let Some(unit) = approving.units.get_mut(&MEAL) {
        unit.booking_needs_approval = true;
    }
    assert_eq!(
        reservation.check_promotion(&approving, at("2026-12-01T08:00:00Z")),
        Ok(vec![
            ReservationEvent::Promoted,
            ReservationEvent::BookingAwaitingApproval
        ]),
        "where an agent approves each booking, the promoted one waits for it"
    );
    reservation.apply(ReservationEvent::Promoted);
    assert_eq!(reservation.status, ReservationStatus::Confirmed);
    assert_eq!(
        reservation.check_promotion(&commune, at("2026-12-01T08:00:00Z")),
        Err(ReservationError::NotWaitListed),
        "promoted once, never twice"
    );
    let mut left = Reservation::default();
    for event in [waiting(), vec![ReservationEvent::LeftWaitingList]].concat() {
        left.apply(event);
    }
    assert_eq!(
        left.check_promotion(&commune, at("2026-12-01T08:00:00Z")),
        Err(ReservationError::NotWaitListed)
    );
}

#[test]
fn a_day_the_commune_closes_takes_its_waiting_list_off_too() {
    framework("2026-12-06T08:00:00Z")
        .given(waiting())
        .when(ReservationCommand::CancelByCommune {
            reason: "Grève".into(),
        })
        .then_expect_events(vec![ReservationEvent::ReservationCancelledByCommune {
            reason: "Grève".into(),
        }]);
}

#[test]
fn a_request_in_an_allocated_window_waits_for_the_run_which_places_it_or_lists_it() {
    use crate::allocation::{commitment, Allocation};
    use crate::calendar::DateRange;
    use crate::collectivity::BookingWindow;
    let window = BookingWindow {
        id: Uuid::from_u128(0x3e),
        unit_id: MEAL,
        range: DateRange {
            first: monday(),
            last: monday(),
        },
        opens_at: at("2026-11-30T19:00:00Z"),
        residents_open_at: None,
        allocation: Some(Allocation {
            closes_at: at("2026-12-01T19:00:00Z"),
            criteria: vec![],
            seed_commitment: commitment(b"seed"),
        }),
    };
    let commune = collectivity(vec![CollectivityEvent::BookingWindowSet { window }]);
    let context = |now: &str| BookingContext {
        now: at(now),
        collectivity: Arc::new(commune.clone()),
        family: Arc::new(family(true)),
        overdue_cents: 0,
    };
    let requested = vec![
        ReservationEvent::ReservationRequested {
            slot: slot(),
            origin: Origin::Calendar,
        },
        ReservationEvent::AllocationRequested {
            window_id: Uuid::from_u128(0x3e),
            closes_at: at("2026-12-01T19:00:00Z"),
        },
    ];
    TestFramework::<Reservation>::with(context("2026-12-01T08:00:00Z"))
        .given_no_previous_events()
        .when(book())
        .then_expect_events(requested.clone());
    // Once the window closed, booking is first come, first served again.
    TestFramework::<Reservation>::with(context("2026-12-01T19:00:00Z"))
        .given_no_previous_events()
        .when(book())
        .then_expect_events(booked());
    TestFramework::<Reservation>::with(context("2026-12-01T08:00:00Z"))
        .given(requested.clone())
        .when(book())
        .then_expect_error(ReservationError::AlreadyRequested);
    // Withdrawn before the run.
    TestFramework::<Reservation>::with(context("2026-12-01T08:00:00Z"))
        .given(requested.clone())
        .when(ReservationCommand::Cancel)
        .then_expect_events(vec![ReservationEvent::ReservationCancelled]);
    let mut pending = Reservation::default();
    for event in requested {
        pending.apply(event);
    }
    assert_eq!(pending.status, ReservationStatus::AllocationPending);
    let run = Uuid::from_u128(0x50);
    assert_eq!(
        pending.check_allocation(&commune, run, None),
        Ok(vec![ReservationEvent::PlaceAllocated { run_id: run }])
    );
    assert_eq!(
        pending.check_allocation(&commune, run, Some((3, 2))),
        Ok(vec![ReservationEvent::AllocationWaitListed {
            run_id: run,
            ticket: 3,
            position: 2
        }])
    );
    let mut placed = pending.clone();
    placed.apply(ReservationEvent::PlaceAllocated { run_id: run });
    assert_eq!(placed.status, ReservationStatus::Confirmed);
    assert_eq!(
        placed.check_allocation(&commune, run, None),
        Err(ReservationError::NotBooked)
    );
}
