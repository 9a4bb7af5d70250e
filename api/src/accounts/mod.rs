//! Accounts, grants, single-use tokens, sessions and login rate limiting.
//!
//! Credentials are not events: a password never enters the event store.
//! Passwords are hashed with argon2id; activation, reset and session tokens
//! are 256 random bits, handed to the user once and stored only as SHA-256.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool, Row};
use uuid::Uuid;

use crate::error::ApiError;

/// What an account may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Grant {
    /// Runs the platform: creates communes and their first agents.
    Admin,
    /// An agent of one commune.
    Agent(Uuid),
    /// A guardian of one family.
    Parent(Uuid),
    /// Reads one commune, or everything (`None`), and changes nothing.
    Auditor(Option<Uuid>),
}

impl Grant {
    fn role(&self) -> &'static str {
        match self {
            Grant::Admin => "admin",
            Grant::Agent(_) => "agent",
            Grant::Parent(_) => "parent",
            Grant::Auditor(_) => "auditor",
        }
    }

    fn scope(&self) -> Option<Uuid> {
        match *self {
            Grant::Admin | Grant::Auditor(None) => None,
            Grant::Agent(scope) | Grant::Parent(scope) | Grant::Auditor(Some(scope)) => Some(scope),
        }
    }

    fn from_row(role: &str, scope: Option<Uuid>) -> Option<Grant> {
        match (role, scope) {
            ("admin", _) => Some(Grant::Admin),
            ("agent", Some(scope)) => Some(Grant::Agent(scope)),
            ("parent", Some(scope)) => Some(Grant::Parent(scope)),
            ("auditor", scope) => Some(Grant::Auditor(scope)),
            _ => None,
        }
    }
}

impl std::str::FromStr for Grant {
    type Err = String;

    /// `admin`, `auditor`, `auditor:<commune>`, `agent:<commune>`,
    /// `parent:<family>`.
    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let parse = |id: &str| id.parse::<Uuid>().map_err(|_| format!("'{id}' is not a UUID"));
        match value.split_once(':') {
            None if value == "admin" => Ok(Grant::Admin),
            None if value == "auditor" => Ok(Grant::Auditor(None)),
            Some(("auditor", id)) => Ok(Grant::Auditor(Some(parse(id)?))),
            Some(("agent", id)) => Ok(Grant::Agent(parse(id)?)),
            Some(("parent", id)) => Ok(Grant::Parent(parse(id)?)),
            _ => Err(format!(
                "'{value}' is not a grant: admin, auditor, auditor:<commune>, agent:<commune> or parent:<family>"
            )),
        }
    }
}

/// A random token for the user, and the hash the database keeps.
pub fn new_token() -> (String, Vec<u8>) {
    let bytes: [u8; 32] = rand::random();
    let token = URL_SAFE_NO_PAD.encode(bytes);
    let hash = token_hash(&token);
    (token, hash)
}

pub fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// The shortest password accepted.
pub const MIN_PASSWORD_LENGTH: usize = 12;
/// The longest: a passphrase fits, a megabyte sent to keep the hasher busy
/// does not.
pub const MAX_PASSWORD_LENGTH: usize = 256;

/// An e-mail as accounts keep it: trimmed, lower-case, bounded, without a
/// control character and plausible; `None` for anything else, which no
/// account can have.
pub fn normalised_email(email: &str) -> Option<String> {
    use espace_famille_domain::{family, text};
    let email = text::required("an e-mail address", email, text::EMAIL).ok()?;
    family::is_plausible_email(&email).then(|| email.to_lowercase())
}

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

