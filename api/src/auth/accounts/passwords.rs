//! Passwords: the rules a new one must follow, and argon2id hashing, one
//! hash per core at a time.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

use crate::error::{ApiError, ErrorCode};

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
/// The queue itself is bounded: past about a second of hashing waiting,
/// a login is answered `OVERLOADED` at once, so that waiting logins do not
/// fill every request slot and shed the baskets of parents already in.
pub(super) async fn with_hashing_slot<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    hashing_place()?.run(work).await
}

/// A place in the hashing queue, or `OVERLOADED` when it is full.
pub(super) fn hashing_place() -> Result<Place<'static>, ApiError> {
    hashing_queue().enter()
}

/// Whether the hashing queue has a place now (none is taken): a login
/// refused at once when it has not writes nothing.
pub(super) fn hashing_room() -> bool {
    hashing_queue().has_room()
}

/// What a login refused for want of a place in the queue reads.
pub(super) fn overloaded() -> ApiError {
    ApiError::refused(ErrorCode::Overloaded, &crate::i18n::say("api.overloaded", &[]))
}

fn hashing_queue() -> &'static HashingQueue {
    use std::sync::OnceLock;
    static QUEUE: OnceLock<HashingQueue> = OnceLock::new();
    let cores = std::thread::available_parallelism().map(usize::from).unwrap_or(2);
    // A hash takes about 35 ms of a core: 32 a core wait about a second.
    QUEUE.get_or_init(|| HashingQueue::new(cores, 32 * cores))
}

/// Hashing slots, and how many may wait for one.
struct HashingQueue {
    slots: tokio::sync::Semaphore,
    slot_count: usize,
    /// Places taken: hashing or waiting to.
    waiting: std::sync::atomic::AtomicUsize,
    max_waiting: usize,
}

/// One hash's place in its queue, held from `enter` until it runs.
pub(super) struct Place<'q> {
    queue: &'q HashingQueue,
}

impl HashingQueue {
    fn new(slots: usize, max_waiting: usize) -> HashingQueue {
        HashingQueue {
            slots: tokio::sync::Semaphore::new(slots),
            slot_count: slots,
            waiting: Default::default(),
            max_waiting,
        }
    }

    /// Those hashing count too: the slots plus the waiting room.
    fn bound(&self) -> usize {
        self.max_waiting + self.slot_count
    }

    fn has_room(&self) -> bool {
        self.waiting.load(std::sync::atomic::Ordering::Relaxed) < self.bound()
    }

    fn enter(&self) -> Result<Place<'_>, ApiError> {
        use std::sync::atomic::Ordering;
        if self.waiting.fetch_add(1, Ordering::Relaxed) >= self.bound() {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            return Err(overloaded());
        }
        Ok(Place { queue: self })
    }
}

impl Place<'_> {
    /// Waits for a slot, then hashes on a blocking thread.
    pub(super) async fn run<T: Send + 'static>(
        self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let slot = self
            .queue
            .slots
            .acquire()
            .await
            .map_err(|e| ApiError::Internal(e.to_string()))?;
        let done = tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| ApiError::Internal(e.to_string()));
        drop(slot);
        done
    }
}

impl Drop for Place<'_> {
    fn drop(&mut self) {
        self.queue
            .waiting
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
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
    #[tokio::test]
    async fn past_its_waiting_room_the_hashing_queue_answers_overloaded_at_once() {
        let queue = std::sync::Arc::new(super::HashingQueue::new(1, 2));
        let (release, held) = std::sync::mpsc::channel::<()>();
        let held = std::sync::Arc::new(std::sync::Mutex::new(held));
        // One hashes (held), two wait: the queue is full.
        let mut admitted = Vec::new();
        for _ in 0..3 {
            let (queue, held) = (queue.clone(), held.clone());
            admitted.push(tokio::spawn(async move {
                queue
                    .enter()?
                    .run(move || held.lock().unwrap().recv().is_ok())
                    .await
            }));
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        let refused = match queue.enter() {
            Err(refused) => refused,
            Ok(_) => panic!("a fourth place in a queue of one slot and two waiting"),
        };
        assert_eq!(refused.code(), super::ErrorCode::Overloaded);
        for _ in 0..3 {
            release.send(()).unwrap();
        }
        for task in admitted {
            assert!(task.await.unwrap().unwrap(), "an admitted hash ran");
        }
        // Room again.
        assert!(queue.enter().unwrap().run(|| true).await.unwrap());
    }

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
