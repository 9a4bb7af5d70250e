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
    #[serde(default)]
    pub absence_rules: AbsenceRules,
    #[serde(default)]
    pub payment_rules: PaymentRules,
    /// When booking opens, per unit and range, in the order they were set.
    #[serde(default)]
    pub booking_windows: Vec<BookingWindow>,
    /// The places of the units that count them.
    #[serde(default)]
    pub places: BTreeMap<Uuid, UnitPlaces>,
    /// The units' tariffs, in the order they were set.
    #[serde(default)]
    pub tariffs: Vec<Tariff>,
    /// The kinds of request families may send, in the order first defined.
    #[serde(default)]
    pub request_categories: Vec<RequestCategory>,
}

impl Collectivity {
    pub fn exists(&self) -> bool {
        self.id.is_some()
    }

    /// The instant booking opens for `unit_id` on `date`, for a resident
    /// family or not, when a window covers that day (the last one set).
    pub fn booking_opens_at(&self, unit_id: Uuid, date: NaiveDate, resident: bool) -> Option<DateTime<Utc>> {
        self.window_of(unit_id, date).map(|w| w.opens_for(resident))
    }

    /// How many children `unit_id` takes on `date`, if it counts them.
    pub fn places_on(&self, unit_id: Uuid, date: NaiveDate) -> Option<u32> {
        self.places.get(&unit_id).and_then(|places| places.on(date))
    }

    fn check_places(&self, unit_id: Uuid, places: Option<u32>) -> Result<(), CollectivityError> {
        if !self.units.contains_key(&unit_id) {
            return Err(CollectivityError::UnknownUnit(unit_id));
        }
        if places.is_some_and(|n| n > MAX_PLACES) {
            return Err(CollectivityError::TooManyPlaces);
        }
        Ok(())
    }

    /// The window that decides `unit_id`'s `date` (the last one set that
    /// covers it), if any.
    pub fn window_of(&self, unit_id: Uuid, date: NaiveDate) -> Option<&BookingWindow> {
        self.booking_windows
            .iter()
            .rev()
            .find(|w| w.unit_id == unit_id && w.range.contains(date))
    }

