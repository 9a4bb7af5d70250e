//! What happened to a commune's configuration.

#[allow(unused_imports)]
use super::*;

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
