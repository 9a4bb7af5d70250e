//! Given/when/then tests of the commune: the fixtures and its set-up here
//! (services, units, the school calendar, closures, absences); what it
//! sets about booking and paying in `booking_rules` (windows, places,
//! allocations, tariffs).

use super::*;
use crate::calendar::{public_holidays_of, school_holidays, ClosedReason, OpenDuring};
use chrono::{NaiveDate, NaiveTime, Weekday};
use cqrs_es::test::TestFramework;

mod booking_rules;

pub const COMMUNE: Uuid = Uuid::from_u128(0x0c0);
pub const CANTEEN: Uuid = Uuid::from_u128(0x5e1);
pub const MEAL: Uuid = Uuid::from_u128(0x0e1);

pub fn canteen() -> Service {
    Service {
        id: CANTEEN,
        name: "Cantine".into(),
        kind: ServiceKind::Canteen,
    }
}

/// A canteen meal, term time, bookable until J-2 at noon (weekends not
/// counted), cancellable until J-1 at 10:00.
pub fn meal() -> Unit {
    Unit {
        id: MEAL,
        service_id: CANTEEN,
        name: "Repas".into(),
        opening: OpeningDays {
            weekdays: vec![Weekday::Mon, Weekday::Tue, Weekday::Thu, Weekday::Fri],
            during: OpenDuring::SchoolTerms,
        },
        billing: BillingMode::Monthly,
        booking_deadline: DeadlineRule::DaysBefore {
            days: 2,
            at: NaiveTime::from_hms_opt(12, 0, 0).unwrap(),
            skip_weekends: true,
            skip_holidays: true,
        },
        cancellation_deadline: DeadlineRule::DaysBefore {
            days: 1,
            at: NaiveTime::from_hms_opt(10, 0, 0).unwrap(),
            skip_weekends: true,
            skip_holidays: true,
        },
        cancellation_needs_approval: true,
        booking_needs_approval: false,
    }
}

/// A commune with its canteen, no calendar yet.
pub fn unpublished() -> Vec<CollectivityEvent> {
    vec![
        CollectivityEvent::CollectivityCreated {
            id: COMMUNE,
            name: "Dammartin-sur-Tigeaux".into(),
        },
        CollectivityEvent::ServiceAdded { service: canteen() },
        CollectivityEvent::UnitAdded { unit: meal() },
    ]
}

/// The published calendar of a zone C commune of Seine-et-Marne.
pub fn published(year: i32) -> CollectivityEvent {
    let year = SchoolYear(year);
    CollectivityEvent::SchoolYearPublished {
        year,
        calendar: PublishedYear {
            zone: Zone::C,
            public_holidays: public_holidays_of(year, false),
            school_holidays: school_holidays(Zone::C, year).unwrap(),
        },
    }
}

/// A commune with its canteen and the calendars of 2026-2027 and
/// 2027-2028 published.
pub fn configured() -> Vec<CollectivityEvent> {
    let mut events = unpublished();
    events.push(CollectivityEvent::SchoolZoneSet {
        zone: Zone::C,
        department: "77".into(),
    });
    events.push(published(2026));
    events.push(published(2027));
    events
}

fn framework() -> TestFramework<Collectivity> {
    TestFramework::with(())
}

#[test]
fn a_commune_is_created_with_a_trimmed_name() {
    framework()
        .given_no_previous_events()
        .when(CollectivityCommand::Create {
            id: COMMUNE,
            name: "  Dammartin-sur-Tigeaux ".into(),
        })
        .then_expect_events(vec![CollectivityEvent::CollectivityCreated {
            id: COMMUNE,
            name: "Dammartin-sur-Tigeaux".into(),
        }]);
}

#[test]
fn it_refuses_to_create_a_commune_twice() {
    framework()
        .given(configured())
        .when(CollectivityCommand::Create {
            id: COMMUNE,
            name: "Autre".into(),
        })
        .then_expect_error(CollectivityError::AlreadyExists);
}

#[test]
fn it_refuses_to_configure_a_commune_that_does_not_exist() {
    framework()
        .given_no_previous_events()
        .when(CollectivityCommand::AddService { service: canteen() })
        .then_expect_error(CollectivityError::NotFound);
}

#[test]
fn it_refuses_a_unit_of_an_unknown_service() {
    let mut unit = meal();
    unit.id = Uuid::from_u128(7);
    unit.service_id = Uuid::from_u128(8);
    framework()
        .given(configured())
        .when(CollectivityCommand::AddUnit { unit })
        .then_expect_error(CollectivityError::UnknownService(Uuid::from_u128(8)));
}

