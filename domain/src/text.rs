//! Bounds on the values people type: every string that enters an event is
//! trimmed, free of control characters and no longer than its field allows;
//! every date lies in the years the product serves.
//!
//! The aggregates apply these checks in `handle`, so no event can be stored
//! that a projection (PostgreSQL's `text` refuses NUL, for one) or a reader
//! cannot take back; the API checks the same bounds before it runs anything.

use chrono::{Datelike, NaiveDate};

/// The longest name of a person, a commune, a service or a unit.
pub const NAME: usize = 100;
/// The longest free text an agent writes on a decision.
pub const COMMENT: usize = 1_000;
/// The longest e-mail address (RFC 5321's path limit).
pub const EMAIL: usize = 254;
/// The longest reference a commune gives a family, a phone number, a class.
pub const REFERENCE: usize = 64;
/// The longest school and class ("École Jules Ferry, CE1").
pub const SCHOOL_CLASS: usize = 200;

/// The first and last years a date may fall in: the product books days,
/// it does not plan centuries (and date arithmetic stays far from chrono's
/// limits).
pub const FIRST_YEAR: i32 = 2000;
pub const LAST_YEAR: i32 = 2100;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("{field} cannot be empty")]
    Empty { field: &'static str },
    #[error("{field} is longer than {max} characters")]
    TooLong { field: &'static str, max: usize },
    #[error("{field} contains a control character")]
    ControlCharacter { field: &'static str },
    #[error("{field} must fall between {FIRST_YEAR} and {LAST_YEAR}")]
    OutOfRange { field: &'static str },
}

/// `value` trimmed, when it is not empty, fits in `max` characters and holds
/// no control character (NUL, escape, line breaks: none belongs in a name).
pub fn required(field: &'static str, value: &str, max: usize) -> Result<String, TextError> {
    let value = optional(field, Some(value), max)?;
    value.ok_or(TextError::Empty { field })
}

/// As [`required`], an empty or absent value being `None`.
pub fn optional(field: &'static str, value: Option<&str>, max: usize) -> Result<Option<String>, TextError> {
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if value.chars().any(char::is_control) {
        return Err(TextError::ControlCharacter { field });
    }
    if value.chars().count() > max {
        return Err(TextError::TooLong { field, max });
    }
    Ok(Some(value.to_string()))
}

/// As [`optional`] for a longer text where line breaks and tabs belong (a
/// comment, a reason): only the other control characters are refused.
pub fn multiline(field: &'static str, value: Option<&str>, max: usize) -> Result<Option<String>, TextError> {
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if value
        .chars()
        .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
    {
        return Err(TextError::ControlCharacter { field });
    }
    if value.chars().count() > max {
        return Err(TextError::TooLong { field, max });
    }
    Ok(Some(value.to_string()))
}

/// `date` when it falls between [`FIRST_YEAR`] and [`LAST_YEAR`].
pub fn date(field: &'static str, date: NaiveDate) -> Result<NaiveDate, TextError> {
    year(field, date.year()).map(|_| date)
}

/// `year` when it lies between [`FIRST_YEAR`] and [`LAST_YEAR`].
pub fn year(field: &'static str, year: i32) -> Result<i32, TextError> {
    if (FIRST_YEAR..=LAST_YEAR).contains(&year) {
        Ok(year)
    } else {
        Err(TextError::OutOfRange { field })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_trimmed_and_kept() {
        assert_eq!(required("a name", "  Louise ", NAME), Ok("Louise".to_string()));
        assert_eq!(optional("a class", Some("   "), NAME), Ok(None));
    }

    #[test]
    fn a_nul_or_any_control_character_is_refused() {
        for bad in ["a\0b", "a\u{1b}b", "a\nb", "a\u{7f}b"] {
            assert_eq!(
                required("a name", bad, NAME),
                Err(TextError::ControlCharacter { field: "a name" })
            );
        }
        assert_eq!(
            multiline("a comment", Some("line\nline"), COMMENT),
            Ok(Some("line\nline".into()))
        );
        assert!(multiline("a comment", Some("a\0b"), COMMENT).is_err());
    }

    #[test]
    fn a_value_longer_than_its_field_is_refused_counting_characters_not_bytes() {
        let accents = "é".repeat(NAME);
        assert!(required("a name", &accents, NAME).is_ok());
        assert_eq!(
            required("a name", &format!("{accents}e"), NAME),
            Err(TextError::TooLong {
                field: "a name",
                max: NAME
            })
        );
    }

    #[test]
    fn dates_and_years_outside_the_served_years_are_refused() {
        assert!(year("a school year", 2026).is_ok());
        assert!(year("a school year", i32::MAX).is_err());
        assert!(date("a day", NaiveDate::MAX).is_err());
        assert!(date("a day", NaiveDate::from_ymd_opt(2100, 12, 31).unwrap()).is_ok());
    }
}
