//! The language of what a person reads: French by default, English when
//! the request's `Accept-Language` prefers it. Messages come from one
//! catalogue (`api/locales/messages.yml`, compiled in by rust-i18n); this
//! module picks the request's language and renders dates, amounts and
//! closed reasons from it; [`refusals`] renders the domain's refusals.

use std::future::Future;

use chrono::{DateTime, NaiveDate, Utc, Weekday};
use espace_famille_domain::calendar::{in_paris, ClosedReason};
use rust_i18n::t;

mod refusals;
pub use refusals::*;

/// A language messages are written in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Locale {
    #[default]
    Fr,
    En,
}

impl Locale {
    pub fn code(self) -> &'static str {
        match self {
            Locale::Fr => "fr",
            Locale::En => "en",
        }
    }

    /// The language an `Accept-Language` header prefers among ours
    /// (`en-GB,en;q=0.9,fr;q=0.5` → English); French when it names none
    /// of them, or is absent or malformed.
    pub fn from_accept_language(header: Option<&str>) -> Locale {
        let Some(header) = header else {
            return Locale::Fr;
        };
        let mut best: Option<(f32, usize, Locale)> = None;
        for (index, range) in header.split(',').take(32).enumerate() {
            let mut parts = range.split(';');
            let tag = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            let quality = parts
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let primary = tag.split('-').next().unwrap_or_default();
            let locale = match primary {
                "fr" => Locale::Fr,
                "en" => Locale::En,
                _ => continue,
            };
            if quality <= 0.0 || !quality.is_finite() {
                continue;
            }
            // The highest quality wins; between equals, the first listed.
            if best.is_none_or(|(q, i, _)| quality > q || (quality == q && index < i)) {
                best = Some((quality, index, locale));
            }
        }
        best.map_or(Locale::Fr, |(_, _, locale)| locale)
    }
}

tokio::task_local! {
    static LOCALE: Locale;
}

/// The language of the request being served; French outside one.
pub fn current() -> Locale {
    LOCALE.try_with(|locale| *locale).unwrap_or_default()
}

/// Runs `work` (a request's execution) with messages in `locale`.
pub async fn within<F: Future>(locale: Locale, work: F) -> F::Output {
    LOCALE.scope(locale, work).await
}

/// A message of the catalogue in the language of the request being
/// served, its `%{name}`s filled with `values`.
pub fn say(key: &str, values: &[(&str, &dyn std::fmt::Display)]) -> String {
    let template = t!(key, locale = current().code());
    let names: Vec<&str> = values.iter().map(|(name, _)| *name).collect();
    let filled: Vec<String> = values.iter().map(|(_, value)| value.to_string()).collect();
    rust_i18n::replace_patterns(&template, &names, &filled)
}

/// A day as a person reads it: "lundi 7 décembre 2026", "Monday 7 December 2026".
pub fn day(date: NaiveDate, locale: Locale) -> String {
    match locale {
        Locale::Fr => crate::mail::french_date(date),
        Locale::En => date.format("%A %-d %B %Y").to_string(),
    }
}

/// An instant, in Paris time: "jeudi 3 décembre 2026 à 12:00".
pub fn instant(at: DateTime<Utc>, locale: Locale) -> String {
    let paris = in_paris(at);
    let time = paris.format("%H:%M");
    match locale {
        Locale::Fr => format!("{} à {time}", day(paris.date_naive(), locale)),
        Locale::En => format!("{} at {time}", day(paris.date_naive(), locale)),
    }
}

pub fn weekday(day: Weekday, locale: Locale) -> String {
    let key = match day {
        Weekday::Mon => "weekday.mon",
        Weekday::Tue => "weekday.tue",
        Weekday::Wed => "weekday.wed",
        Weekday::Thu => "weekday.thu",
        Weekday::Fri => "weekday.fri",
        Weekday::Sat => "weekday.sat",
        Weekday::Sun => "weekday.sun",
    };
    t!(key, locale = locale.code()).into_owned()
}

/// Why a unit does not run on a day.
pub fn closed_reason(reason: &ClosedReason, locale: Locale) -> String {
    let l = locale.code();
    match reason {
        ClosedReason::CalendarNotPublished(year) => {
            t!(
                "closed.calendar_not_published",
                locale = l,
                year = year.to_string()
            )
        }
        ClosedReason::Closed(why) => t!("closed.by_commune", locale = l, reason = why),
        ClosedReason::ClosedWeekday(day) => t!("closed.weekday", locale = l, day = weekday(*day, locale)),
        ClosedReason::PublicHoliday => t!("closed.public_holiday", locale = l),
        ClosedReason::SchoolHolidays => t!("closed.school_holidays", locale = l),
        ClosedReason::SchoolTerm => t!("closed.school_term", locale = l),
    }
    .into_owned()
}