    /// The allocated window collecting requests for `unit_id` on `date`
    /// at `now`, if one is.
    pub fn collecting(&self, unit_id: Uuid, date: NaiveDate, now: DateTime<Utc>) -> Option<&BookingWindow> {
        self.window_of(unit_id, date).filter(|w| w.collects_at(now))
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
            CollectivityCommand::SetSchoolZone { zone, department } => {
                let department = department.trim().to_uppercase();
                if !is_department(&department) {
                    return Err(CollectivityError::UnknownDepartment(department));
                }
                if self.calendar.zone == Some(zone)
                    && self.calendar.department.as_deref() == Some(&department)
                {
                    return Ok(());
                }
                CollectivityEvent::SchoolZoneSet { zone, department }
            }
            CollectivityCommand::PublishSchoolYear { year } => {
                let zone = self.calendar.zone.ok_or(CollectivityError::NoSchoolZone)?;
                let alsace_moselle = self
                    .calendar
                    .department
                    .as_deref()
                    .is_some_and(|d| ALSACE_MOSELLE.contains(&d));
                let school_holidays =
                    school_holidays(zone, year).ok_or(CollectivityError::CalendarNotAvailable(year))?;
                let calendar = PublishedYear {
                    zone,
                    public_holidays: public_holidays_of(year, alsace_moselle),
                    school_holidays,
                };
                match self.calendar.years.get(&year) {
                    // Sent again: nothing changes.
                    Some(published) if *published == calendar => return Ok(()),
                    // Published otherwise (another zone): a published year
                    // is never reopened.
                    Some(_) => return Err(CollectivityError::AlreadyPublished(year)),
                    None => {}
                }
                CollectivityEvent::SchoolYearPublished { year, calendar }
            }
            CollectivityCommand::SetAbsenceRules { rules } => {
                let mut reasons: Vec<String> = Vec::with_capacity(rules.reasons.len());
                for reason in &rules.reasons {
                    let reason = text::required("a reason of absence", reason, text::NAME)?;
                    if reasons.iter().any(|r| r.to_lowercase() == reason.to_lowercase()) {
                        return Err(CollectivityError::InvalidAbsenceRules);
                    }
                    reasons.push(reason);
                }
                if reasons.is_empty()
                    || reasons.len() > MAX_ABSENCE_REASONS
                    || rules.report_days_after > MAX_ABSENCE_DELAY_DAYS
                {
                    return Err(CollectivityError::InvalidAbsenceRules);
                }
                let rules = AbsenceRules {
                    reasons,
                    report_days_after: rules.report_days_after,
                };
                if rules == self.absence_rules {
                    return Ok(());
                }
                CollectivityEvent::AbsenceRulesSet { rules }
            }
            CollectivityCommand::SetPaymentRules { rules } => {
                let in_range = |cents: i64| (0..=MAX_RULE_CENTS).contains(&cents);
                if rules.minimum_online_cents < 1
                    || !in_range(rules.minimum_online_cents)
                    || !rules.debt_limit_cents.is_none_or(in_range)
                {
                    return Err(CollectivityError::InvalidPaymentRules);
                }
                if rules == self.payment_rules {
                    return Ok(());
                }
                CollectivityEvent::PaymentRulesSet { rules }
            }
            CollectivityCommand::AddClosure { mut closure } => {
                closure.reason = text::required("a closure's reason", &closure.reason, text::NAME)?;
                if closure.range.last < closure.range.first {
                    return Err(CollectivityError::InvalidPeriod(closure.range));
                }
                text::date("a closure's first day", closure.range.first)?;
                text::date("a closure's last day", closure.range.last)?;
                if closure.range.days() > MAX_CLOSURE_DAYS {
                    return Err(CollectivityError::ClosureTooLong);
                }
                if let Some(unit) = closure.unit_id {
                    if !self.units.contains_key(&unit) {
                        return Err(CollectivityError::UnknownUnit(unit));
                    }
                }
                if let Some(existing) = self.calendar.closures.iter().find(|c| c.id == closure.id) {
                    if *existing == closure {
                        return Ok(());
                    }
                    return Err(CollectivityError::DuplicateClosure(closure.id));
                }
                if self.calendar.closures.len() >= MAX_CLOSURES {
                    return Err(CollectivityError::TooManyClosures);
                }
                CollectivityEvent::ClosureAdded { closure }
            }
            CollectivityCommand::SetBookingWindow { window } => {
                if !self.units.contains_key(&window.unit_id) {
                    return Err(CollectivityError::UnknownUnit(window.unit_id));
                }
                if window.range.last < window.range.first {
                    return Err(CollectivityError::InvalidPeriod(window.range));
                }
                text::date("a window's first day", window.range.first)?;
                text::date("a window's last day", window.range.last)?;
                if window.range.days() > MAX_CLOSURE_DAYS {
                    return Err(CollectivityError::WindowTooLong);
                }
                if window
                    .residents_open_at
                    .is_some_and(|early| early > window.opens_at)
                {
                    return Err(CollectivityError::ResidentsOpenLater);
                }
                let existing = self.booking_windows.iter().find(|w| w.id == window.id);
                if let Some(allocation) = &window.allocation {
                    if allocation.closes_at <= window.opens_at {
                        return Err(CollectivityError::AllocationClosesBeforeOpening);
                    }
                    let mut seen = allocation.criteria.clone();
                    seen.sort_unstable();
                    seen.dedup();
                    if seen.len() != allocation.criteria.len() {
                        return Err(CollectivityError::DuplicateCriterion);
                    }
                    if !allocation::is_commitment(&allocation.seed_commitment) {
                        return Err(CollectivityError::InvalidSeedCommitment);
                    }
                    // The lottery's seed is fixed once published.
                    let published = existing.and_then(|w| w.allocation.as_ref());
                    if published.is_some_and(|p| p.seed_commitment != allocation.seed_commitment) {
                        return Err(CollectivityError::InvalidSeedCommitment);
                    }
                }
                match existing {
                    Some(existing) if *existing == window => return Ok(()),
                    Some(_) => {}
                    None if self.booking_windows.len() >= MAX_BOOKING_WINDOWS => {
                        return Err(CollectivityError::TooManyWindows)
                    }
                    None => {}
                }
                CollectivityEvent::BookingWindowSet { window }
            }
            CollectivityCommand::SetTariff { tariff } => {
                if !self.units.contains_key(&tariff.unit_id) {
                    return Err(CollectivityError::UnknownUnit(tariff.unit_id));
                }
                text::date("a tariff's first day", tariff.valid_from)?;
                if let Some(until) = tariff.valid_until {
                    text::date("a tariff's last day", until)?;
                }
                tariff.check()?;
                match self.tariffs.iter().find(|t| t.id == tariff.id) {
                    Some(existing) if *existing == tariff => return Ok(()),
                    Some(_) => {}
                    None if self.tariffs.len() >= MAX_TARIFFS => {
                        return Err(CollectivityError::TooManyTariffs)
                    }
                    None => {}
                }
                CollectivityEvent::TariffSet { tariff }
            }
            CollectivityCommand::DefineRequestCategory { category } => {
                match self.check_request_category(category)? {
                    None => return Ok(()),
                    Some(category) => CollectivityEvent::RequestCategoryDefined { category },
                }
            }
            CollectivityCommand::SetPlaces { unit_id, places } => {
                self.check_places(unit_id, places)?;
                let current = self.places.get(&unit_id).and_then(|p| p.every_day);
                if current == places {
                    return Ok(());
                }
                CollectivityEvent::UnitPlacesSet { unit_id, places }
            }
            CollectivityCommand::SetDayPlaces {
                unit_id,
                date,
                places,
            } => {
                self.check_places(unit_id, places)?;
                text::date("a day", date)?;
                let set = self.places.get(&unit_id);
                let current = set.and_then(|p| p.on.get(&date).copied());
                if current == places {
                    return Ok(());
                }
                if current.is_none() && set.is_some_and(|p| p.on.len() >= MAX_PLACE_DATES) {
                    return Err(CollectivityError::TooManyPlaceDates);
                }
                CollectivityEvent::DayPlacesSet {
                    unit_id,
                    date,
                    places,
                }
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
            CollectivityEvent::SchoolCalendarSet { calendar } => self.calendar.typed = Some(calendar),
            CollectivityEvent::SchoolZoneSet { zone, department } => {
                self.calendar.zone = Some(zone);
                self.calendar.department = Some(department);
            }
            CollectivityEvent::SchoolYearPublished { year, calendar } => {
                self.calendar.years.insert(year, calendar);
            }
            CollectivityEvent::ClosureAdded { closure } => self.calendar.closures.push(closure),
            CollectivityEvent::AbsenceRulesSet { rules } => self.absence_rules = rules,
            CollectivityEvent::PaymentRulesSet { rules } => self.payment_rules = rules,
            CollectivityEvent::BookingWindowSet { window } => {
                self.booking_windows.retain(|w| w.id != window.id);
                self.booking_windows.push(window);
            }
            CollectivityEvent::TariffSet { tariff } => {
                self.tariffs.retain(|t| t.id != tariff.id);
                self.tariffs.push(tariff);
            }
            CollectivityEvent::RequestCategoryDefined { category } => {
                match self.request_categories.iter_mut().find(|c| c.id == category.id) {
                    Some(existing) => *existing = category,
                    None => self.request_categories.push(category),
                }
            }
            CollectivityEvent::UnitPlacesSet { unit_id, places } => {
                self.places.entry(unit_id).or_default().every_day = places;
            }
            CollectivityEvent::DayPlacesSet {
                unit_id,
                date,
                places,
            } => {
                let set = self.places.entry(unit_id).or_default();
                match places {
                    Some(places) => set.on.insert(date, places),
                    None => set.on.remove(&date),
                };
            }
        }
    }
}
