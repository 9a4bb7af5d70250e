//! Consent to join a commune: a guardian creates a code and gives it to the
//! commune (at its desk, by phone); the commune's agent joins the family
//! with it. Without a code an agent learns nothing of a family, not even
//! whether its guardian has an account.
//!
//! A code is twelve characters of Crockford's base32 (60 random bits,
//! grouped in fours: `7KQ2-M9XD-4TRB`), valid for seven days and once; it is
//! kept only as its SHA-256.

use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, Row};
use uuid::Uuid;

use crate::error::{ApiError, ErrorCode};

/// How long a code may wait for the commune.
pub const VALID_FOR: Duration = Duration::days(7);
/// Crockford's base32: no I, L, O or U, so a code read aloud or copied by
/// hand is not mistaken.
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A new code, as the guardian reads it.
fn new_code() -> String {
    let bits: u64 = rand::random::<u64>() >> 4;
    let chars: Vec<char> = (0..12)
        .map(|i| ALPHABET[((bits >> (55 - 5 * i)) & 31) as usize] as char)
        .collect();
    chars
        .chunks(4)
        .map(|c| c.iter().collect::<String>())
        .collect::<Vec<_>>()
        .join("-")
}

/// A code as typed back: case, spaces and dashes do not matter, and the
/// letters Crockford reads as digits are read so.
fn normalised(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(64)
        .map(|c| match c.to_ascii_uppercase() {
            'O' => '0',
            'I' | 'L' => '1',
            other => other,
        })
        .collect()
}

fn hash_of(code: &str) -> Vec<u8> {
    Sha256::digest(normalised(code).as_bytes()).to_vec()
}

/// Creates a code for the family; the code and when it expires.
pub async fn create(
    conn: &mut PgConnection,
    family_id: Uuid,
    created_by: Uuid,
) -> Result<(String, DateTime<Utc>), ApiError> {
    let code = new_code();
    let expires_at = Utc::now() + VALID_FOR;
    sqlx::query(
        "INSERT INTO family_join_codes (code_hash, family_id, created_by, expires_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(hash_of(&code))
    .bind(family_id)
    .bind(created_by)
    .bind(expires_at)
    .execute(&mut *conn)
    .await?;
    Ok((code, expires_at))
}

/// Uses a code inside the caller's transaction (its row stays locked until
/// the commit, so two agents race to one winner): the family it lets
/// `collectivity_id` join. One answer, `INVALID_TOKEN`, for a code unknown,
/// used or expired.
pub async fn consume(conn: &mut PgConnection, code: &str, collectivity_id: Uuid) -> Result<Uuid, ApiError> {
    let row = sqlx::query(
        "UPDATE family_join_codes SET used_at = now(), collectivity_id = $2
         WHERE code_hash = $1 AND used_at IS NULL AND expires_at > now()
         RETURNING family_id",
    )
    .bind(hash_of(code))
    .bind(collectivity_id)
    .fetch_optional(&mut *conn)
    .await?;
    match row {
        Some(row) => Ok(row.try_get("family_id")?),
        None => Err(ApiError::refused(
            ErrorCode::InvalidToken,
            &crate::i18n::say("api.invalid_join_code", &[]),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_reads_back_whatever_its_case_and_dashes() {
        let code = new_code();
        assert_eq!(code.len(), 14, "{code}");
        assert_eq!(hash_of(&code), hash_of(&code.to_lowercase().replace('-', " ")));
        assert_ne!(new_code(), code);
    }

    #[test]
    fn letters_read_as_digits_are_taken_as_digits() {
        assert_eq!(normalised("o1l-I0"), "01110");
    }
}
