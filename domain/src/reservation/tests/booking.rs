//! Booking a day, cancelling it, an agent's decisions, the commune's
//! closures and booking windows.

use super::*;

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
            origin: Origin::Calendar,
        })
        .then_expect_error(ReservationError::UnitClosed {
            date: wednesday,
            reason: ClosedReason::ClosedWeekday(Weekday::Wed),
        });
}

#[test]
fn it_refuses_a_booking_on_a_public_holiday() {
    // Ascension Thursday 2027, in the calendar published for 2026-2027.
    let ascension = NaiveDate::from_ymd_opt(2027, 5, 6).unwrap();
    framework("2026-12-01T08:00:00Z")
        .given_no_previous_events()
        .when(ReservationCommand::Request {
            child_id: LOUISE,
            unit_id: MEAL,
            date: ascension,
            origin: Origin::Calendar,
        })
        .then_expect_error(ReservationError::UnitClosed {
            date: ascension,
            reason: ClosedReason::PublicHoliday,
        });
}

#[test]
fn it_refuses_a_booking_in_a_school_year_whose_calendar_is_not_published() {
    let context = BookingContext {
        collectivity: Arc::new({
            let mut collectivity = Collectivity::default();
            for event in crate::collectivity::tests::unpublished() {
                collectivity.apply(event);
            }
            collectivity
        }),
        ..context_at("2026-12-01T08:00:00Z")
    };
    TestFramework::<Reservation>::with(context)
        .given_no_previous_events()
        .when(book())
        .then_expect_error(ReservationError::UnitClosed {
            date: monday(),
            reason: ClosedReason::CalendarNotPublished(crate::calendar::SchoolYear(2026)),
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
            origin: Origin::Calendar,
        })
        .then_expect_error(ReservationError::UnknownUnit(stranger));
    framework("2026-12-01T08:00:00Z")
        .given_no_previous_events()
        .when(ReservationCommand::Request {
            child_id: stranger,
            unit_id: MEAL,
            date: monday(),
            origin: Origin::Calendar,
        })
        .then_expect_error(ReservationError::UnknownChild(stranger));
}

fn prepaid_context(tariff: bool) -> BookingContext {
    let mut unit = meal();
    unit.id = Uuid::from_u128(0x0e2);
    unit.billing = BillingMode::Prepaid;
    unit.booking_needs_approval = true;
    let mut events = vec![CollectivityEvent::UnitAdded { unit }];
    if tariff {
        events.push(CollectivityEvent::TariffSet {
            tariff: crate::collectivity::Tariff {
                id: Uuid::from_u128(0x7a),
                unit_id: Uuid::from_u128(0x0e2),
                valid_from: monday() - chrono::Duration::days(30),
                valid_until: None,
                brackets: vec![crate::collectivity::Bracket {
                    up_to: None,
                    price_cents: 900,
                }],
                sibling_reductions: vec![],
                unjustified_absence_percent: 100,
                unexpected_presence_penalty_cents: 0,
            },
        });
    }
    BookingContext {
        collectivity: Arc::new(collectivity(events)),
        ..context_at("2026-12-01T08:00:00Z")
    }
}

fn book_prepaid() -> ReservationCommand {
    ReservationCommand::Request {
        child_id: LOUISE,
        unit_id: Uuid::from_u128(0x0e2),
        date: monday(),
        origin: Origin::Calendar,
    }
}

#[test]
fn a_prepaid_day_without_a_tariff_cannot_be_booked() {
    TestFramework::<Reservation>::with(prepaid_context(false))
        .given_no_previous_events()
        .when(book_prepaid())
        .then_expect_error(ReservationError::PrepaidNotAvailable);
}