#[test]
fn it_refuses_a_unit_that_never_opens() {
    let mut unit = meal();
    unit.id = Uuid::from_u128(7);
    unit.opening.weekdays.clear();
    framework()
        .given(configured())
        .when(CollectivityCommand::AddUnit { unit })
        .then_expect_error(CollectivityError::NoOpeningDay);
}

#[test]
fn a_school_year_is_published_from_the_zone_and_the_computed_holidays_once() {
    framework()
        .given(unpublished())
        .when(CollectivityCommand::PublishSchoolYear {
            year: SchoolYear(2026),
        })
        .then_expect_error(CollectivityError::NoSchoolZone);
    let mut zoned = unpublished();
    zoned.push(CollectivityEvent::SchoolZoneSet {
        zone: Zone::C,
        department: "77".into(),
    });
    framework()
        .given(zoned.clone())
        .when(CollectivityCommand::PublishSchoolYear {
            year: SchoolYear(2026),
        })
        .then_expect_events(vec![published(2026)]);
    let mut twice = zoned.clone();
    twice.push(published(2026));
    framework()
        .given(twice)
        .when(CollectivityCommand::PublishSchoolYear {
            year: SchoolYear(2026),
        })
        .then_expect_events(vec![]);
    framework()
        .given(zoned)
        .when(CollectivityCommand::PublishSchoolYear {
            year: SchoolYear(2028),
        })
        .then_expect_error(CollectivityError::CalendarNotAvailable(SchoolYear(2028)));
}

#[test]
fn a_published_year_is_never_published_again_otherwise() {
    let mut moved = configured();
    moved.push(CollectivityEvent::SchoolZoneSet {
        zone: Zone::A,
        department: "77".into(),
    });
    framework()
        .given(moved)
        .when(CollectivityCommand::PublishSchoolYear {
            year: SchoolYear(2026),
        })
        .then_expect_error(CollectivityError::AlreadyPublished(SchoolYear(2026)));
}

#[tokio::test]
async fn a_commune_of_alsace_moselle_gets_its_two_more_public_holidays() {
    let mut collectivity = Collectivity::default();
    for event in unpublished() {
        collectivity.apply(event);
    }
    for command in [
        CollectivityCommand::SetSchoolZone {
            zone: Zone::B,
            department: "67".into(),
        },
        CollectivityCommand::PublishSchoolYear {
            year: SchoolYear(2026),
        },
    ] {
        let sink = cqrs_es::event_sink::EventSink::default();
        collectivity.handle(command, &(), &sink).await.unwrap();
        for event in sink.collect().await {
            collectivity.apply(event);
        }
    }
    let good_friday = NaiveDate::from_ymd_opt(2027, 3, 26).unwrap();
    assert_eq!(
        collectivity.calendar.public_holiday(good_friday),
        Some("Vendredi saint")
    );
    // Zone B's winter holidays 2027.
    assert!(collectivity
        .calendar
        .is_school_holiday(NaiveDate::from_ymd_opt(2027, 3, 1).unwrap()));
    assert!(!collectivity
        .calendar
        .is_school_holiday(NaiveDate::from_ymd_opt(2027, 2, 8).unwrap()));
}

#[test]
fn a_zone_needs_a_real_departement() {
    for department in ["20", "00", "96", "977", "7", "ABC", ""] {
        framework()
            .given(unpublished())
            .when(CollectivityCommand::SetSchoolZone {
                zone: Zone::C,
                department: department.into(),
            })
            .then_expect_error(CollectivityError::UnknownDepartment(department.into()));
    }
    framework()
        .given(unpublished())
        .when(CollectivityCommand::SetSchoolZone {
            zone: Zone::C,
            department: "2a ".into(),
        })
        .then_expect_events(vec![CollectivityEvent::SchoolZoneSet {
            zone: Zone::C,
            department: "2A".into(),
        }]);
}

fn strike(first: u32, last: u32) -> Closure {
    Closure {
        id: Uuid::from_u128(0xc105e),
        range: DateRange {
            first: NaiveDate::from_ymd_opt(2027, 3, first).unwrap(),
            last: NaiveDate::from_ymd_opt(2027, 3, last).unwrap(),
        },
        unit_id: Some(MEAL),
        reason: "Grève du personnel de restauration".into(),
    }
}

