//! The commune's configuration as its events built it, and its decisions.

#[allow(unused_imports)]
use super::*;

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
