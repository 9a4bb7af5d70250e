//! The collectivity: a commune (or a group of communes) and its *régie*, the
//! public accounting office that bills families. It is the tenant.
//!
//! Its events are its configuration, so an auditor can see which rules were
//! in force on any date: services, their units, opening days, deadlines and
//! the school calendar.

use std::collections::BTreeMap;

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::calendar::{DateRange, DeadlineRule, DeadlineRuleError, OpeningDays, SchoolCalendar};
use crate::text::{self, TextError};

/// The kinds of service a commune offers to families.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServiceKind {
    /// Cantine (school canteen).
    Canteen,
    /// Étude surveillée (supervised homework time after class).
    SupervisedStudy,
    /// Accueil périscolaire du matin (before-school care).
    MorningCare,
    /// Accueil périscolaire du soir (after-school care).
    EveningCare,
    /// Accueil de loisirs (leisure centre), Wednesdays or holidays.
    LeisureCentre,
}

/// How a unit is paid for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BillingMode {
    /// Paid when the basket is validated.
    Prepaid,
    /// Billed on the family's invoice at the end of the month.
    Monthly,
}

/// A service of the commune (the canteen, the supervised study...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    pub id: Uuid,
    pub name: String,
    pub kind: ServiceKind,
}

/// What a parent books: one unit of a service on one day (a meal, a study
/// session, a leisure-centre day), with its opening days and deadlines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unit {
    pub id: Uuid,
    pub service_id: Uuid,
    pub name: String,
    pub opening: OpeningDays,
    pub billing: BillingMode,
    pub booking_deadline: DeadlineRule,
    pub cancellation_deadline: DeadlineRule,
    /// Whether a cancellation waits for an agent's decision.
    pub cancellation_needs_approval: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CollectivityCommand {
    Create { id: Uuid, name: String },
    AddService { service: Service },
    AddUnit { unit: Unit },
    SetSchoolCalendar { calendar: SchoolCalendar },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CollectivityEvent {
    CollectivityCreated { id: Uuid, name: String },
    ServiceAdded { service: Service },
    UnitAdded { unit: Unit },
    SchoolCalendarSet { calendar: SchoolCalendar },
}

impl DomainEvent for CollectivityEvent {
    fn event_type(&self) -> String {
        match self {
            CollectivityEvent::CollectivityCreated { .. } => "CollectivityCreated",
            CollectivityEvent::ServiceAdded { .. } => "ServiceAdded",
            CollectivityEvent::UnitAdded { .. } => "UnitAdded",
            CollectivityEvent::SchoolCalendarSet { .. } => "SchoolCalendarSet",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CollectivityError {
    #[error("this collectivity already exists")]
    AlreadyExists,
    #[error("no such collectivity")]
    NotFound,
    #[error("a name cannot be empty")]
    EmptyName,
    #[error("a service with this id already exists")]
    DuplicateService,
    #[error("no service {0} in this collectivity")]
    UnknownService(Uuid),
    #[error("a unit with this id already exists")]
    DuplicateUnit,
    #[error("a unit must be open on at least one day of the week")]
    NoOpeningDay,
    #[error("invalid deadline: {0}")]
    InvalidDeadline(#[from] DeadlineRuleError),
    #[error("a holiday period ends before it starts: {0:?}")]
    InvalidPeriod(DateRange),
    #[error(transparent)]
    InvalidText(#[from] TextError),
}

/// A name as the commune types it: trimmed, bounded, never empty.
fn clean_name(value: &str) -> Result<String, CollectivityError> {
    text::required("a name", value, text::NAME).map_err(|error| match error {
        TextError::Empty { .. } => CollectivityError::EmptyName,
        other => other.into(),
    })
}

/// The commune's configuration as its events built it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Collectivity {
    pub id: Option<Uuid>,
    pub name: String,
    pub services: BTreeMap<Uuid, Service>,
    pub units: BTreeMap<Uuid, Unit>,
    pub calendar: SchoolCalendar,
}

impl Collectivity {
    pub fn exists(&self) -> bool {
        self.id.is_some()
    }

    fn check_unit(&self, unit: &Unit) -> Result<(), CollectivityError> {
        if self.units.contains_key(&unit.id) {
            return Err(CollectivityError::DuplicateUnit);
        }
        if !self.services.contains_key(&unit.service_id) {
            return Err(CollectivityError::UnknownService(unit.service_id));
        }
        if unit.opening.weekdays.is_empty() {
            return Err(CollectivityError::NoOpeningDay);
        }
        unit.booking_deadline.validate()?;
        unit.cancellation_deadline.validate()?;
        Ok(())
    }
}

impl Aggregate for Collectivity {
    const TYPE: &'static str = "Collectivity";
    type Command = CollectivityCommand;
    type Event = CollectivityEvent;
    type Error = CollectivityError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        if let CollectivityCommand::Create { id, name } = command {
            if self.exists() {
                return Err(CollectivityError::AlreadyExists);
            }
            let name = clean_name(&name)?;
            sink.write(CollectivityEvent::CollectivityCreated { id, name }, self)
                .await;
            return Ok(());
        }
        if !self.exists() {
            return Err(CollectivityError::NotFound);
        }
        let event = match command {
            CollectivityCommand::Create { .. } => unreachable!("handled above"),
            CollectivityCommand::AddService { mut service } => {
                service.name = clean_name(&service.name)?;
                if self.services.contains_key(&service.id) {
                    return Err(CollectivityError::DuplicateService);
                }
                CollectivityEvent::ServiceAdded { service }
            }
            CollectivityCommand::AddUnit { mut unit } => {
                unit.name = clean_name(&unit.name)?;
                unit.opening = unit.opening.normalised();
                self.check_unit(&unit)?;
                CollectivityEvent::UnitAdded { unit }
            }
            CollectivityCommand::SetSchoolCalendar { calendar } => {
                if let Some(range) = calendar.school_holidays.iter().find(|r| r.last < r.first) {
                    return Err(CollectivityError::InvalidPeriod(*range));
                }
                let days = calendar.school_holidays.iter().flat_map(|r| [r.first, r.last]);
                for day in days.chain(calendar.public_holidays.iter().copied()) {
                    text::date("a day of the school calendar", day)?;
                }
                CollectivityEvent::SchoolCalendarSet { calendar }
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            CollectivityEvent::CollectivityCreated { id, name } => {
                self.id = Some(id);
                self.name = name;
            }
            CollectivityEvent::ServiceAdded { service } => {
                self.services.insert(service.id, service);
            }
            CollectivityEvent::UnitAdded { unit } => {
                self.units.insert(unit.id, unit);
            }
            CollectivityEvent::SchoolCalendarSet { calendar } => self.calendar = calendar,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
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
}
