//! The commune's rules for booking and paying: booking windows, places,
//! allocated windows, tariffs.

use super::*;

#[test]
fn a_booking_window_names_a_unit_of_the_commune_and_lets_residents_in_first_never_last() {
    let at = |s: &str| s.parse::<chrono::DateTime<chrono::Utc>>().unwrap();
    let day = |d| NaiveDate::from_ymd_opt(2027, 1, d).unwrap();
    let window = BookingWindow {
        id: Uuid::from_u128(0x3d),
        unit_id: MEAL,
        range: DateRange {
            first: day(4),
            last: day(29),
        },
        opens_at: at("2026-12-13T19:00:00Z"),
        residents_open_at: Some(at("2026-12-12T19:00:00Z")),
        allocation: None,
    };
    framework()
        .given(configured())
        .when(CollectivityCommand::SetBookingWindow {
            window: window.clone(),
        })
        .then_expect_events(vec![CollectivityEvent::BookingWindowSet {
            window: window.clone(),
        }]);
    // The same again: nothing; moved: the window changes.
    let set = vec![CollectivityEvent::BookingWindowSet {
        window: window.clone(),
    }];
    framework()
        .given([configured(), set.clone()].concat())
        .when(CollectivityCommand::SetBookingWindow {
            window: window.clone(),
        })
        .then_expect_events(vec![]);
    let later = BookingWindow {
        opens_at: at("2026-12-14T19:00:00Z"),
        ..window.clone()
    };
    framework()
        .given([configured(), set].concat())
        .when(CollectivityCommand::SetBookingWindow {
            window: later.clone(),
        })
        .then_expect_events(vec![CollectivityEvent::BookingWindowSet { window: later }]);
    framework()
        .given(configured())
        .when(CollectivityCommand::SetBookingWindow {
            window: BookingWindow {
                residents_open_at: Some(at("2026-12-14T19:00:00Z")),
                ..window.clone()
            },
        })
        .then_expect_error(CollectivityError::ResidentsOpenLater);
    framework()
        .given(configured())
        .when(CollectivityCommand::SetBookingWindow {
            window: BookingWindow {
                unit_id: Uuid::from_u128(0xbad),
                ..window.clone()
            },
        })
        .then_expect_error(CollectivityError::UnknownUnit(Uuid::from_u128(0xbad)));
    framework()
        .given(configured())
        .when(CollectivityCommand::SetBookingWindow {
            window: BookingWindow {
                range: DateRange {
                    first: day(29),
                    last: day(4),
                },
                ..window
            },
        })
        .then_expect_error(CollectivityError::InvalidPeriod(DateRange {
            first: day(29),
            last: day(4),
        }));
}

#[test]
fn places_are_counted_per_unit_with_other_numbers_for_some_dates() {
    let day = |d| NaiveDate::from_ymd_opt(2027, 1, d).unwrap();
    let mut commune = Collectivity::default();
    for event in configured() {
        commune.apply(event);
    }
    assert_eq!(commune.places_on(MEAL, day(6)), None, "nothing set: no limit");
    let set = vec![
        CollectivityEvent::UnitPlacesSet {
            unit_id: MEAL,
            places: Some(60),
        },
        CollectivityEvent::DayPlacesSet {
            unit_id: MEAL,
            date: day(13),
            places: Some(30),
        },
    ];
    for event in set.clone() {
        commune.apply(event);
    }
    assert_eq!(commune.places_on(MEAL, day(6)), Some(60));
    assert_eq!(commune.places_on(MEAL, day(13)), Some(30), "the trip's Wednesday");
    commune.apply(CollectivityEvent::DayPlacesSet {
        unit_id: MEAL,
        date: day(13),
        places: None,
    });
    assert_eq!(commune.places_on(MEAL, day(13)), Some(60), "back to every day's");

    framework()
        .given(configured())
        .when(CollectivityCommand::SetPlaces {
            unit_id: MEAL,
            places: Some(60),
        })
        .then_expect_events(vec![set[0].clone()]);
    // The same number again: nothing.
    framework()
        .given([configured(), set.clone()].concat())
        .when(CollectivityCommand::SetDayPlaces {
            unit_id: MEAL,
            date: day(13),
            places: Some(30),
        })
        .then_expect_events(vec![]);
    framework()
        .given(configured())
        .when(CollectivityCommand::SetPlaces {
            unit_id: Uuid::from_u128(0xbad),
            places: Some(1),
        })
        .then_expect_error(CollectivityError::UnknownUnit(Uuid::from_u128(0xbad)));
    framework()
        .given(configured())
        .when(CollectivityCommand::SetDayPlaces {
            unit_id: MEAL,
            date: day(13),
            places: Some(MAX_PLACES + 1),
        })
        .then_expect_error(CollectivityError::TooManyPlaces);
    let full: Vec<CollectivityEvent> = (0..MAX_PLACE_DATES as u64)
        .map(|n| CollectivityEvent::DayPlacesSet {
            unit_id: MEAL,
            date: day(1) + chrono::Days::new(n),
            places: Some(10),
        })
        .collect();
    framework()
        .given([configured(), full.clone()].concat())
        .when(CollectivityCommand::SetDayPlaces {
            unit_id: MEAL,
            date: day(1) + chrono::Days::new(MAX_PLACE_DATES as u64),
            places: Some(10),
        })
        .then_expect_error(CollectivityError::TooManyPlaceDates);
    // A date already set may change when the list is full.
    framework()
        .given([configured(), full].concat())
        .when(CollectivityCommand::SetDayPlaces {
            unit_id: MEAL,
            date: day(1),
            places: Some(12),
        })
        .then_expect_events(vec![CollectivityEvent::DayPlacesSet {
            unit_id: MEAL,
            date: day(1),
            places: Some(12),
        }]);
}

