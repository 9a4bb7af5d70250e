//! The commune's school calendar: per school year, the public holidays and
//! its zone's school holidays as published, and local closures on top.

#[allow(unused_imports)]
use super::*;

/// A commune's school calendar, as its events built it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchoolCalendar {
    /// The school holiday zone the commune follows, and its département
    /// (which says whether Alsace-Moselle's public holidays apply).
    pub zone: Option<Zone>,
    pub department: Option<String>,
    /// The school years published, each with its days off.
    pub years: BTreeMap<SchoolYear, PublishedYear>,
    /// Days the commune closes on top (a "pont", a strike, works).
    pub closures: Vec<Closure>,
    /// A calendar typed by hand, as communes set it before calendars were
    /// published from official data: their events still replay, and it
    /// stands for the years not published.
    pub typed: Option<TypedCalendar>,
}

/// One published school year: computed public holidays, the zone's
/// official school holidays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublishedYear {
    pub zone: Zone,
    pub public_holidays: Vec<NamedDay>,
    pub school_holidays: Vec<NamedRange>,
}

/// Days a commune closes, every unit or one, with the reason the parent
/// reads on the slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Closure {
    /// Chosen by the agent's client: the same closure sent twice is one.
    pub id: Uuid,
    pub range: DateRange,
    /// `None`: every unit of the commune.
    pub unit_id: Option<Uuid>,
    pub reason: String,
}

/// A calendar typed by hand (the payload of `SchoolCalendarSet`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypedCalendar {
    pub public_holidays: BTreeSet<NaiveDate>,
    pub school_holidays: Vec<DateRange>,
}

/// An inclusive range of days.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DateRange {
    pub first: NaiveDate,
    pub last: NaiveDate,
}

impl DateRange {
    pub fn contains(&self, date: NaiveDate) -> bool {
        self.first <= date && date <= self.last
    }

    /// How many days it covers.
    pub fn days(&self) -> i64 {
        (self.last - self.first).num_days() + 1
    }
}

impl SchoolCalendar {
    /// A calendar typed by hand and nothing else (tests, old communes).
    pub fn typed(typed: TypedCalendar) -> SchoolCalendar {
        SchoolCalendar {
            typed: Some(typed),
            ..SchoolCalendar::default()
        }
    }

    /// Whether the days off of `date`'s school year are known: published,
    /// or typed by hand.
    pub fn is_published(&self, date: NaiveDate) -> bool {
        self.years.contains_key(&SchoolYear::of(date)) || self.typed.is_some()
    }

    /// The name of the public holiday on `date`, if it is one.
    pub fn public_holiday(&self, date: NaiveDate) -> Option<&str> {
        match self.years.get(&SchoolYear::of(date)) {
            Some(year) => year
                .public_holidays
                .iter()
                .find(|day| day.date == date)
                .map(|day| day.name.as_str()),
            None => self
                .typed
                .as_ref()
                .filter(|typed| typed.public_holidays.contains(&date))
                .map(|_| "jour férié"),
        }
    }

    pub fn is_public_holiday(&self, date: NaiveDate) -> bool {
        self.public_holiday(date).is_some()
    }

    pub fn is_school_holiday(&self, date: NaiveDate) -> bool {
        match self.years.get(&SchoolYear::of(date)) {
            Some(year) => year
                .school_holidays
                .iter()
                .any(|period| period.range.contains(date)),
            None => self
                .typed
                .as_ref()
                .is_some_and(|typed| typed.school_holidays.iter().any(|range| range.contains(date))),
        }
    }

    /// The closure that covers `date` for this unit, if any.
    pub fn closure(&self, date: NaiveDate, unit_id: Uuid) -> Option<&Closure> {
        self.closures
            .iter()
            .find(|c| c.range.contains(date) && c.unit_id.is_none_or(|unit| unit == unit_id))
    }
}