/// Checks a new password; the reason it is refused, if it is.
pub fn check_password(password: &str, email: &str) -> Result<(), ApiError> {
    if password.chars().count() < MIN_PASSWORD_LENGTH {
        return Err(ApiError::Validation(format!(
            "a password needs at least {MIN_PASSWORD_LENGTH} characters"
        )));
    }
    if password.chars().count() > MAX_PASSWORD_LENGTH {
        return Err(ApiError::Validation(format!(
            "a password has at most {MAX_PASSWORD_LENGTH} characters"
        )));
    }
    if password.contains('\0') {
        return Err(ApiError::Validation(
            "a password cannot contain a NUL character".into(),
        ));
    }
    let folded: String = password
        .to_lowercase()
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    if COMMON_PASSWORDS.contains(&folded.as_str()) {
        return Err(ApiError::Validation(
            "this password is too common; choose another".into(),
        ));
    }
    if folded == email.trim().to_lowercase() {
        return Err(ApiError::Validation(
            "a password cannot be the e-mail address".into(),
        ));
    }
    Ok(())
}

/// Password hashing runs on at most one blocking thread per core: a login
/// rush must queue for the CPU, not start hundreds of 19 MiB hashes at once.
async fn with_hashing_slot<T: Send + 'static>(
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

fn verify_password(password: &str, hash: &str) -> bool {
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
fn decoy_hash() -> &'static str {
    use std::sync::OnceLock;
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| hash_password("decoy password, never valid").unwrap_or_default())
}

#[derive(Debug, Clone)]
pub struct Account {
    pub id: Uuid,
    pub email: String,
    pub active: bool,
    pub grants: Vec<Grant>,
}

async fn grants_of(conn: &mut PgConnection, account_id: Uuid) -> Result<Vec<Grant>, ApiError> {
    let rows =
        sqlx::query("SELECT role, scope FROM account_grants WHERE account_id = $1 ORDER BY role, scope")
            .bind(account_id)
            .fetch_all(&mut *conn)
            .await?;
    Ok(rows
        .iter()
        .filter_map(|r| Grant::from_row(r.get("role"), r.get("scope")))
        .collect())
}

/// The account with this e-mail (case-insensitive).
pub async fn find_by_email(conn: &mut PgConnection, email: &str) -> Result<Option<Account>, ApiError> {
    let Some(email) = normalised_email(email) else {
        return Ok(None);
    };
    let row = sqlx::query("SELECT id, email, activated_at FROM accounts WHERE lower(email) = $1")
        .bind(email)
        .fetch_optional(&mut *conn)
        .await?;
    let Some(row) = row else { return Ok(None) };
    let id: Uuid = row.get("id");
    Ok(Some(Account {
        id,
        email: row.get("email"),
        active: row.get::<Option<DateTime<Utc>>, _>("activated_at").is_some(),
        grants: grants_of(conn, id).await?,
    }))
}

/// Creates the account for `email` if there is none, and adds the grants;
/// returns the account.
pub async fn ensure_account(
    conn: &mut PgConnection,
    email: &str,
    grants: &[Grant],
) -> Result<Account, ApiError> {
    let email = normalised_email(email).ok_or_else(|| {
        ApiError::Validation(format!(
            "'{}' is not a valid e-mail address",
            email.escape_debug()
        ))
    })?;
    sqlx::query("INSERT INTO accounts (id, email) VALUES ($1, $2) ON CONFLICT (lower(email)) DO NOTHING")
        .bind(Uuid::new_v4())
        .bind(&email)
        .execute(&mut *conn)
        .await?;
    let account = find_by_email(conn, &email)
        .await?
        .ok_or_else(|| ApiError::Internal(format!("account {email} vanished")))?;
    for grant in grants {
        sqlx::query(
            "INSERT INTO account_grants (account_id, role, scope) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
        )
        .bind(account.id)
        .bind(grant.role())
        .bind(grant.scope())
        .execute(&mut *conn)
        .await?;
    }
    let grants = grants_of(conn, account.id).await?;
    Ok(Account { grants, ..account })
}

