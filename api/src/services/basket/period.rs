//! Booking by period: a date range and a weekly pattern, for some children
//! and units, turned into the lines of one basket.

use chrono::{Datelike, NaiveDate, Weekday};
use espace_famille_domain::reservation::Origin;
use uuid::Uuid;

use super::{BasketAction, BasketLine, MAX_LINES};
use crate::error::ApiError;
use crate::i18n::say;

/// Which ISO weeks of the range a period takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weeks {
    Every,
    /// ISO weeks 2, 4, 6...
    Even,
    /// ISO weeks 1, 3, 5...
    Odd,
}

/// The most children, and units, one period names.
pub const MAX_PERIOD_TARGETS: usize = 10;

/// The longest period, in days.
pub const MAX_PERIOD_DAYS: i64 = 366;

/// Some weekdays of a date range, first and last days included, for some
/// children and units.
#[derive(Debug, Clone)]
pub struct Period {
    pub action: BasketAction,
    pub child_ids: Vec<Uuid>,
    pub unit_ids: Vec<Uuid>,
    pub first: NaiveDate,
    /// Included.
    pub last: NaiveDate,
    pub weekdays: Vec<Weekday>,
    pub weeks: Weeks,
}

impl Period {
    /// The lines of the period: each child, each unit, each day of the
    /// pattern, in that order. A day the unit turns out to be closed is
    /// skipped, not refused (see [`BasketLine::skip_if_closed`]): their
    /// origin is [`Origin::Period`].
    pub fn lines(&self) -> Result<Vec<BasketLine>, ApiError> {
        let invalid = |message: String| Err(ApiError::Validation(message));
        if self.last < self.first {
            return invalid(say(
                "api.period_reversed",
                &[("last", &self.last), ("first", &self.first)],
            ));
        }
        if (self.last - self.first).num_days() + 1 > MAX_PERIOD_DAYS {
            return invalid(say("api.period_too_long", &[("max", &MAX_PERIOD_DAYS)]));
        }
        for (key, ids) in [
            ("api.period_children", &self.child_ids),
            ("api.period_units", &self.unit_ids),
        ] {
            if ids.is_empty() || ids.len() > MAX_PERIOD_TARGETS {
                return invalid(say(key, &[("max", &MAX_PERIOD_TARGETS)]));
            }
        }
        if self.weekdays.is_empty() {
            return invalid(say("api.period_no_weekday", &[]));
        }
        let days: Vec<NaiveDate> = self
            .first
            .iter_days()
            .take_while(|day| *day <= self.last)
            .filter(|day| self.weekdays.contains(&day.weekday()))
            .filter(|day| match self.weeks {
                Weeks::Every => true,
                Weeks::Even => day.iso_week().week() % 2 == 0,
                Weeks::Odd => day.iso_week().week() % 2 == 1,
            })
            .collect();
        if days.is_empty() {
            return invalid(say(
                "api.period_no_day",
                &[("first", &self.first), ("last", &self.last)],
            ));
        }
        let count = days.len() * self.child_ids.len() * self.unit_ids.len();
        if count > MAX_LINES {
            return invalid(say(
                "api.period_too_big",
                &[("max", &MAX_LINES), ("count", &count)],
            ));
        }
        let mut lines = Vec::with_capacity(count);
        for &child_id in &self.child_ids {
            for &unit_id in &self.unit_ids {
                lines.extend(days.iter().map(|&date| BasketLine {
                    action: self.action,
                    child_id,
                    unit_id,
                    date,
                    origin: Origin::Period,
                }));
            }
        }
        Ok(lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn period(first: (i32, u32, u32), last: (i32, u32, u32), weeks: Weeks) -> Period {
        let day = |(y, m, d)| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        Period {
            action: BasketAction::Book,
            child_ids: vec![Uuid::from_u128(1)],
            unit_ids: vec![Uuid::from_u128(2)],
            first: day(first),
            last: day(last),
            weekdays: vec![Weekday::Mon, Weekday::Thu],
            weeks,
        }
    }

    #[test]
    fn a_period_takes_its_weekdays_of_the_weeks_asked_last_day_included() {
        // Monday 4 January 2027 is in ISO week 1.
        let every = period((2027, 1, 4), (2027, 1, 18), Weeks::Every).lines().unwrap();
        let dates: Vec<String> = every.iter().map(|l| l.date.to_string()).collect();
        assert_eq!(
            dates,
            [
                "2027-01-04",
                "2027-01-07",
                "2027-01-11",
                "2027-01-14",
                "2027-01-18"
            ]
        );
        assert!(every.iter().all(|l| l.skip_if_closed()));
        let even = period((2027, 1, 4), (2027, 1, 18), Weeks::Even).lines().unwrap();
        let dates: Vec<String> = even.iter().map(|l| l.date.to_string()).collect();
        assert_eq!(dates, ["2027-01-11", "2027-01-14"]);
        let odd = period((2027, 1, 4), (2027, 1, 18), Weeks::Odd).lines().unwrap();
        assert_eq!(odd.len(), 3);
    }

    #[test]
    fn a_period_that_cannot_make_lines_is_refused() {
        let refused = |p: Period| matches!(p.lines(), Err(ApiError::Validation(_)));
        assert!(
            refused(period((2027, 1, 18), (2027, 1, 4), Weeks::Every)),
            "reversed"
        );
        assert!(
            refused(period((2027, 1, 5), (2027, 1, 6), Weeks::Every)),
            "no Monday or Thursday"
        );
        assert!(
            refused(period((2026, 1, 1), (2027, 6, 30), Weeks::Every)),
            "too long"
        );
        let mut nobody = period((2027, 1, 4), (2027, 1, 18), Weeks::Every);
        nobody.child_ids.clear();
        assert!(refused(nobody));
        let mut crowd = period((2027, 1, 4), (2027, 1, 18), Weeks::Every);
        crowd.unit_ids = (0..11).map(Uuid::from_u128).collect();
        assert!(refused(crowd));
        let mut no_day = period((2027, 1, 4), (2027, 1, 18), Weeks::Every);
        no_day.weekdays.clear();
        assert!(refused(no_day));
        // A school year, every weekday, for ten children in three units.
        let mut huge = period((2026, 9, 1), (2027, 7, 2), Weeks::Every);
        huge.child_ids = (0..10).map(Uuid::from_u128).collect();
        assert!(refused(huge));
    }
}
