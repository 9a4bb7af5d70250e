//! The commune's school calendar: public holidays and school holidays.

#[allow(unused_imports)]
use super::*;

/// The commune's school calendar: public holidays (closed for every unit)
/// and school holiday periods (the leisure centre opens, the canteen does not).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SchoolCalendar {
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
}

impl SchoolCalendar {
    pub fn is_public_holiday(&self, date: NaiveDate) -> bool {
        self.public_holidays.contains(&date)
    }

    pub fn is_school_holiday(&self, date: NaiveDate) -> bool {
        self.school_holidays.iter().any(|range| range.contains(date))
    }
}