#[test]
fn an_allocated_window_closes_after_it_opens_and_keeps_its_published_seed() {
    use crate::allocation::{commitment, Allocation, Criterion};
    let at = |s: &str| s.parse::<chrono::DateTime<chrono::Utc>>().unwrap();
    let day = |d| NaiveDate::from_ymd_opt(2027, 1, d).unwrap();
    let window = BookingWindow {
        id: Uuid::from_u128(0x3e),
        unit_id: MEAL,
        range: DateRange {
            first: day(4),
            last: day(29),
        },
        opens_at: at("2026-12-13T19:00:00Z"),
        residents_open_at: None,
        allocation: Some(Allocation {
            closes_at: at("2026-12-20T19:00:00Z"),
            criteria: vec![Criterion::Resident, Criterion::SiblingPlaced],
            seed_commitment: commitment(b"secret"),
        }),
    };
    let set = vec![CollectivityEvent::BookingWindowSet {
        window: window.clone(),
    }];
    framework()
        .given(configured())
        .when(CollectivityCommand::SetBookingWindow {
            window: window.clone(),
        })
        .then_expect_events(set.clone());
    let with = |change: &dyn Fn(&mut Allocation)| {
        let mut changed = window.clone();
        if let Some(allocation) = changed.allocation.as_mut() {
            change(allocation);
        }
        CollectivityCommand::SetBookingWindow { window: changed }
    };
    framework()
        .given(configured())
        .when(with(&|a| a.closes_at = at("2026-12-13T19:00:00Z")))
        .then_expect_error(CollectivityError::AllocationClosesBeforeOpening);
    framework()
        .given(configured())
        .when(with(&|a| {
            a.criteria = vec![Criterion::Resident, Criterion::Resident]
        }))
        .then_expect_error(CollectivityError::DuplicateCriterion);
    framework()
        .given(configured())
        .when(with(&|a| a.seed_commitment = "not hex".into()))
        .then_expect_error(CollectivityError::InvalidSeedCommitment);
    // Published, the seed never changes; the closing may.
    framework()
        .given([configured(), set.clone()].concat())
        .when(with(&|a| a.seed_commitment = commitment(b"another")))
        .then_expect_error(CollectivityError::InvalidSeedCommitment);
    let mut later = window.clone();
    if let Some(allocation) = later.allocation.as_mut() {
        allocation.closes_at = at("2026-12-21T19:00:00Z");
    }
    framework()
        .given([configured(), set].concat())
        .when(CollectivityCommand::SetBookingWindow {
            window: later.clone(),
        })
        .then_expect_events(vec![CollectivityEvent::BookingWindowSet {
            window: later.clone(),
        }]);
    let mut commune = Collectivity::default();
    for event in configured() {
        commune.apply(event);
    }
    commune.apply(CollectivityEvent::BookingWindowSet { window: later });
    assert!(commune
        .collecting(MEAL, day(6), at("2026-12-21T18:59:59Z"))
        .is_some());
    assert!(
        commune
            .collecting(MEAL, day(6), at("2026-12-21T19:00:00Z"))
            .is_none(),
        "closed"
    );
    assert!(
        commune
            .collecting(MEAL, day(30), at("2026-12-14T00:00:00Z"))
            .is_none(),
        "outside"
    );
}

