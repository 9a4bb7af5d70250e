//! Guardians: what each tells about themself (the portal's "Informations
//! profil"), the checks on it, and how many a family may have.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{personal_optional, personal_text, FamilyError};
use crate::personal::Personal;
use crate::text::{self, TextError};

/// The most guardians a family may have, invited or active (two parents,
/// their new partners): a bound on the e-mails a family can make the
/// commune send.
pub const MAX_GUARDIANS: usize = 4;
/// The longest line of a postal address.
pub const ADDRESS_LINE: usize = 200;
/// The longest postcode (a French one has five digits; a family abroad
/// may have another).
pub const POSTCODE: usize = 10;

/// A postal address, as a letter needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostalAddress {
    /// Number and street ("12 rue des Écoles").
    pub line1: String,
    /// Building, staircase, lieu-dit.
    pub line2: Option<String>,
    pub postcode: String,
    pub city: String,
}

/// What a guardian tells about themself: on activation, then whenever the
/// profile is updated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardianProfile {
    pub first_name: Personal<String>,
    pub last_name: Personal<String>,
    pub phone: Personal<Option<String>>,
    /// Absent from the events recorded before addresses were asked.
    #[serde(default = "no_address")]
    pub address: Personal<Option<PostalAddress>>,
}

fn no_address() -> Personal<Option<PostalAddress>> {
    Personal::Known(None)
}

/// A guardian whose account is active.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Guardian {
    pub account_id: Uuid,
    pub profile: GuardianProfile,
    /// The account's e-mail, as last recorded in the family (none in the
    /// events recorded before it was).
    pub email: Option<Personal<String>>,
}

/// A phone number as people write it: digits, spaces, dots, dashes,
/// brackets and a leading `+`, with 6 to 15 digits.
pub fn is_plausible_phone(phone: &str) -> bool {
    let digits = phone.chars().filter(char::is_ascii_digit).count();
    let allowed = phone
        .char_indices()
        .all(|(i, c)| c.is_ascii_digit() || matches!(c, ' ' | '.' | '-' | '(' | ')') || (c == '+' && i == 0));
    allowed && (6..=15).contains(&digits)
}

fn postcode(value: &str) -> Result<String, FamilyError> {
    let value = text::required("a postcode", value, POSTCODE).map_err(|error| match error {
        TextError::Empty { .. } => FamilyError::InvalidAddress("a postcode is needed".into()),
        other => other.into(),
    })?;
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == ' ' || c == '-')
    {
        return Err(FamilyError::InvalidAddress(format!(
            "'{}' is not a postcode",
            value.escape_debug()
        )));
    }
    Ok(value)
}

fn address(address: PostalAddress) -> Result<PostalAddress, FamilyError> {
    let required = |field: &'static str, value: &str, max: usize| {
        text::required(field, value, max).map_err(|error| match error {
            TextError::Empty { field } => FamilyError::InvalidAddress(format!("{field} is needed")),
            other => other.into(),
        })
    };
    Ok(PostalAddress {
        line1: required("the street", &address.line1, ADDRESS_LINE)?,
        line2: text::optional(
            "the address's second line",
            address.line2.as_deref(),
            ADDRESS_LINE,
        )?,
        postcode: postcode(&address.postcode)?,
        city: required("the city", &address.city, text::NAME)?,
    })
}

/// The profile, trimmed and checked: names required, a plausible phone,
/// a complete address (or none).
pub(super) fn checked(mut profile: GuardianProfile) -> Result<GuardianProfile, FamilyError> {
    profile.first_name = personal_text(
        "a first name",
        profile.first_name,
        text::NAME,
        FamilyError::EmptyGuardianName,
    )?;
    profile.last_name = personal_text(
        "a last name",
        profile.last_name,
        text::NAME,
        FamilyError::EmptyGuardianName,
    )?;
    profile.phone = personal_optional("a phone number", profile.phone, text::REFERENCE)?;
    if let Personal::Known(Some(phone)) = &profile.phone {
        if !is_plausible_phone(phone) {
            return Err(FamilyError::InvalidPhone(phone.escape_debug().to_string()));
        }
    }
    profile.address = match profile.address {
        Personal::Known(Some(given)) => Personal::Known(Some(address(given)?)),
        other => other,
    };
    Ok(profile)
}