/// Sets the password (checked) and marks the account active.
pub async fn set_password(
    conn: &mut PgConnection,
    account: &Account,
    password: &str,
) -> Result<(), ApiError> {
    check_password(password, &account.email)?;
    let password = password.to_string();
    let hash = with_hashing_slot(move || hash_password(&password)).await??;
    sqlx::query(
        "UPDATE accounts SET password_hash = $2, activated_at = coalesce(activated_at, now()) WHERE id = $1",
    )
    .bind(account.id)
    .bind(hash)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Why a token was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenPurpose {
    Activation,
    PasswordReset,
}

impl TokenPurpose {
    fn as_str(self) -> &'static str {
        match self {
            TokenPurpose::Activation => "activation",
            TokenPurpose::PasswordReset => "password_reset",
        }
    }
}

/// Issues a single-use token for the account; returns the token to send.
pub async fn issue_token(
    conn: &mut PgConnection,
    account_id: Uuid,
    purpose: TokenPurpose,
    valid_for: Duration,
) -> Result<String, ApiError> {
    let (token, hash) = new_token();
    sqlx::query(
        "INSERT INTO account_tokens (token_hash, account_id, purpose, expires_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(hash)
    .bind(account_id)
    .bind(purpose.as_str())
    .bind(Utc::now() + valid_for)
    .execute(&mut *conn)
    .await?;
    Ok(token)
}

/// Consumes a token inside the caller's transaction (the row stays locked
/// until it commits, so two uses race to one winner). `INVALID_TOKEN` for
/// an unknown or used token, `TOKEN_EXPIRED` for an expired one.
pub async fn consume_token(
    conn: &mut PgConnection,
    token: &str,
    purpose: TokenPurpose,
) -> Result<Account, ApiError> {
    let row = sqlx::query(
        "SELECT t.account_id, t.expires_at, t.used_at, a.email
         FROM account_tokens t JOIN accounts a ON a.id = t.account_id
         WHERE t.token_hash = $1 AND t.purpose = $2 FOR UPDATE OF t",
    )
    .bind(token_hash(token.trim()))
    .bind(purpose.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    let invalid = || {
        ApiError::refused(
            "INVALID_TOKEN",
            "this link is not valid (unknown or already used)",
        )
    };
    let Some(row) = row else { return Err(invalid()) };
    if row.get::<Option<DateTime<Utc>>, _>("used_at").is_some() {
        return Err(invalid());
    }
    if row.get::<DateTime<Utc>, _>("expires_at") < Utc::now() {
        return Err(ApiError::refused(
            "TOKEN_EXPIRED",
            "this link has expired; ask for a new one",
        ));
    }
    sqlx::query("UPDATE account_tokens SET used_at = now() WHERE token_hash = $1")
        .bind(token_hash(token.trim()))
        .execute(&mut *conn)
        .await?;
    let email: String = row.get("email");
    find_by_email(conn, &email).await?.ok_or_else(invalid)
}

/// Opens a session; returns the bearer token and when it expires.
pub async fn open_session(
    conn: &mut PgConnection,
    account_id: Uuid,
    valid_for: Duration,
) -> Result<(String, DateTime<Utc>), ApiError> {
    let (token, hash) = new_token();
    let expires_at = Utc::now() + valid_for;
    sqlx::query("INSERT INTO sessions (token_hash, account_id, expires_at) VALUES ($1, $2, $3)")
        .bind(hash)
        .bind(account_id)
        .bind(expires_at)
        .execute(&mut *conn)
        .await?;
    Ok((token, expires_at))
}

/// The account behind a bearer token, if the session is live, with its
/// grants and when the session expires: one query.
pub async fn session_account(
    pool: &PgPool,
    token: &str,
) -> Result<Option<(Account, DateTime<Utc>)>, ApiError> {
    let row = sqlx::query(
        "SELECT a.id, a.email, s.expires_at,
                coalesce(array_agg(g.role) FILTER (WHERE g.role IS NOT NULL), '{}') AS roles,
                coalesce(array_agg(g.scope) FILTER (WHERE g.role IS NOT NULL), '{}') AS scopes
         FROM sessions s
         JOIN accounts a ON a.id = s.account_id
         LEFT JOIN account_grants g ON g.account_id = a.id
         WHERE s.token_hash = $1 AND s.revoked_at IS NULL AND s.expires_at > now()
         GROUP BY a.id, a.email, s.expires_at",
    )
    .bind(token_hash(token))
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else { return Ok(None) };
    let roles: Vec<String> = row.get("roles");
    let scopes: Vec<Option<Uuid>> = row.get("scopes");
    let account = Account {
        id: row.get("id"),
        email: row.get("email"),
        active: true,
        grants: roles
            .iter()
            .zip(scopes)
            .filter_map(|(role, scope)| Grant::from_row(role, scope))
            .collect(),
    };
    Ok(Some((account, row.get("expires_at"))))
}

pub async fn revoke_session(pool: &PgPool, token: &str) -> Result<bool, ApiError> {
    let done =
        sqlx::query("UPDATE sessions SET revoked_at = now() WHERE token_hash = $1 AND revoked_at IS NULL")
            .bind(token_hash(token))
            .execute(pool)
            .await?;
    Ok(done.rows_affected() == 1)
}

/// Rate limits of failed logins, over a sliding window.
#[derive(Debug, Clone, Copy)]
pub struct LoginLimits {
    pub window: Duration,
    pub per_email: i64,
    pub per_address: i64,
}

impl Default for LoginLimits {
    fn default() -> Self {
        LoginLimits {
            window: Duration::minutes(15),
            per_email: 5,
            per_address: 30,
        }
    }
}

/// Where the attempts of one kind are counted: a table of (e-mail,
/// client address, instant).
struct Attempts {
    /// Names the advisory locks of this kind.
    kind: &'static str,
    table: &'static str,
    at: &'static str,
    /// What a client over the limit reads.
    refusal: &'static str,
}

const LOGINS: Attempts = Attempts {
    kind: "login",
    table: "login_failures",
    at: "failed_at",
    refusal: "too many failed attempts; wait a few minutes and try again",
};

const RESETS: Attempts = Attempts {
    kind: "reset",
    table: "password_reset_requests",
    at: "requested_at",
    refusal: "too many password-reset requests; wait an hour and try again",
};

/// Counts one attempt for `email` from `client_address`, or refuses it with
/// `RATE_LIMITED` when either already made its number within `window`.
/// Attempts of one kind for one e-mail, and from one address, are counted
/// one after the other under advisory locks (the address last, whatever the
/// e-mail, so two attempts never wait for each other in opposite orders),
/// the counts read in a statement after the locks: a statement's snapshot
/// is taken before it waits for a lock.
async fn count_attempt(
    pool: &PgPool,
    attempts: &Attempts,
    email: &str,
    client_address: &str,
    (window, per_email, per_address): (Duration, i64, i64),
) -> Result<(), ApiError> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "SELECT pg_advisory_xact_lock(hashtextextended($1 || ':' || $2, 0)),
                pg_advisory_xact_lock(hashtextextended($1 || '-from:' || $3, 0))",
    )
    .bind(attempts.kind)
    .bind(email)
    .bind(client_address)
    .execute(&mut *tx)
    .await?;
    let (table, at) = (attempts.table, attempts.at);
    let row = sqlx::query(&format!(
        "SELECT (SELECT count(*) FROM {table} WHERE lower(email) = $1 AND {at} > $3) AS by_email,
                (SELECT count(*) FROM {table} WHERE client_address = $2 AND {at} > $3) AS by_address"
    ))
    .bind(email)
    .bind(client_address)
    .bind(Utc::now() - window)
    .fetch_one(&mut *tx)
    .await?;
    if row.get::<i64, _>("by_email") >= per_email || row.get::<i64, _>("by_address") >= per_address {
        return Err(ApiError::refused("RATE_LIMITED", attempts.refusal));
    }
    sqlx::query(&format!(
        "INSERT INTO {table} (email, client_address) VALUES ($1, $2)"
    ))
    .bind(email)
    .bind(client_address)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Checks the password; one generic error whatever was wrong, and
/// `RATE_LIMITED` once too many attempts failed for the e-mail or the
/// client address.
///
/// Every attempt is counted as a failure before its password is checked,
/// in the transaction that reads the counts, under a lock on the e-mail
/// and one on the address: fifty attempts sent at once are counted one
/// after the other, and only the first few reach the hasher. A right
/// password then clears the e-mail's failures, its own included.
pub async fn login(
    pool: &PgPool,
    email: &str,
    password: &str,
    client_address: &str,
    limits: LoginLimits,
) -> Result<Account, ApiError> {
    let invalid = || ApiError::refused("INVALID_CREDENTIALS", "wrong e-mail or password");
    // What no account can have is refused at once: it tells nothing.
    let Some(email) = normalised_email(email) else {
        return Err(invalid());
    };
    if password.chars().count() > MAX_PASSWORD_LENGTH {
        return Err(invalid());
    }
    let limits = (limits.window, limits.per_email, limits.per_address);
    count_attempt(pool, &LOGINS, &email, client_address, limits).await?;
    let stored: Option<(Uuid, Option<String>)> =
        sqlx::query_as("SELECT id, password_hash FROM accounts WHERE lower(email) = $1")
            .bind(&email)
            .fetch_optional(pool)
            .await?;
    let hash = stored.as_ref().and_then(|(_, hash)| hash.clone());
    let password = password.to_string();
    let verified = {
        let hash = hash.clone();
        with_hashing_slot(move || match &hash {
            Some(hash) => verify_password(&password, hash),
            None => verify_password(&password, decoy_hash()),
        })
        .await?
    };
    match stored {
        Some((id, Some(_))) if verified => {
            let mut conn = pool.acquire().await?;
            sqlx::query("DELETE FROM login_failures WHERE lower(email) = $1")
                .bind(&email)
                .execute(&mut *conn)
                .await?;
            Ok(Account {
                id,
                email: email.clone(),
                active: true,
                grants: grants_of(&mut conn, id).await?,
            })
        }
        _ => Err(invalid()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_refuses_short_common_or_email_passwords() {
        assert!(matches!(
            check_password("court", "a@b.fr"),
            Err(ApiError::Validation(_))
        ));
        assert!(matches!(
            check_password("MotDePasse 123", "a@b.fr"),
            Err(ApiError::Validation(_))
        ));
        assert!(matches!(
            check_password("claire.martin@example.fr", "Claire.Martin@example.fr"),
            Err(ApiError::Validation(_))
        ));
        assert!(check_password("cheval-agrafe-batterie", "a@b.fr").is_ok());
    }

    #[test]
    fn a_password_verifies_against_its_own_hash_only() {
        let hash = hash_password("cheval-agrafe-batterie").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password("cheval-agrafe-batterie", &hash));
        assert!(!verify_password("cheval-agrafe-batteries", &hash));
    }

    #[test]
    fn tokens_are_long_random_and_stored_only_as_hashes() {
        let (first, hash) = new_token();
        let (second, _) = new_token();
        assert_ne!(first, second);
        assert!(first.len() >= 43, "256 bits in base64");
        assert_eq!(hash, token_hash(&first));
        assert_ne!(hash, first.as_bytes());
    }

    #[test]
    fn grants_read_as_written_on_the_command_line() {
        let id = Uuid::from_u128(7);
        assert_eq!(format!("agent:{id}").parse::<Grant>(), Ok(Grant::Agent(id)));
        assert_eq!("auditor".parse::<Grant>(), Ok(Grant::Auditor(None)));
        assert!("mayor".parse::<Grant>().is_err());
    }
}

/// How many password-reset requests are taken, over a sliding window.
#[derive(Debug, Clone, Copy)]
pub struct ResetLimits {
    pub window: Duration,
    pub per_email: i64,
    pub per_address: i64,
}

impl Default for ResetLimits {
    fn default() -> Self {
        ResetLimits {
            window: Duration::hours(1),
            per_email: 3,
            per_address: 30,
        }
    }
}

/// Counts a password-reset request for `email` from `client_address`, or
/// refuses it with `RATE_LIMITED`; the e-mail, normalised, when a reset
/// link may be sent to it. The same work whether the e-mail has an account
/// or not: finding the account and sending the link come after the answer
/// (see [`send_password_reset`]).
pub async fn count_reset_request(
    pool: &PgPool,
    email: &str,
    client_address: &str,
    limits: ResetLimits,
) -> Result<Option<String>, ApiError> {
    let Some(email) = normalised_email(email) else {
        return Ok(None);
    };
    let limits = (limits.window, limits.per_email, limits.per_address);
    count_attempt(pool, &RESETS, &email, client_address, limits).await?;
    Ok(Some(email))
}

/// Sends a reset link to the account of `email`, if there is one: the
/// account's earlier reset links stop working, so one link at most is
/// valid at a time.
pub async fn send_password_reset(
    pool: &PgPool,
    email: &str,
    settings: &AuthSettings,
) -> Result<(), ApiError> {
    let mut tx = pool.begin().await?;
    let Some(account) = find_by_email(&mut tx, email).await? else {
        return Ok(());
    };
    sqlx::query(
        "UPDATE account_tokens SET used_at = now()
         WHERE account_id = $1 AND purpose = $2 AND used_at IS NULL",
    )
    .bind(account.id)
    .bind(TokenPurpose::PasswordReset.as_str())
    .execute(&mut *tx)
    .await?;
    let token = issue_token(
        &mut tx,
        account.id,
        TokenPurpose::PasswordReset,
        settings.reset_valid_for,
    )
    .await?;
    let (subject, body) = crate::mail::password_reset(&settings.mail, &token);
    let family = families_of(&account.grants).first().copied();
    crate::mail::enqueue(&mut tx, family, &account.email, &subject, &body).await?;
    tx.commit().await?;
    Ok(())
}

/// Lifetimes and limits of credentials; the mail settings for the links.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    pub mail: crate::mail::MailSettings,
    pub activation_valid_for: Duration,
    pub reset_valid_for: Duration,
    pub session_valid_for: Duration,
    pub login_limits: LoginLimits,
    pub reset_limits: ResetLimits,
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            mail: crate::mail::MailSettings::default(),
            activation_valid_for: Duration::hours(48),
            reset_valid_for: Duration::hours(1),
            session_valid_for: Duration::hours(12),
            login_limits: LoginLimits::default(),
            reset_limits: ResetLimits::default(),
        }
    }
}

