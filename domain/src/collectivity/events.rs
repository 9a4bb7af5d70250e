//! What happened to a commune's configuration.

#[allow(unused_imports)]
use super::*;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CollectivityEvent {
    CollectivityCreated {
        id: Uuid,
        name: String,
    },
    ServiceAdded {
        service: Service,
    },
    UnitAdded {
        unit: Unit,
    },
    /// A calendar typed by hand (no longer written: kept so that the
    /// communes that set one replay).
    SchoolCalendarSet {
        calendar: TypedCalendar,
    },
    SchoolZoneSet {
        zone: Zone,
        department: String,
    },
    /// The days off of a school year, as published: the event holds the
    /// dates, so a replay never depends on the data shipped at the time.
    SchoolYearPublished {
        year: SchoolYear,
        calendar: PublishedYear,
    },
    ClosureAdded {
        closure: Closure,
    },
    AbsenceRulesSet {
        rules: AbsenceRules,
    },
    PaymentRulesSet {
        rules: PaymentRules,
    },
    BookingWindowSet {
        window: BookingWindow,
    },
    UnitPlacesSet {
        unit_id: Uuid,
        places: Option<u32>,
    },
    DayPlacesSet {
        unit_id: Uuid,
        date: NaiveDate,
        places: Option<u32>,
    },
    TariffSet {
        tariff: Tariff,
    },
    RequestCategoryDefined {
        category: RequestCategory,
    },
}

impl DomainEvent for CollectivityEvent {
    fn event_type(&self) -> String {
        match self {
            CollectivityEvent::CollectivityCreated { .. } => "CollectivityCreated",
            CollectivityEvent::ServiceAdded { .. } => "ServiceAdded",
            CollectivityEvent::UnitAdded { .. } => "UnitAdded",
            CollectivityEvent::SchoolCalendarSet { .. } => "SchoolCalendarSet",
            CollectivityEvent::SchoolZoneSet { .. } => "SchoolZoneSet",
            CollectivityEvent::SchoolYearPublished { .. } => "SchoolYearPublished",
            CollectivityEvent::ClosureAdded { .. } => "ClosureAdded",
            CollectivityEvent::AbsenceRulesSet { .. } => "AbsenceRulesSet",
            CollectivityEvent::PaymentRulesSet { .. } => "PaymentRulesSet",
            CollectivityEvent::BookingWindowSet { .. } => "BookingWindowSet",
            CollectivityEvent::UnitPlacesSet { .. } => "UnitPlacesSet",
            CollectivityEvent::DayPlacesSet { .. } => "DayPlacesSet",
            CollectivityEvent::TariffSet { .. } => "TariffSet",
            CollectivityEvent::RequestCategoryDefined { .. } => "RequestCategoryDefined",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}
