//! The school holidays of the Ministry of Education, per zone, shipped with
//! the project (`domain/data/vacances-scolaires.csv`, its source named in
//! its head).

use std::sync::LazyLock;

#[allow(unused_imports)]
use super::*;

/// A school holiday zone of metropolitan France.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Zone {
    A,
    B,
    C,
}

impl std::str::FromStr for Zone {
    type Err = String;

    fn from_str(text: &str) -> Result<Zone, String> {
        match text.trim() {
            "A" | "a" => Ok(Zone::A),
            "B" | "b" => Ok(Zone::B),
            "C" | "c" => Ok(Zone::C),
            other => Err(format!("la zone {other:?} n'existe pas (A, B ou C)")),
        }
    }
}

/// A named period of days off.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedRange {
    pub range: DateRange,
    pub name: String,
}

/// The shipped data: (zone, period), in file order.
static OFFICIAL: LazyLock<Vec<(Zone, NamedRange)>> = LazyLock::new(|| {
    parse(include_str!("../../data/vacances-scolaires.csv"))
        .expect("the shipped holidays data is well formed")
});

/// Reads the data file: `#` comments, a header, then `zone,first,last,name`.
fn parse(text: &str) -> Result<Vec<(Zone, NamedRange)>, String> {
    let mut periods = Vec::new();
    let lines = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty());
    for (number, line) in lines.enumerate().skip(1) {
        let fields: Vec<&str> = line.splitn(4, ',').collect();
        let [zone, first, last, name] = fields[..] else {
            return Err(format!("line {number}: {line}"));
        };
        let date = |text: &str| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|e| format!("line {number}: {e}"))
        };
        let range = DateRange {
            first: date(first)?,
            last: date(last)?,
        };
        if range.last < range.first {
            return Err(format!("line {number}: the period ends before it starts"));
        }
        periods.push((
            zone.parse()?,
            NamedRange {
                range,
                name: name.to_string(),
            },
        ));
    }
    Ok(periods)
}

/// The school years the shipped data covers, whole.
pub fn official_years() -> std::ops::RangeInclusive<SchoolYear> {
    SchoolYear(2024)..=SchoolYear(2027)
}

/// A zone's school holidays in a school year, in date order, each cut to
/// the year; `None` for a year the shipped data does not cover.
pub fn school_holidays(zone: Zone, year: SchoolYear) -> Option<Vec<NamedRange>> {
    if !official_years().contains(&year) {
        return None;
    }
    let (first, last) = year.bounds();
    Some(
        OFFICIAL
            .iter()
            .filter(|(z, period)| *z == zone && period.range.first <= last && period.range.last >= first)
            .map(|(_, period)| NamedRange {
                range: DateRange {
                    first: period.range.first.max(first),
                    last: period.range.last.min(last),
                },
                name: period.name.clone(),
            })
            .collect(),
    )
}

#[cfg(test)]
pub(super) fn parse_for_tests(text: &str) -> Result<usize, String> {
    parse(text).map(|periods| periods.len())
}