#[test]
fn a_closure_is_checked_and_sent_twice_is_one() {
    framework()
        .given(configured())
        .when(CollectivityCommand::AddClosure {
            closure: strike(9, 10),
        })
        .then_expect_events(vec![CollectivityEvent::ClosureAdded {
            closure: strike(9, 10),
        }]);
    let mut closed = configured();
    closed.push(CollectivityEvent::ClosureAdded {
        closure: strike(9, 10),
    });
    framework()
        .given(closed.clone())
        .when(CollectivityCommand::AddClosure {
            closure: strike(9, 10),
        })
        .then_expect_events(vec![]);
    framework()
        .given(closed)
        .when(CollectivityCommand::AddClosure {
            closure: strike(9, 11),
        })
        .then_expect_error(CollectivityError::DuplicateClosure(Uuid::from_u128(0xc105e)));
    let reversed = strike(10, 9);
    framework()
        .given(configured())
        .when(CollectivityCommand::AddClosure {
            closure: reversed.clone(),
        })
        .then_expect_error(CollectivityError::InvalidPeriod(reversed.range));
    let mut elsewhere = strike(9, 9);
    elsewhere.unit_id = Some(Uuid::from_u128(99));
    framework()
        .given(configured())
        .when(CollectivityCommand::AddClosure { closure: elsewhere })
        .then_expect_error(CollectivityError::UnknownUnit(Uuid::from_u128(99)));
    let mut long = strike(9, 9);
    long.range.first = NaiveDate::from_ymd_opt(2026, 1, 1).unwrap();
    framework()
        .given(configured())
        .when(CollectivityCommand::AddClosure { closure: long })
        .then_expect_error(CollectivityError::ClosureTooLong);
    let mut silent = strike(9, 9);
    silent.reason = "  ".into();
    framework()
        .given(configured())
        .when(CollectivityCommand::AddClosure { closure: silent })
        .then_expect_error(CollectivityError::InvalidText(
            text::required("a closure's reason", "  ", text::NAME).unwrap_err(),
        ));
}

#[test]
fn a_closed_day_and_an_unpublished_year_say_why() {
    let mut c = Collectivity::default();
    for event in configured() {
        c.apply(event);
    }
    c.apply(CollectivityEvent::ClosureAdded {
        closure: strike(9, 10),
    });
    let unit = meal();
    let day = |m, d| NaiveDate::from_ymd_opt(2027, m, d).unwrap();
    assert_eq!(
        unit.opening.check_unit(MEAL, day(3, 9), &c.calendar),
        Err(ClosedReason::Closed("Grève du personnel de restauration".into()))
    );
    assert_eq!(unit.opening.check_unit(MEAL, day(3, 8), &c.calendar), Ok(()));
    // Another unit is not closed by the meal's closure.
    assert_eq!(
        unit.opening
            .check_unit(Uuid::from_u128(5), day(3, 9), &c.calendar),
        Ok(())
    );
    // Zone C's winter holidays 2027, a public holiday of 2027-2028.
    assert_eq!(
        unit.opening.check_unit(MEAL, day(2, 8), &c.calendar),
        Err(ClosedReason::SchoolHolidays)
    );
    assert_eq!(
        unit.opening
            .check_unit(MEAL, NaiveDate::from_ymd_opt(2027, 11, 11).unwrap(), &c.calendar),
        Err(ClosedReason::PublicHoliday)
    );
    let unpublished = NaiveDate::from_ymd_opt(2028, 9, 4).unwrap();
    assert_eq!(
        unit.opening.check_unit(MEAL, unpublished, &c.calendar),
        Err(ClosedReason::CalendarNotPublished(SchoolYear(2028)))
    );
}

#[test]
fn absence_rules_are_trimmed_bounded_and_each_reason_listed_once() {
    let rules = |reasons: &[&str], days| CollectivityCommand::SetAbsenceRules {
        rules: AbsenceRules {
            reasons: reasons.iter().map(|r| r.to_string()).collect(),
            report_days_after: days,
        },
    };
    framework()
        .given(configured())
        .when(rules(&[" Maladie ", "Rendez-vous médical"], 2))
        .then_expect_events(vec![CollectivityEvent::AbsenceRulesSet {
            rules: AbsenceRules {
                reasons: vec!["Maladie".into(), "Rendez-vous médical".into()],
                report_days_after: 2,
            },
        }]);
    // The defaults, sent again: nothing changes.
    framework()
        .given(configured())
        .when(rules(&["Maladie", "Raison familiale"], 0))
        .then_expect_events(vec![]);
    for refused in [
        rules(&[], 0),
        rules(&["Maladie", "maladie"], 0),
        rules(&["Maladie"], 32),
    ] {
        framework()
            .given(configured())
            .when(refused)
            .then_expect_error(CollectivityError::InvalidAbsenceRules);
    }
}
