//! Opening days and deadlines: the rules that decide whether a slot can be
//! booked or cancelled, and until when.
//!
//! Every rule is data stored in the commune's events and evaluated in
//! `Europe/Paris`, because that is where parents and agents read the clock:
//! "J-2 à 12h" means noon in Paris whether it is winter or summer time.

use std::collections::BTreeSet;

use chrono::{DateTime, Datelike, Duration, LocalResult, NaiveDate, NaiveTime, TimeZone, Utc, Weekday};
use chrono_tz::Europe::Paris;
use serde::{Deserialize, Serialize};

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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ClosedReason {
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

    /// `Ok(())` when the unit runs on `date`, else the reason it does not.
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

/// A deadline rule, as the commune writes it in its rules of procedure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeadlineRule {
    /// "J-2 à 12h, week-end non compté": `days` counted days before the slot,
    /// at `at` Paris time; weekends and public holidays may be left out of
    /// the count.
    DaysBefore {
        days: u32,
        at: NaiveTime,
        skip_weekends: bool,
        skip_holidays: bool,
    },
    /// "Le jeudi 9h de la semaine précédente".
    WeekdayOfPreviousWeek { weekday: Weekday, at: NaiveTime },
    /// "Le 20 du mois précédent à 18h"; a day past the month's end means its
    /// last day.
    DayOfPreviousMonth { day: u32, at: NaiveTime },
}

/// Why a deadline rule is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeadlineRuleError {
    #[error("a deadline cannot be more than 366 days before the slot")]
    TooFarAhead,
    #[error("a day of the month must be between 1 and 31")]
    InvalidDayOfMonth,
}

impl DeadlineRule {
    pub fn validate(&self) -> Result<(), DeadlineRuleError> {
        match self {
            DeadlineRule::DaysBefore { days, .. } if *days > 366 => Err(DeadlineRuleError::TooFarAhead),
            DeadlineRule::DayOfPreviousMonth { day, .. } if !(1..=31).contains(day) => {
                Err(DeadlineRuleError::InvalidDayOfMonth)
            }
            _ => Ok(()),
        }
    }

    /// The absolute instant after which the slot on `date` can no longer be
    /// booked (or cancelled) under this rule.
    pub fn deadline_for(&self, date: NaiveDate, calendar: &SchoolCalendar) -> DateTime<Utc> {
        let (day, at) = match *self {
            DeadlineRule::DaysBefore {
                days,
                at,
                skip_weekends,
                skip_holidays,
            } => {
                let mut day = date;
                let mut counted = 0;
                while counted < days {
                    day = day.pred_opt().unwrap_or(day);
                    let weekend = matches!(day.weekday(), Weekday::Sat | Weekday::Sun);
                    let skipped =
                        (skip_weekends && weekend) || (skip_holidays && calendar.is_public_holiday(day));
                    if !skipped {
                        counted += 1;
                    }
                }
                (day, at)
            }
            DeadlineRule::WeekdayOfPreviousWeek { weekday, at } => {
                let monday = date - Duration::days(i64::from(date.weekday().num_days_from_monday()));
                let previous_monday = monday - Duration::days(7);
                (
                    previous_monday + Duration::days(i64::from(weekday.num_days_from_monday())),
                    at,
                )
            }
            DeadlineRule::DayOfPreviousMonth { day, at } => {
                let first_of_month = date.with_day(1).unwrap_or(date);
                let last_of_previous = first_of_month.pred_opt().unwrap_or(first_of_month);
                let day = day.clamp(1, last_of_previous.day());
                (last_of_previous.with_day(day).unwrap_or(last_of_previous), at)
            }
        };
        paris_instant(day, at)
    }
}

