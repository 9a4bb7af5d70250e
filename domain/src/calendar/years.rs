//! School years, from September to August.

#[allow(unused_imports)]
use super::*;

/// A school year, named by the calendar year in which it starts: 2026 is
/// 1 September 2026 to 31 August 2027.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SchoolYear(pub i32);

impl SchoolYear {
    /// Its first and last days: 1 September and 31 August.
    pub fn bounds(self) -> (NaiveDate, NaiveDate) {
        (
            NaiveDate::from_ymd_opt(self.0, 9, 1).unwrap_or(NaiveDate::MIN),
            NaiveDate::from_ymd_opt(self.0.saturating_add(1), 8, 31).unwrap_or(NaiveDate::MAX),
        )
    }

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
