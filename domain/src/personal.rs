//! Personal data inside events (names, birth dates, e-mail addresses).
//!
//! Events are never rewritten, yet a family may ask to be forgotten (GDPR).
//! So every personal value is wrapped in [`Personal`]: it serialises as
//! `{"personal": value}`, which the event store encrypts with the family's
//! own key before writing. Erasing the family deletes the key; from then on
//! the store reads the value back as `{"personal_erased": true}`, which
//! deserialises to [`Personal::Erased`]. History still replays; the values
//! are gone.

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The key under which a personal value travels in an event's JSON.
pub const PERSONAL_KEY: &str = "personal";
/// The key that marks a value whose family key was erased.
pub const ERASED_KEY: &str = "personal_erased";

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Personal<T> {
    Known(T),
    /// The family's key was erased: the value can no longer be read.
    Erased,
}

impl<T> Personal<T> {
    pub fn known(&self) -> Option<&T> {
        match self {
            Personal::Known(value) => Some(value),
            Personal::Erased => None,
        }
    }
}

impl<T> From<T> for Personal<T> {
    fn from(value: T) -> Self {
        Personal::Known(value)
    }
}

impl From<&str> for Personal<String> {
    fn from(value: &str) -> Self {
        Personal::Known(value.to_string())
    }
}

impl<T: Serialize> Serialize for Personal<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(1))?;
        match self {
            Personal::Known(value) => map.serialize_entry(PERSONAL_KEY, value)?,
            Personal::Erased => map.serialize_entry(ERASED_KEY, &true)?,
        }
        map.end()
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for Personal<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut map = serde_json::Map::deserialize(deserializer)?;
        if let Some(value) = map.remove(PERSONAL_KEY) {
            return serde_json::from_value(value)
                .map(Personal::Known)
                .map_err(D::Error::custom);
        }
        if map.contains_key(ERASED_KEY) {
            return Ok(Personal::Erased);
        }
        Err(D::Error::custom(
            "a personal value must be {\"personal\": ...} or {\"personal_erased\": true}",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_personal_value_is_marked_so_the_store_can_find_and_encrypt_it() {
        let value = Personal::Known("Louise".to_string());
        let json = serde_json::to_value(&value).unwrap();
        assert_eq!(json, serde_json::json!({ "personal": "Louise" }));
        assert_eq!(serde_json::from_value::<Personal<String>>(json).unwrap(), value);
    }

    #[test]
    fn an_erased_value_reads_back_as_erased() {
        let json = serde_json::json!({ "personal_erased": true });
        assert_eq!(
            serde_json::from_value::<Personal<String>>(json).unwrap(),
            Personal::Erased
        );
    }

    #[test]
    fn a_still_encrypted_value_is_not_mistaken_for_a_known_one() {
        let json = serde_json::json!({ "sealed": "abc" });
        assert!(serde_json::from_value::<Personal<String>>(json).is_err());
    }
}