/// The UTC instant of a Paris wall-clock time. In the autumn overlap the
/// earlier instant counts (the deadline must not move later); in the spring
/// gap the first instant after the gap counts.
pub fn paris_instant(day: NaiveDate, at: NaiveTime) -> DateTime<Utc> {
    let local = day.and_time(at);
    match Paris.from_local_datetime(&local) {
        LocalResult::Single(instant) => instant.with_timezone(&Utc),
        LocalResult::Ambiguous(earliest, _) => earliest.with_timezone(&Utc),
        LocalResult::None => {
            let later = local + Duration::hours(1);
            Paris
                .from_local_datetime(&later)
                .earliest()
                .map(|instant| instant.with_timezone(&Utc))
                .unwrap_or_else(|| Utc.from_utc_datetime(&local))
        }
    }
}

/// An instant as a Paris reader writes it: "2026-12-03 12:00".
pub fn paris_display(instant: DateTime<Utc>) -> String {
    instant.with_timezone(&Paris).format("%Y-%m-%d %H:%M").to_string()
}

/// The English name of a day of the week.
pub fn weekday_name(day: Weekday) -> &'static str {
    match day {
        Weekday::Mon => "Monday",
        Weekday::Tue => "Tuesday",
        Weekday::Wed => "Wednesday",
        Weekday::Thu => "Thursday",
        Weekday::Fri => "Friday",
        Weekday::Sat => "Saturday",
        Weekday::Sun => "Sunday",
    }
}

/// A school year, named by the calendar year in which it starts: 2026 is
/// 1 September 2026 to 31 August 2027.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SchoolYear(pub i32);

impl SchoolYear {
    pub fn of(date: NaiveDate) -> SchoolYear {
        if date.month() >= 9 {
            SchoolYear(date.year())
        } else {
            SchoolYear(date.year() - 1)
        }
    }
}