/// A field the domain names in English ("a first name"), in `locale`.
pub fn field(name: &str, locale: Locale) -> String {
    let slug: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    let key = format!("field.{slug}");
    let found = t!(&key, locale = locale.code());
    // A field the catalogue lacks is named as the domain names it.
    if found == key || found.ends_with(&key) {
        name.to_string()
    } else {
        found.into_owned()
    }
}

/// An amount in euros as a person reads it: "12,50 €".
pub fn euros(cents: i64, locale: Locale) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let (whole, rest) = (cents.abs() / 100, cents.abs() % 100);
    match locale {
        Locale::Fr => format!("{sign}{whole},{rest:02} €"),
        Locale::En => format!("{sign}€{whole}.{rest:02}"),
    }
}

/// A roll call's refusal, naming the child it is about.
pub fn about_child(child_id: uuid::Uuid, message: &str, locale: Locale) -> String {
    t!(
        "refusal.child_in_roll_call",
        locale = locale.code(),
        id = child_id,
        message = message
    )
    .into_owned()
}

/// A slot's state as the parent reads it, with its place on the waiting
/// list ("liste d'attente, 3e").
pub fn slot_label(
    state: &str,
    waiting: Option<u32>,
    allocation_at: Option<chrono::DateTime<chrono::Utc>>,
    locale: Locale,
) -> String {
    let l = locale.code();
    match (waiting, allocation_at) {
        (Some(position), _) => t!(
            "slot.wait_listed_at",
            locale = l,
            position = ordinal(position, locale)
        ),
        (None, Some(at)) if state == "allocation_pending" => {
            t!("slot.allocation_pending_at", locale = l, at = instant(at, locale))
        }
        _ => t!(format!("slot.{state}"), locale = l),
    }
    .into_owned()
}