/// The families an account is a guardian of.
pub fn families_of(grants: &[Grant]) -> Vec<Uuid> {
    grants
        .iter()
        .filter_map(|g| match g {
            Grant::Parent(family) => Some(*family),
            _ => None,
        })
        .collect()
}

/// Removes every parent grant on a family, the accounts left with no grant
/// at all (their sessions and tokens go with them), their failed logins and
/// the family's messages. Returns the accounts that lost a grant.
pub async fn forget_family(conn: &mut PgConnection, family_id: Uuid) -> Result<Vec<Uuid>, ApiError> {
    let accounts: Vec<Uuid> = sqlx::query_scalar(
        "DELETE FROM account_grants WHERE role = 'parent' AND scope = $1 RETURNING account_id",
    )
    .bind(family_id)
    .fetch_all(&mut *conn)
    .await?;
    sqlx::query(
        "DELETE FROM login_failures WHERE lower(email) IN (SELECT lower(email) FROM accounts WHERE id = ANY($1))",
    )
    .bind(&accounts)
    .execute(&mut *conn)
    .await?;
    sqlx::query("DELETE FROM outbox WHERE family_id = $1")
        .bind(family_id)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "DELETE FROM accounts a WHERE a.id = ANY($1)
           AND NOT EXISTS (SELECT 1 FROM account_grants g WHERE g.account_id = a.id)",
    )
    .bind(&accounts)
    .execute(&mut *conn)
    .await?;
    Ok(accounts)
}