impl std::fmt::Display for SchoolYear {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Wide arithmetic: a stored year is never trusted to leave room.
        write!(f, "{}-{}", self.0, i64::from(self.0) + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn t(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap()
    }

    fn utc(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn school_days() -> OpeningDays {
        OpeningDays {
            weekdays: vec![Weekday::Mon, Weekday::Tue, Weekday::Thu, Weekday::Fri],
            during: OpenDuring::SchoolTerms,
        }
    }

    #[test]
    fn j_minus_2_without_weekends_puts_a_monday_deadline_on_thursday_noon_paris_time() {
        let rule = DeadlineRule::DaysBefore {
            days: 2,
            at: t(12, 0),
            skip_weekends: true,
            skip_holidays: false,
        };
        // Monday 7 December 2026; Paris is UTC+1 in winter.
        let deadline = rule.deadline_for(d(2026, 12, 7), &SchoolCalendar::default());
        assert_eq!(deadline, utc("2026-12-03T11:00:00Z"));
    }

    #[test]
    fn j_minus_2_counting_weekends_puts_a_monday_deadline_on_saturday() {
        let rule = DeadlineRule::DaysBefore {
            days: 2,
            at: t(12, 0),
            skip_weekends: false,
            skip_holidays: false,
        };
        let deadline = rule.deadline_for(d(2026, 12, 7), &SchoolCalendar::default());
        assert_eq!(deadline, utc("2026-12-05T11:00:00Z"));
    }

    #[test]
    fn a_skipped_public_holiday_pushes_the_deadline_one_day_earlier() {
        let rule = DeadlineRule::DaysBefore {
            days: 1,
            at: t(10, 0),
            skip_weekends: true,
            skip_holidays: true,
        };
        let calendar = SchoolCalendar {
            public_holidays: [d(2026, 11, 11)].into(),
            school_holidays: vec![],
        };
        // Thursday 12 November 2026, the day after Armistice day.
        let deadline = rule.deadline_for(d(2026, 11, 12), &calendar);
        assert_eq!(deadline, utc("2026-11-10T09:00:00Z"));
    }

    #[test]
    fn deadlines_follow_summer_time_in_paris() {
        let rule = DeadlineRule::DaysBefore {
            days: 1,
            at: t(12, 0),
            skip_weekends: false,
            skip_holidays: false,
        };
        // Paris is UTC+2 in June.
        let deadline = rule.deadline_for(d(2027, 6, 10), &SchoolCalendar::default());
        assert_eq!(deadline, utc("2027-06-09T10:00:00Z"));
    }

    #[test]
    fn a_deadline_in_the_spring_forward_gap_moves_to_the_end_of_the_gap() {
        // 28 March 2027 at 02:30 does not exist in Paris.
        assert_eq!(
            paris_instant(d(2027, 3, 28), t(2, 30)),
            utc("2027-03-28T01:30:00Z")
        );
    }

    #[test]
    fn thursday_of_the_previous_week_is_found_from_any_day_of_the_week() {
        let rule = DeadlineRule::WeekdayOfPreviousWeek {
            weekday: Weekday::Thu,
            at: t(9, 0),
        };
        let calendar = SchoolCalendar::default();
        // Monday 7 and Friday 11 December 2026 share Thursday 3 December.
        assert_eq!(
            rule.deadline_for(d(2026, 12, 7), &calendar),
            utc("2026-12-03T08:00:00Z")
        );
        assert_eq!(
            rule.deadline_for(d(2026, 12, 11), &calendar),
            utc("2026-12-03T08:00:00Z")
        );
    }

    #[test]
    fn day_of_previous_month_is_clamped_to_the_last_day_of_a_short_month() {
        let rule = DeadlineRule::DayOfPreviousMonth {
            day: 31,
            at: t(18, 0),
        };
        let deadline = rule.deadline_for(d(2027, 3, 15), &SchoolCalendar::default());
        assert_eq!(deadline, utc("2027-02-28T17:00:00Z"));
    }

    #[test]
    fn a_deadline_rule_with_an_impossible_day_of_month_is_refused() {
        let rule = DeadlineRule::DayOfPreviousMonth { day: 0, at: t(18, 0) };
        assert_eq!(rule.validate(), Err(DeadlineRuleError::InvalidDayOfMonth));
    }

    #[test]
    fn a_term_time_unit_is_closed_on_wednesdays_holidays_and_public_holidays() {
        let calendar = SchoolCalendar {
            public_holidays: [d(2027, 5, 6)].into(),
            school_holidays: vec![DateRange {
                first: d(2026, 12, 19),
                last: d(2027, 1, 3),
            }],
        };
        let unit = school_days();
        assert_eq!(unit.check(d(2026, 12, 7), &calendar), Ok(()));
        assert_eq!(
            unit.check(d(2026, 12, 9), &calendar),
            Err(ClosedReason::ClosedWeekday(Weekday::Wed))
        );
        // Ascension Thursday 2027.
        assert_eq!(
            unit.check(d(2027, 5, 6), &calendar),
            Err(ClosedReason::PublicHoliday)
        );
        assert_eq!(
            unit.check(d(2026, 12, 21), &calendar),
            Err(ClosedReason::SchoolHolidays)
        );
    }

    #[test]
    fn a_holiday_unit_is_closed_during_term() {
        let calendar = SchoolCalendar {
            public_holidays: BTreeSet::new(),
            school_holidays: vec![DateRange {
                first: d(2026, 12, 19),
                last: d(2027, 1, 3),
            }],
        };
        let unit = OpeningDays {
            weekdays: vec![Weekday::Mon, Weekday::Tue],
            during: OpenDuring::SchoolHolidays,
        };
        assert_eq!(unit.check(d(2026, 12, 21), &calendar), Ok(()));
        assert_eq!(
            unit.check(d(2026, 12, 14), &calendar),
            Err(ClosedReason::SchoolTerm)
        );
    }

    #[test]
    fn the_school_year_turns_on_the_first_of_september() {
        assert_eq!(SchoolYear::of(d(2026, 8, 31)), SchoolYear(2025));
        assert_eq!(SchoolYear::of(d(2026, 9, 1)), SchoolYear(2026));
    }

    #[test]
    fn the_label_of_any_stored_year_is_written_without_overflow() {
        assert_eq!(SchoolYear(2026).to_string(), "2026-2027");
        assert_eq!(SchoolYear(i32::MAX).to_string(), "2147483647-2147483648");
    }
}
