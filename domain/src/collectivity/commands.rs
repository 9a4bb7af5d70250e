//! What a commune's agents ask of its configuration.

#[allow(unused_imports)]
use super::*;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CollectivityCommand {
    Create { id: Uuid, name: String },
    AddService { service: Service },
    AddUnit { unit: Unit },
    SetSchoolCalendar { calendar: SchoolCalendar },
}
