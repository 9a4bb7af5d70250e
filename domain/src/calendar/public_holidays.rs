//! French public holidays (jours fériés), computed for any year: the fixed
//! ones, those that follow Easter, and the two more of Alsace-Moselle.

#[allow(unused_imports)]
use super::*;

/// A public holiday: its day and its name, as a parent reads it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct NamedDay {
    pub date: NaiveDate,
    pub name: String,
}

/// The départements where the local law of Alsace-Moselle adds Good Friday
/// and 26 December: Bas-Rhin, Haut-Rhin, Moselle.
pub const ALSACE_MOSELLE: [&str; 3] = ["67", "68", "57"];

/// Easter Sunday of a Gregorian year (the anonymous algorithm published by
/// Meeus), for the years 1583 to 4099.
pub fn easter(year: i32) -> NaiveDate {
    let a = year % 19;
    let b = year / 100;
    let c = year % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    NaiveDate::from_ymd_opt(year, month as u32, day as u32).expect("Easter falls in March or April")
}

/// The public holidays of a calendar year, in date order; with Good Friday
/// and 26 December in Alsace-Moselle.
pub fn public_holidays(year: i32, alsace_moselle: bool) -> Vec<NamedDay> {
    // Easter's computation holds for the Gregorian years 1583 to 4099.
    if !(1583..=4099).contains(&year) {
        return Vec::new();
    }
    let day = |month, day| NaiveDate::from_ymd_opt(year, month, day).expect("a fixed holiday");
    let easter = easter(year);
    let mut days = vec![
        (day(1, 1), "Jour de l'an"),
        (easter + Duration::days(1), "Lundi de Pâques"),
        (day(5, 1), "Fête du Travail"),
        (day(5, 8), "Victoire 1945"),
        (easter + Duration::days(39), "Ascension"),
        (easter + Duration::days(50), "Lundi de Pentecôte"),
        (day(7, 14), "Fête nationale"),
        (day(8, 15), "Assomption"),
        (day(11, 1), "Toussaint"),
        (day(11, 11), "Armistice 1918"),
        (day(12, 25), "Noël"),
    ];
    if alsace_moselle {
        days.push((easter - Duration::days(2), "Vendredi saint"));
        days.push((day(12, 26), "Saint-Étienne"));
    }
    let mut days: Vec<NamedDay> = days
        .into_iter()
        .map(|(date, name)| NamedDay {
            date,
            name: name.to_string(),
        })
        .collect();
    days.sort();
    days
}

/// The public holidays of a school year, 1 September to 31 August.
pub fn public_holidays_of(year: SchoolYear, alsace_moselle: bool) -> Vec<NamedDay> {
    let (first, last) = year.bounds();
    [Some(year.0), year.0.checked_add(1)]
        .into_iter()
        .flatten()
        .flat_map(|calendar_year| public_holidays(calendar_year, alsace_moselle))
        .filter(|day| first <= day.date && day.date <= last)
        .collect()
}
