//! Given/when/then tests of a day's places.

use super::*;
use cqrs_es::test::TestFramework;

const UNIT: Uuid = Uuid::from_u128(0x417);

fn date() -> NaiveDate {
    NaiveDate::from_ymd_opt(2027, 1, 13).unwrap()
}

fn booking(n: u128) -> Uuid {
    Uuid::from_u128(0xb00 + n)
}

fn take(n: u128, places: u32) -> PlacesCommand {
    PlacesCommand::Take {
        reservation_id: booking(n),
        unit_id: UNIT,
        date: date(),
        places,
    }
}

fn taken(n: u128, holders: u32, places: u32) -> PlacesEvent {
    PlacesEvent::PlaceTaken {
        reservation_id: booking(n),
        unit_id: UNIT,
        date: date(),
        holders,
        places,
    }
}

fn joined(n: u128, ticket: u32, position: u32) -> PlacesEvent {
    PlacesEvent::WaitListJoined {
        reservation_id: booking(n),
        unit_id: UNIT,
        date: date(),
        ticket,
        position,
    }
}

fn framework() -> TestFramework<Places> {
    TestFramework::with(())
}

#[test]
fn the_last_place_goes_to_the_first_and_the_next_waits_in_order() {
    framework()
        .given(vec![taken(1, 1, 2)])
        .when(take(2, 2))
        .then_expect_events(vec![taken(2, 2, 2)]);
    framework()
        .given(vec![taken(1, 1, 2), taken(2, 2, 2)])
        .when(take(3, 2))
        .then_expect_events(vec![joined(3, 1, 1)]);
    framework()
        .given(vec![taken(1, 1, 2), taken(2, 2, 2), joined(3, 1, 1)])
        .when(take(4, 2))
        .then_expect_events(vec![joined(4, 2, 2)]);
}

#[test]
fn a_place_freed_while_others_wait_is_theirs_not_the_next_bookings() {
    let history = vec![
        taken(1, 1, 1),
        joined(2, 1, 1),
        PlacesEvent::PlaceFreed {
            reservation_id: booking(1),
        },
    ];
    framework()
        .given(history.clone())
        .when(take(3, 1))
        .then_expect_events(vec![joined(3, 2, 2)]);
    framework()
        .given(history.clone())
        .when(PlacesCommand::Promote {
            reservation_id: booking(2),
            places: Some(1),
        })
        .then_expect_events(vec![PlacesEvent::Promoted {
            reservation_id: booking(2),
            holders: 1,
            places: Some(1),
        }]);
    // Only the first, and only into a free place.
    framework()
        .given([history.clone(), vec![joined(3, 2, 2)]].concat())
        .when(PlacesCommand::Promote {
            reservation_id: booking(3),
            places: Some(1),
        })
        .then_expect_error(PlacesError::NotNext(booking(3)));
    framework()
        .given(vec![taken(1, 1, 1), joined(2, 1, 1)])
        .when(PlacesCommand::Promote {
            reservation_id: booking(2),
            places: Some(1),
        })
        .then_expect_error(PlacesError::NotNext(booking(2)));
}

#[test]
fn reconciling_lets_go_only_of_what_the_reservation_no_longer_holds_once() {
    let history = vec![taken(1, 1, 1), joined(2, 1, 1)];
    framework()
        .given(history.clone())
        .when(PlacesCommand::Reconcile {
            reservation_id: booking(1),
            holds: true,
            waits: false,
        })
        .then_expect_events(vec![]);
    framework()
        .given(history.clone())
        .when(PlacesCommand::Reconcile {
            reservation_id: booking(1),
            holds: false,
            waits: false,
        })
        .then_expect_events(vec![PlacesEvent::PlaceFreed {
            reservation_id: booking(1),
        }]);
    framework()
        .given(history.clone())
        .when(PlacesCommand::Reconcile {
            reservation_id: booking(2),
            holds: false,
            waits: false,
        })
        .then_expect_events(vec![PlacesEvent::WaitListLeft {
            reservation_id: booking(2),
        }]);
    // Already let go: nothing more.
    framework()
        .given(
            [
                history,
                vec![PlacesEvent::WaitListLeft {
                    reservation_id: booking(2),
                }],
            ]
            .concat(),
        )
        .when(PlacesCommand::Reconcile {
            reservation_id: booking(2),
            holds: false,
            waits: false,
        })
        .then_expect_events(vec![]);
}

