//! Crypto-shredding of personal data in events.
//!
//! The domain marks each personal value `{"personal": value}` (see
//! `espace_famille_domain::personal`). Before a family's event is written,
//! every such value is encrypted with the family's own key (AES-256-GCM, the
//! family id as associated data, so a value cannot be moved to another
//! family) and stored as `{"sealed": "<base64 nonce + ciphertext>"}`. Reading
//! opens it again with the key, or, once the key is erased, yields
//! `{"personal_erased": true}`. Deleting one row of `family_keys` makes every
//! personal value of the family unreadable without rewriting an event.

use aes_gcm::aead::{Aead, KeyInit, OsRng, Payload};
use aes_gcm::{AeadCore, Aes256Gcm, Key, Nonce};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use espace_famille_domain::personal::{ERASED_KEY, PERSONAL_KEY};
use serde_json::{json, Value};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::error::StoreError;

const SEALED_KEY: &str = "sealed";
const NONCE_LEN: usize = 12;

/// A family's data key.
#[derive(Clone)]
pub struct FamilyKey {
    family_id: Uuid,
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for FamilyKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "FamilyKey({})", self.family_id)
    }
}

impl FamilyKey {
    pub fn from_bytes(family_id: Uuid, bytes: &[u8]) -> Result<FamilyKey, StoreError> {
        if bytes.len() != 32 {
            return Err(StoreError::Corrupt(format!(
                "family {family_id}: the key is not 32 bytes"
            )));
        }
        Ok(FamilyKey {
            family_id,
            cipher: Aes256Gcm::new(Key::<Aes256Gcm>::from_slice(bytes)),
        })
    }

    fn seal_value(&self, value: &Value) -> Result<Value, StoreError> {
        let plaintext = serde_json::to_vec(value).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let nonce = Aes256Gcm::generate_nonce(&mut OsRng);
        let ciphertext = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: &plaintext,
                    aad: self.family_id.as_bytes(),
                },
            )
            .map_err(|_| StoreError::Corrupt("encryption failed".into()))?;
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&ciphertext);
        Ok(json!({ SEALED_KEY: BASE64.encode(sealed) }))
    }

    fn open_value(&self, sealed: &str) -> Result<Value, StoreError> {
        let corrupt = || {
            StoreError::Corrupt(format!(
                "family {}: a sealed value cannot be opened",
                self.family_id
            ))
        };
        let bytes = BASE64.decode(sealed).map_err(|_| corrupt())?;
        if bytes.len() < NONCE_LEN {
            return Err(corrupt());
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let plaintext = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: self.family_id.as_bytes(),
                },
            )
            .map_err(|_| corrupt())?;
        serde_json::from_slice(&plaintext).map_err(|_| corrupt())
    }
}

fn single_entry<'a>(map: &'a serde_json::Map<String, Value>, key: &str) -> Option<&'a Value> {
    (map.len() == 1).then(|| map.get(key)).flatten()
}

/// Whether a payload holds any personal value still in clear.
pub fn has_personal(value: &Value) -> bool {
    match value {
        Value::Object(map) => single_entry(map, PERSONAL_KEY).is_some() || map.values().any(has_personal),
        Value::Array(items) => items.iter().any(has_personal),
        _ => false,
    }
}

