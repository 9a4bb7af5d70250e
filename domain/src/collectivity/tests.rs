use super::*;
use crate::calendar::OpenDuring;
use chrono::{NaiveDate, NaiveTime, Weekday};
use cqrs_es::test::TestFramework;

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
    }
}

pub fn configured() -> Vec<CollectivityEvent> {
    vec![
        CollectivityEvent::CollectivityCreated {
            id: COMMUNE,
            name: "Dammartin-sur-Tigeaux".into(),
        },
        CollectivityEvent::ServiceAdded { service: canteen() },
        CollectivityEvent::UnitAdded { unit: meal() },
    ]
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
fn it_refuses_a_holiday_period_that_ends_before_it_starts() {
    let range = DateRange {
        first: NaiveDate::from_ymd_opt(2027, 1, 3).unwrap(),
        last: NaiveDate::from_ymd_opt(2026, 12, 19).unwrap(),
    };
    framework()
        .given(configured())
        .when(CollectivityCommand::SetSchoolCalendar {
            calendar: SchoolCalendar {
                public_holidays: Default::default(),
                school_holidays: vec![range],
            },
        })
        .then_expect_error(CollectivityError::InvalidPeriod(range));
}