#[test]
fn a_booking_cancelled_and_booked_again_before_it_was_let_go_goes_to_the_back() {
    framework()
        .given(vec![taken(1, 1, 1), joined(2, 1, 1)])
        .when(take(1, 1))
        .then_expect_events(vec![
            PlacesEvent::PlaceFreed {
                reservation_id: booking(1),
            },
            joined(1, 2, 2),
        ]);
}

#[test]
fn positions_follow_the_tickets_of_those_still_waiting() {
    let mut places = Places::default();
    for event in [taken(1, 1, 1), joined(2, 1, 1), joined(3, 2, 2), joined(4, 3, 3)] {
        places.apply(event);
    }
    places.apply(PlacesEvent::WaitListLeft {
        reservation_id: booking(2),
    });
    assert_eq!(places.position(booking(3)), Some(1));
    assert_eq!(places.position(booking(4)), Some(2));
    assert_eq!(places.next(Some(1)), None, "no place is free");
    assert_eq!(places.next(Some(2)), Some(booking(3)));
    assert_eq!(places.next(None), Some(booking(3)), "no limit any more");
}

#[test]
fn a_full_waiting_list_refuses_one_more() {
    let mut history = vec![taken(0, 1, 1)];
    history.extend((1..=MAX_WAITING as u128).map(|n| joined(n, n as u32, n as u32)));
    framework()
        .given(history)
        .when(take(MAX_WAITING as u128 + 1, 1))
        .then_expect_error(PlacesError::WaitingListFull);
}

#[test]
fn an_allocation_gives_the_free_places_in_drawn_order_once_and_closes_collection() {
    const WINDOW: Uuid = Uuid::from_u128(0x3e);
    let collect = |n: u128| PlacesCommand::Collect {
        reservation_id: booking(n),
        unit_id: UNIT,
        date: date(),
        window_id: WINDOW,
    };
    let collected = |n: u128| PlacesEvent::RequestCollected {
        reservation_id: booking(n),
        unit_id: UNIT,
        date: date(),
        window_id: WINDOW,
    };
    framework()
        .given(vec![collected(1)])
        .when(collect(2))
        .then_expect_events(vec![collected(2)]);
    framework()
        .given(vec![collected(1)])
        .when(collect(1))
        .then_expect_events(vec![]);
    let requests: Vec<Request> = (1..=4)
        .map(|n| Request {
            reservation_id: booking(n),
            family_id: Uuid::from_u128(n),
            met: vec![],
        })
        .collect();
    let allocate = PlacesCommand::Allocate {
        run_id: Uuid::from_u128(0x50),
        window_id: WINDOW,
        unit_id: UNIT,
        date: date(),
        seed: b"seed".to_vec(),
        criteria: vec![],
        places: Some(3),
        requests: requests.clone(),
    };
    let order = draw(b"seed", &[], &requests);
    let run = PlacesEvent::AllocationRun {
        run_id: Uuid::from_u128(0x50),
        window_id: WINDOW,
        unit_id: UNIT,
        date: date(),
        seed: seed_to_hex(b"seed"),
        criteria: vec![],
        places: Some(3),
        requests,
        order: order.clone(),
        placed: 2,
        first_ticket: 1,
    };
    let history: Vec<PlacesEvent> = vec![taken(9, 1, 3)]
        .into_iter()
        .chain((1..=4).map(collected))
        .collect();
    framework()
        .given(history.clone())
        .when(allocate.clone())
        .then_expect_events(vec![run.clone()]);
    let ran = [history, vec![run]].concat();
    // Run once; no request collected after it.
    framework()
        .given(ran.clone())
        .when(allocate)
        .then_expect_events(vec![]);
    framework()
        .given(ran.clone())
        .when(collect(5))
        .then_expect_error(PlacesError::AllocationClosed);
    let mut places = Places::default();
    for event in ran {
        places.apply(event);
    }
    assert_eq!(places.holders.len(), 3);
    assert!(places.holders.contains(&order[0]) && places.holders.contains(&order[1]));
    assert_eq!(places.position(order[2]), Some(1));
    assert_eq!(places.position(order[3]), Some(2));
    assert!(places.collected.is_empty());
}

#[test]
fn days_and_units_have_streams_of_their_own() {
    let other = NaiveDate::from_ymd_opt(2027, 1, 20).unwrap();
    assert_eq!(places_id(UNIT, date()), places_id(UNIT, date()));
    assert_ne!(places_id(UNIT, date()), places_id(UNIT, other));
    assert_ne!(places_id(UNIT, date()), places_id(Uuid::from_u128(0x418), date()));
}