/// Encrypts every personal value of a payload in place.
pub fn seal(value: &mut Value, key: &FamilyKey) -> Result<(), StoreError> {
    match value {
        Value::Object(map) => {
            if let Some(inner) = single_entry(map, PERSONAL_KEY) {
                *value = key.seal_value(inner)?;
                return Ok(());
            }
            for child in map.values_mut() {
                seal(child, key)?;
            }
        }
        Value::Array(items) => {
            for child in items {
                seal(child, key)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Decrypts every sealed value of a payload in place; without a key (the
/// family was erased) each becomes `{"personal_erased": true}`.
pub fn open(value: &mut Value, key: Option<&FamilyKey>) -> Result<(), StoreError> {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(sealed)) = single_entry(map, SEALED_KEY) {
                *value = match key {
                    Some(key) => json!({ PERSONAL_KEY: key.open_value(sealed)? }),
                    None => json!({ ERASED_KEY: true }),
                };
                return Ok(());
            }
            for child in map.values_mut() {
                open(child, key)?;
            }
        }
        Value::Array(items) => {
            for child in items {
                open(child, key)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// The family's key, if it still exists.
pub async fn family_key(conn: &mut PgConnection, family_id: Uuid) -> Result<Option<FamilyKey>, StoreError> {
    let bytes: Option<Vec<u8>> = sqlx::query_scalar("SELECT key FROM family_keys WHERE family_id = $1")
        .bind(family_id)
        .fetch_optional(&mut *conn)
        .await?;
    bytes.map(|b| FamilyKey::from_bytes(family_id, &b)).transpose()
}

/// The key that seals a stream's personal values (a family's own, or its
/// request's: see `stream_family`), if it still exists.
pub async fn stream_key(
    conn: &mut PgConnection,
    aggregate_type: &str,
    aggregate_id: &str,
) -> Result<Option<FamilyKey>, StoreError> {
    let found: Option<(Uuid, Vec<u8>)> = sqlx::query_as(
        "SELECT k.family_id, k.key FROM family_keys k WHERE k.family_id = stream_family($1, $2)",
    )
    .bind(aggregate_type)
    .bind(aggregate_id)
    .fetch_optional(&mut *conn)
    .await?;
    found
        .map(|(family_id, bytes)| FamilyKey::from_bytes(family_id, &bytes))
        .transpose()
}

/// The keys of these families that still exist, in one statement.
pub async fn family_keys(
    conn: &mut PgConnection,
    family_ids: &[Uuid],
) -> Result<std::collections::HashMap<Uuid, FamilyKey>, StoreError> {
    let rows: Vec<(Uuid, Vec<u8>)> =
        sqlx::query_as("SELECT family_id, key FROM family_keys WHERE family_id = ANY($1)")
            .bind(family_ids)
            .fetch_all(&mut *conn)
            .await?;
    rows.into_iter()
        .map(|(id, bytes)| Ok((id, FamilyKey::from_bytes(id, &bytes)?)))
        .collect()
}

/// The family's key, created on first use. Refused once the family was
/// erased: its personal data must not come back.
pub async fn family_key_for_writing(
    conn: &mut PgConnection,
    family_id: Uuid,
) -> Result<FamilyKey, StoreError> {
    let erased: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM erased_families WHERE family_id = $1)")
            .bind(family_id)
            .fetch_one(&mut *conn)
            .await?;
    if erased {
        return Err(StoreError::Corrupt(format!(
            "family {family_id} was erased: no personal data may be written for it"
        )));
    }
    let fresh: [u8; 32] = rand::random();
    // The key is written just before the family's events: the writers'
    // lock of the projections' fence is taken first, before this write
    // gives the transaction its id, so the fence cannot move between the
    // two (see `engine::fence`) and the events are not refused.
    sqlx::query(
        "INSERT INTO family_keys (family_id, key)
         SELECT $1, $2 FROM (SELECT pg_advisory_xact_lock_shared(4243)) AS fence_lock
         ON CONFLICT (family_id) DO NOTHING",
    )
    .bind(family_id)
    .bind(&fresh[..])
    .execute(&mut *conn)
    .await?;
    family_key(conn, family_id)
        .await?
        .ok_or_else(|| StoreError::Corrupt(format!("family {family_id}: key vanished")))
}

/// Erases the family's key: every personal value of its events becomes
/// unreadable for good.
pub async fn erase_family_key(conn: &mut PgConnection, family_id: Uuid) -> Result<(), StoreError> {
    sqlx::query("DELETE FROM family_keys WHERE family_id = $1")
        .bind(family_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query("INSERT INTO erased_families (family_id) VALUES ($1) ON CONFLICT (family_id) DO NOTHING")
        .bind(family_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(family: u128) -> FamilyKey {
        FamilyKey::from_bytes(Uuid::from_u128(family), &[7u8; 32]).unwrap()
    }

    fn payload() -> Value {
        json!({ "ChildRegistered": { "child": {
            "id": "c", "first_name": { "personal": "Louise" }, "birth_date": { "personal": "2018-04-02" }
        } } })
    }

    #[test]
    fn sealed_payloads_hold_no_personal_value_and_open_back_to_the_original() {
        let mut value = payload();
        assert!(has_personal(&value));
        seal(&mut value, &key(1)).unwrap();
        assert!(!has_personal(&value));
        let text = value.to_string();
        assert!(!text.contains("Louise") && !text.contains("2018-04-02"), "{text}");
        open(&mut value, Some(&key(1))).unwrap();
        assert_eq!(value, payload());
    }

    #[test]
    fn without_the_key_every_personal_value_reads_as_erased() {
        let mut value = payload();
        seal(&mut value, &key(1)).unwrap();
        open(&mut value, None).unwrap();
        assert_eq!(
            value["ChildRegistered"]["child"]["first_name"],
            json!({ "personal_erased": true })
        );
        assert_eq!(value["ChildRegistered"]["child"]["id"], "c");
    }

    #[test]
    fn a_value_sealed_for_one_family_does_not_open_for_another() {
        let mut value = payload();
        seal(&mut value, &key(1)).unwrap();
        assert!(open(&mut value, Some(&key(2))).is_err());
    }
}
