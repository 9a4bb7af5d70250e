//! On which days a unit runs, and why it does not.

#[allow(unused_imports)]
use super::*;

/// When in the school year a unit runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OpenDuring {
    /// School weeks only (canteen, supervised study, before/after-school care).
    SchoolTerms,
    /// School holidays only (leisure centre in the holidays).
    SchoolHolidays,
    /// Both (leisure centre on Wednesdays and in the holidays, say).
    AllYear,
}

/// The days a unit is open: weekdays, restricted to terms or holidays, never
/// on a public holiday.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpeningDays {
    /// Days of the week the unit runs, Monday first, each once.
    pub weekdays: Vec<Weekday>,
    pub during: OpenDuring,
}

/// Why a unit does not run on a date; shown to the parent next to the date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClosedReason {
    /// The days off of that school year are not published yet.
    CalendarNotPublished(SchoolYear),
    /// The commune closed the day, for this reason.
    Closed(String),
    /// The unit never runs on this day of the week.
    ClosedWeekday(Weekday),
    PublicHoliday,
    /// A term-time unit on a day of the school holidays.
    SchoolHolidays,
    /// A holiday-only unit on a school day.
    SchoolTerm,
}

impl std::fmt::Display for ClosedReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ClosedReason::CalendarNotPublished(year) => {
                write!(f, "the school calendar of {year} is not published yet")
            }
            ClosedReason::Closed(reason) => write!(f, "closed: {reason}"),
            ClosedReason::ClosedWeekday(day) => write!(f, "the unit does not run on {}s", weekday_name(*day)),
            ClosedReason::PublicHoliday => write!(f, "public holiday"),
            ClosedReason::SchoolHolidays => write!(f, "school holidays"),
            ClosedReason::SchoolTerm => write!(f, "the unit only runs during the school holidays"),
        }
    }
}

impl OpeningDays {
    /// The same days, Monday first and each once, so that equal rules
    /// compare equal.
    pub fn normalised(mut self) -> Self {
        self.weekdays.sort_by_key(|day| day.num_days_from_monday());
        self.weekdays.dedup();
        self
    }

    /// `Ok(())` when a unit with these days, `unit_id`, runs on `date`,
    /// else the reason it does not: a school year not published, a
    /// closure, a day of the week it never runs, a public holiday, a term
    /// or a holiday.
    pub fn check_unit(
        &self,
        unit_id: Uuid,
        date: NaiveDate,
        calendar: &SchoolCalendar,
    ) -> Result<(), ClosedReason> {
        if !calendar.is_published(date) {
            return Err(ClosedReason::CalendarNotPublished(SchoolYear::of(date)));
        }
        if let Some(closure) = calendar.closure(date, unit_id) {
            return Err(ClosedReason::Closed(closure.reason.clone()));
        }
        self.check(date, calendar)
    }

    /// `Ok(())` when days like these include `date`, whatever the
    /// publication and the closures; else the reason they do not.
    pub fn check(&self, date: NaiveDate, calendar: &SchoolCalendar) -> Result<(), ClosedReason> {
        let weekday = date.weekday();
        if !self.weekdays.contains(&weekday) {
            return Err(ClosedReason::ClosedWeekday(weekday));
        }
        if calendar.is_public_holiday(date) {
            return Err(ClosedReason::PublicHoliday);
        }
        let holidays = calendar.is_school_holiday(date);
        match (self.during, holidays) {
            (OpenDuring::SchoolTerms, true) => Err(ClosedReason::SchoolHolidays),
            (OpenDuring::SchoolHolidays, false) => Err(ClosedReason::SchoolTerm),
            _ => Ok(()),
        }
    }
}