#[test]
fn a_prepaid_booking_awaits_its_payment_then_is_confirmed_or_released() {
    let slot = Slot {
        unit_id: Uuid::from_u128(0x0e2),
        ..slot()
    };
    // Confirmed by the payment, not by an agent's approval.
    TestFramework::<Reservation>::with(prepaid_context(true))
        .given_no_previous_events()
        .when(book_prepaid())
        .then_expect_events(vec![
            ReservationEvent::ReservationRequested {
                slot,
                origin: Origin::Calendar,
            },
            ReservationEvent::PaymentAwaited,
        ]);
    let awaiting = vec![
        ReservationEvent::ReservationRequested {
            slot,
            origin: Origin::Calendar,
        },
        ReservationEvent::PaymentAwaited,
    ];
    let invoice_id = Uuid::from_u128(0x1f);
    TestFramework::<Reservation>::with(prepaid_context(true))
        .given(awaiting.clone())
        .when(ReservationCommand::ConfirmPayment { invoice_id })
        .then_expect_events(vec![ReservationEvent::PrepaymentReceived { invoice_id }]);
    TestFramework::<Reservation>::with(prepaid_context(true))
        .given(awaiting.clone())
        .when(ReservationCommand::Release)
        .then_expect_events(vec![ReservationEvent::Released]);
    // Not cancelled by the parent while it awaits: paid, or let lapse.
    TestFramework::<Reservation>::with(prepaid_context(true))
        .given(awaiting.clone())
        .when(ReservationCommand::Cancel)
        .then_expect_error(ReservationError::AwaitingPayment);
    // Released: the day may be booked again; paid once only.
    let released = [awaiting, vec![ReservationEvent::Released]].concat();
    TestFramework::<Reservation>::with(prepaid_context(true))
        .given(released.clone())
        .when(ReservationCommand::ConfirmPayment { invoice_id })
        .then_expect_error(ReservationError::NotAwaitingPayment);
    TestFramework::<Reservation>::with(prepaid_context(true))
        .given(released)
        .when(book_prepaid())
        .then_expect_events(vec![
            ReservationEvent::ReservationRequested {
                slot,
                origin: Origin::Calendar,
            },
            ReservationEvent::PaymentAwaited,
        ]);
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
            origin: Origin::Calendar,
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

#[test]
fn the_commune_cancels_a_booked_day_it_closed_whatever_the_deadline() {
    let close = || ReservationCommand::CancelByCommune {
        reason: "Grève".into(),
    };
    // The day itself: long past every deadline.
    framework("2026-12-07T11:00:00Z")
        .given(booked())
        .when(close())
        .then_expect_events(vec![ReservationEvent::ReservationCancelledByCommune {
            reason: "Grève".into(),
        }]);
    let mut pending = booked();
    pending.push(ReservationEvent::CancellationRequested);
    framework("2026-12-01T08:00:00Z")
        .given(pending)
        .when(close())
        .then_expect_events(vec![ReservationEvent::ReservationCancelledByCommune {
            reason: "Grève".into(),
        }]);
    framework("2026-12-01T08:00:00Z")
        .given_no_previous_events()
        .when(close())
        .then_expect_error(ReservationError::NotBooked);
    let mut cancelled = booked();
    cancelled.push(ReservationEvent::ReservationCancelledByCommune {
        reason: "Grève".into(),
    });
    framework("2026-12-01T08:00:00Z")
        .given(cancelled)
        .when(close())
        .then_expect_error(ReservationError::AlreadyCancelled);
    framework("2026-12-01T08:00:00Z")
        .given(booked())
        .when(ReservationCommand::CancelByCommune { reason: " ".into() })
        .then_expect_error(ReservationError::EmptyReason);
}

#[test]
fn a_booking_in_a_unit_that_needs_approval_waits_for_an_agent() {
    let mut collectivity = collectivity(vec![]);
    if let Some(unit) = collectivity.units.get_mut(&MEAL) {
        unit.booking_needs_approval = true;
    }
    let context = BookingContext {
        collectivity: Arc::new(collectivity),
        ..context_at("2026-12-01T08:00:00Z")
    };
    TestFramework::<Reservation>::with(context)
        .given_no_previous_events()
        .when(book())
        .then_expect_events(vec![
            ReservationEvent::ReservationRequested {
                slot: slot(),
                origin: Origin::Calendar,
            },
            ReservationEvent::BookingAwaitingApproval,
        ]);
    let waiting = vec![
        ReservationEvent::ReservationRequested {
            slot: slot(),
            origin: Origin::Calendar,
        },
        ReservationEvent::BookingAwaitingApproval,
    ];
    framework("2026-12-01T08:00:00Z")
        .given(waiting.clone())
        .when(ReservationCommand::Approve { comment: None })
        .then_expect_events(vec![ReservationEvent::BookingApproved { comment: None }]);
    framework("2026-12-01T08:00:00Z")
        .given(waiting.clone())
        .when(ReservationCommand::Reject {
            reason: "Complet ce jour-là".into(),
        })
        .then_expect_events(vec![ReservationEvent::BookingRejected {
            reason: "Complet ce jour-là".into(),
        }]);
    framework("2026-12-01T08:00:00Z")
        .given(waiting.clone())
        .when(book())
        .then_expect_error(ReservationError::AlreadyBooked);
    // The parent withdraws the request: nothing to approve.
    framework("2026-12-01T08:00:00Z")
        .given(waiting)
        .when(ReservationCommand::Cancel)
        .then_expect_events(vec![ReservationEvent::ReservationCancelled]);
    // Rejected, the day can be asked again.
    framework("2026-12-01T08:00:00Z")
        .given(vec![
            ReservationEvent::ReservationRequested {
                slot: slot(),
                origin: Origin::Calendar,
            },
            ReservationEvent::BookingAwaitingApproval,
            ReservationEvent::BookingRejected {
                reason: "Complet".into(),
            },
        ])
        .when(book())
        .then_expect_events(booked());
}
#[test]
fn a_day_cannot_be_booked_before_its_window_opens_and_residents_may_book_first() {
    // Booking for December opens on 1 December 2026 at 20:00 Paris (19:00
    // UTC), for residents at 18:00 Paris.
    let window = crate::collectivity::BookingWindow {
        id: Uuid::from_u128(0x3d),
        unit_id: MEAL,
        range: crate::calendar::DateRange {
            first: monday(),
            last: monday(),
        },
        opens_at: at("2026-12-01T19:00:00Z"),
        residents_open_at: Some(at("2026-12-01T17:00:00Z")),
        allocation: None,
    };
    let context = |now: &str, resident: bool| {
        let mut family = family(true);
        if resident {
            family.residences.insert(COMMUNE);
        }
        BookingContext {
            now: at(now),
            collectivity: Arc::new(collectivity(vec![CollectivityEvent::BookingWindowSet {
                window: window.clone(),
            }])),
            family: Arc::new(family),
            overdue_cents: 0,
        }
    };
    // One second early: refused, saying when.
    TestFramework::<Reservation>::with(context("2026-12-01T18:59:59Z", false))
        .given_no_previous_events()
        .when(book())
        .then_expect_error(ReservationError::BookingNotOpen(at("2026-12-01T19:00:00Z")));
    TestFramework::<Reservation>::with(context("2026-12-01T19:00:00Z", false))
        .given_no_previous_events()
        .when(book())
        .then_expect_events(booked());
    // A resident, two hours earlier.
    TestFramework::<Reservation>::with(context("2026-12-01T17:00:00Z", true))
        .given_no_previous_events()
        .when(book())
        .then_expect_events(booked());
    TestFramework::<Reservation>::with(context("2026-12-01T16:59:00Z", true))
        .given_no_previous_events()
        .when(book())
        .then_expect_error(ReservationError::BookingNotOpen(at("2026-12-01T17:00:00Z")));
    // A day the window does not cover opens as before.
    let mut elsewhere = context("2026-12-01T08:00:00Z", false);
    Arc::make_mut(&mut elsewhere.collectivity).booking_windows[0]
        .range
        .first = monday().succ_opt().unwrap();
    Arc::make_mut(&mut elsewhere.collectivity).booking_windows[0]
        .range
        .last = monday().succ_opt().unwrap();
    TestFramework::<Reservation>::with(elsewhere)
        .given_no_previous_events()
        .when(book())
        .then_expect_events(booked());
}

#[test]
fn a_family_owing_past_due_above_the_communes_limit_cannot_book_and_is_told_how_much() {
    let mut commune = collectivity(vec![]);
    commune.payment_rules.debt_limit_cents = Some(10_000);
    let owing = |owed| BookingContext {
        collectivity: Arc::new(commune.clone()),
        overdue_cents: owed,
        ..context_at("2026-12-01T08:00:00Z")
    };
    TestFramework::<Reservation>::with(owing(10_001))
        .given_no_previous_events()
        .when(book())
        .then_expect_error(ReservationError::DebtLimit {
            owed: 10_001,
            limit: 10_000,
        });
    // At the limit, or without the rule: booked.
    TestFramework::<Reservation>::with(owing(10_000))
        .given_no_previous_events()
        .when(book())
        .then_expect_events(booked());
    TestFramework::<Reservation>::with(BookingContext {
        overdue_cents: 1_000_000,
        ..context_at("2026-12-01T08:00:00Z")
    })
    .given_no_previous_events()
    .when(book())
    .then_expect_events(booked());
}
