//! The clock parents and agents read: Europe/Paris.

#[allow(unused_imports)]
use super::*;

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

/// An instant with the offset Paris had then: `2026-03-10T12:00:00+01:00`,
/// as the portal shows deadlines.
/// The day it is in Paris at `instant`.
pub fn paris_today(instant: DateTime<Utc>) -> NaiveDate {
    in_paris(instant).date_naive()
}

pub fn in_paris(instant: DateTime<Utc>) -> DateTime<chrono::FixedOffset> {
    instant.with_timezone(&Paris).fixed_offset()
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