/// `n` as a rank: 1er, 2e... in French; 1st, 2nd... in English.
pub fn ordinal(n: u32, locale: Locale) -> String {
    match locale {
        Locale::Fr if n == 1 => "1er".to_string(),
        Locale::Fr => format!("{n}e"),
        Locale::En => {
            let suffix = match (n % 10, n % 100) {
                (_, 11..=13) => "th",
                (1, _) => "st",
                (2, _) => "nd",
                (3, _) => "rd",
                _ => "th",
            };
            format!("{n}{suffix}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use espace_famille_domain::calendar::SchoolYear;
    use espace_famille_domain::reservation::ReservationError;
    use espace_famille_domain::text::TextError;
    use uuid::Uuid;

    #[test]
    fn the_request_chooses_english_else_french() {
        let of = |h: &str| Locale::from_accept_language(Some(h));
        assert_eq!(Locale::from_accept_language(None), Locale::Fr);
        assert_eq!(of("en-GB,en;q=0.9,fr;q=0.5"), Locale::En);
        assert_eq!(of("fr-FR,fr;q=0.9,en;q=0.8"), Locale::Fr);
        assert_eq!(of("de-DE,en;q=0.3"), Locale::En);
        assert_eq!(of("de-DE"), Locale::Fr);
        assert_eq!(of("fr;q=0.2, en;q=0.7"), Locale::En);
        assert_eq!(of("en;q=0, fr"), Locale::Fr);
        assert_eq!(of("*"), Locale::Fr);
        assert_eq!(
            of(";;;,q=,en;q=abc"),
            Locale::En,
            "a malformed quality counts as 1"
        );
    }

    /// Every refusal reads in both languages, from the catalogue: no key
    /// left unrendered, no English in the French.
    #[test]
    fn every_refusal_and_closed_reason_reads_in_french_and_in_english() {
        let date = NaiveDate::from_ymd_opt(2026, 12, 7).unwrap();
        let at: DateTime<Utc> = "2026-12-03T11:00:00Z".parse().unwrap();
        let reasons = [
            ClosedReason::CalendarNotPublished(SchoolYear(2028)),
            ClosedReason::Closed("grève".into()),
            ClosedReason::ClosedWeekday(Weekday::Wed),
            ClosedReason::PublicHoliday,
            ClosedReason::SchoolHolidays,
            ClosedReason::SchoolTerm,
        ];
        let errors = [
            ReservationError::UnknownUnit(Uuid::nil()),
            ReservationError::UnknownChild(Uuid::nil()),
            ReservationError::UnitClosed {
                date,
                reason: ClosedReason::PublicHoliday,
            },
            ReservationError::NotEnrolled(SchoolYear(2026)),
            ReservationError::DeadlinePassed(at),
            ReservationError::BookingNotOpen(at),
            ReservationError::AlreadyBooked,
            ReservationError::NotBooked,
            ReservationError::CancellationAlreadyRequested,
            ReservationError::AlreadyCancelled,
            ReservationError::NoPendingCancellation,
            ReservationError::EmptyReason,
            ReservationError::UnknownAbsenceReason("ski".into()),
            ReservationError::AbsenceTooLate(at),
            ReservationError::AbsenceAlreadyReported,
            ReservationError::NoAbsenceReported,
            ReservationError::RollCallTooEarly(date),
            ReservationError::NotInCommune(Uuid::nil()),
            ReservationError::PrepaidNotAvailable,
            ReservationError::AwaitingPayment,
            ReservationError::NotAwaitingPayment,
            ReservationError::DebtLimit {
                owed: 12_050,
                limit: 10_000,
            },
            ReservationError::OtherFamily,
            ReservationError::InvalidText(TextError::TooLong {
                field: "a first name",
                max: 100,
            }),
        ];
        let mut french = Vec::new();
        for locale in [Locale::Fr, Locale::En] {
            let messages: Vec<String> = errors
                .iter()
                .map(|e| reservation_error(e, locale))
                .chain(reasons.iter().map(|r| closed_reason(r, locale)))
                .collect();
            for message in &messages {
                assert!(
                    !message.contains("refusal.") && !message.contains("closed.") && !message.contains("%{"),
                    "{message}"
                );
            }
            if locale == Locale::Fr {
                french = messages.clone();
            } else {
                // Each message is said differently in the two languages,
                // except "closed: grève"'s reason itself.
                for (fr, en) in french.iter().zip(&messages) {
                    assert_ne!(fr, en);
                }
            }
        }
        assert_eq!(
            reservation_error(&ReservationError::DeadlinePassed(at), Locale::Fr),
            "la date limite est passée : jeudi 3 décembre 2026 à 12:00 (heure de Paris)"
        );
        assert_eq!(
            reservation_error(&ReservationError::DeadlinePassed(at), Locale::En),
            "the deadline passed on Thursday 3 December 2026 at 12:00 (Paris time)"
        );
        assert_eq!(
            closed_reason(&ClosedReason::ClosedWeekday(Weekday::Wed), Locale::Fr),
            "le service ne fonctionne pas le mercredi"
        );
        assert_eq!(
            reservation_error(
                &ReservationError::InvalidText(TextError::TooLong {
                    field: "a first name",
                    max: 100
                }),
                Locale::Fr
            ),
            "le prénom : 100 caractères au plus"
        );
        assert_eq!(field("a field nobody named", Locale::Fr), "a field nobody named");
    }

    #[tokio::test]
    async fn a_request_reads_in_its_language_and_nothing_else_does() {
        assert_eq!(current(), Locale::Fr);
        let inside = within(Locale::En, async { current() }).await;
        assert_eq!(inside, Locale::En);
        assert_eq!(current(), Locale::Fr);
    }

    #[test]
    fn the_first_of_the_month_is_1er_in_french() {
        let first = NaiveDate::from_ymd_opt(2026, 12, 1).unwrap();
        assert_eq!(day(first, Locale::Fr), "mardi 1er décembre 2026");
        assert_eq!(day(first, Locale::En), "Tuesday 1 December 2026");
        assert_eq!(
            day(NaiveDate::from_ymd_opt(2026, 12, 2).unwrap(), Locale::Fr),
            "mercredi 2 décembre 2026"
        );
    }

    #[test]
    fn ranks_read_as_each_language_writes_them() {
        let fr: Vec<String> = [1, 2, 3, 11].iter().map(|&n| ordinal(n, Locale::Fr)).collect();
        assert_eq!(fr, ["1er", "2e", "3e", "11e"]);
        let en: Vec<String> = [1, 2, 3, 4, 11, 12, 13, 21, 22, 23, 101]
            .iter()
            .map(|&n| ordinal(n, Locale::En))
            .collect();
        assert_eq!(
            en,
            ["1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "23rd", "101st"]
        );
        assert_eq!(
            slot_label("wait_listed", Some(3), None, Locale::Fr),
            "liste d'attente, 3e"
        );
        assert_eq!(slot_label("booked", None, None, Locale::En), "booked");
        let at = "2027-01-10T19:00:00Z".parse().unwrap();
        assert_eq!(
            slot_label("allocation_pending", None, Some(at), Locale::Fr),
            "demande enregistrée, attribution le dimanche 10 janvier 2027 à 20:00"
        );
    }
}