#[test]
fn a_tariff_names_a_unit_of_the_commune_and_the_last_set_applies() {
    let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
    let tariff = Tariff {
        id: Uuid::from_u128(0x7a),
        unit_id: MEAL,
        valid_from: day(2026, 9, 1),
        valid_until: None,
        brackets: vec![
            Bracket {
                up_to: Some(700),
                price_cents: 250,
            },
            Bracket {
                up_to: None,
                price_cents: 480,
            },
        ],
        sibling_reductions: vec![],
        unjustified_absence_percent: 100,
        unexpected_presence_penalty_cents: 0,
    };
    let set = vec![CollectivityEvent::TariffSet {
        tariff: tariff.clone(),
    }];
    framework()
        .given(configured())
        .when(CollectivityCommand::SetTariff {
            tariff: tariff.clone(),
        })
        .then_expect_events(set.clone());
    framework()
        .given([configured(), set.clone()].concat())
        .when(CollectivityCommand::SetTariff {
            tariff: tariff.clone(),
        })
        .then_expect_events(vec![]);
    framework()
        .given(configured())
        .when(CollectivityCommand::SetTariff {
            tariff: Tariff {
                unit_id: Uuid::from_u128(0xbad),
                ..tariff.clone()
            },
        })
        .then_expect_error(CollectivityError::UnknownUnit(Uuid::from_u128(0xbad)));
    framework()
        .given(configured())
        .when(CollectivityCommand::SetTariff {
            tariff: Tariff {
                brackets: vec![],
                ..tariff.clone()
            },
        })
        .then_expect_error(CollectivityError::InvalidTariff);
    // From January, a new tariff: it applies from then on, the first before.
    let january = Tariff {
        id: Uuid::from_u128(0x7b),
        valid_from: day(2027, 1, 1),
        brackets: vec![Bracket {
            up_to: None,
            price_cents: 500,
        }],
        ..tariff.clone()
    };
    let mut commune = Collectivity::default();
    for event in configured() {
        commune.apply(event);
    }
    commune.apply(CollectivityEvent::TariffSet {
        tariff: tariff.clone(),
    });
    commune.apply(CollectivityEvent::TariffSet { tariff: january });
    assert_eq!(
        commune.tariff_on(MEAL, day(2026, 12, 14)).map(|t| t.id),
        Some(tariff.id)
    );
    assert_eq!(
        commune.tariff_on(MEAL, day(2027, 1, 4)).map(|t| t.id),
        Some(Uuid::from_u128(0x7b))
    );
    assert_eq!(
        commune.tariff_on(MEAL, day(2026, 8, 31)),
        None,
        "before any tariff"
    );
}

#[test]
fn payment_rules_take_at_least_a_cent_online_and_bounded_amounts() {
    let rules = |minimum, debt| CollectivityCommand::SetPaymentRules {
        rules: PaymentRules {
            minimum_online_cents: minimum,
            debt_limit_cents: debt,
        },
    };
    framework()
        .given(configured())
        .when(rules(150, Some(5_000)))
        .then_expect_events(vec![CollectivityEvent::PaymentRulesSet {
            rules: PaymentRules {
                minimum_online_cents: 150,
                debt_limit_cents: Some(5_000),
            },
        }]);
    // The default (1 €, no debt rule) set again: nothing.
    framework()
        .given(configured())
        .when(rules(100, None))
        .then_expect_events(vec![]);
    for (minimum, debt) in [(0, None), (-1, None), (MAX_RULE_CENTS + 1, None), (100, Some(-1))] {
        framework()
            .given(configured())
            .when(rules(minimum, debt))
            .then_expect_error(CollectivityError::InvalidPaymentRules);
    }
}
