//! Until when a day can be booked or cancelled.

#[allow(unused_imports)]
use super::*;

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
