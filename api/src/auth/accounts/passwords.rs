//! Passwords: the rules a new one must follow, and argon2id hashing, one
//! hash per core at a time.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

use crate::error::ApiError;

/// The shortest password accepted.
pub const MIN_PASSWORD_LENGTH: usize = 12;
/// The longest: a passphrase fits, a megabyte sent to keep the hasher busy
/// does not.
pub const MAX_PASSWORD_LENGTH: usize = 256;

/// Passwords too common to accept, whatever their length (compared
/// lower-case, spaces ignored).
const COMMON_PASSWORDS: &[&str] = &[
    "123456789012",
    "1234567890123",
    "azertyuiopqs",
    "azertyuiop123",
    "qwertyuiop123",
    "motdepasse123",
    "motdepasse1234",
    "monmotdepasse",
    "password1234",
    "password12345",
    "passwordpassword",
    "iloveyou1234",
    "jetaime123456",
    "soleil123456",
    "bonjour123456",
    "marseille1313",
    "doudou123456",
    "chouchou1234",
    "000000000000",
    "111111111111",
    "aaaaaaaaaaaa",
    "abcdefghijkl",
    "abcdef123456",
    "qwerty123456",
    "azerty123456",
    "changezmoi123",
    "changeme1234",
    "welcome12345",
    "bienvenue123",
    "espacefamille",
    "espacefamille1",
];

/// Why a new password is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum PasswordRefusal {
    #[error("a password needs at least {MIN_PASSWORD_LENGTH} characters")]
    TooShort,
    #[error("a password has at most {MAX_PASSWORD_LENGTH} characters")]
    TooLong,
    #[error("a password cannot contain a NUL character")]
    NulCharacter,
    #[error("this password is too common; choose another")]
    TooCommon,
    #[error("a password cannot be the e-mail address")]
    IsTheEmail,
}

impl PasswordRefusal {
    /// The reason in the language of the request being served (French
    /// outside one: the links' pages).
    pub fn said(self) -> String {
        use crate::i18n::say;
        match self {
            PasswordRefusal::TooShort => say("password.too_short", &[("min", &MIN_PASSWORD_LENGTH)]),
            PasswordRefusal::TooLong => say("password.too_long", &[("max", &MAX_PASSWORD_LENGTH)]),
            PasswordRefusal::NulCharacter => say("password.nul_character", &[]),
            PasswordRefusal::TooCommon => say("password.too_common", &[]),
            PasswordRefusal::IsTheEmail => say("password.is_the_email", &[]),
        }
    }
}

impl From<PasswordRefusal> for ApiError {
    fn from(refusal: PasswordRefusal) -> ApiError {
        ApiError::Validation(refusal.said())
    }
}

/// Checks a new password; the reason it is refused, if it is.
pub fn check_password(password: &str, email: &str) -> Result<(), PasswordRefusal> {
    if password.chars().count() < MIN_PASSWORD_LENGTH {
        return Err(PasswordRefusal::TooShort);
    }
    if password.chars().count() > MAX_PASSWORD_LENGTH {
        return Err(PasswordRefusal::TooLong);
    }
    if password.contains('\0') {
        return Err(PasswordRefusal::NulCharacter);
    }
    let folded: String = password
        .to_lowercase()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    if COMMON_PASSWORDS.contains(&folded.as_str()) {
        return Err(PasswordRefusal::TooCommon);
    }
    if folded == email.trim().to_lowercase() {
        return Err(PasswordRefusal::IsTheEmail);
    }
    Ok(())
}

/// Password hashing runs on at most one blocking thread per core: a login
/// rush must queue for the CPU, not start hundreds of 19 MiB hashes at once.
pub(super) async fn with_hashing_slot<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    use std::sync::OnceLock;
    use tokio::sync::Semaphore;
    static SLOTS: OnceLock<Semaphore> = OnceLock::new();
    let slots = SLOTS
        .get_or_init(|| Semaphore::new(std::thread::available_parallelism().map(usize::from).unwrap_or(2)));
    let _slot = slots
        .acquire()
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))
}

/// argon2id with the crate's recommended parameters.
pub fn hash_password(password: &str) -> Result<String, ApiError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| ApiError::Internal(format!("password hashing failed: {e}")))
}

pub(super) fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A hash to verify against when the e-mail is unknown, so that a login
/// takes as long whether the account exists or not.
pub(super) fn decoy_hash() -> &'static str {
    use std::sync::OnceLock;
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy password, never valid").unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_refuses_short_common_or_email_passwords() {
        assert_eq!(check_password("court", "a@b.fr"), Err(PasswordRefusal::TooShort));
        assert_eq!(
            check_password("MotDePasse 123", "a@b.fr"),
            Err(PasswordRefusal::TooCommon)
        );
        assert_eq!(
            check_password("claire.martin@example.fr", "Claire.Martin@example.fr"),
            Err(PasswordRefusal::IsTheEmail)
        );
        assert!(check_password("cheval-agrafe-batterie", "a@b.fr").is_ok());
    }

    #[test]
    fn a_password_verifies_against_its_own_hash_only() {
        let hash = hash_password("cheval-agrafe-batterie").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("cheval-agrafe-batterie", &hash));
        assert!(!verify_password("cheval-agrafe-batteries", &hash));
    }
}
