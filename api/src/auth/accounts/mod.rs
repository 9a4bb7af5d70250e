//! Accounts, grants, single-use tokens, sessions and login rate limiting.
//!
//! Credentials are not events: a password never enters the event store.
//! Passwords are hashed with argon2id; activation, reset and session tokens
//! are 256 random bits, handed to the user once and stored only as SHA-256.
//!
//! # Layout
//!
//! - here: grants, accounts, tokens, sessions, login, password resets;
//! - [`passwords`]: the rules of a new password, hashing and verifying;
//! - [`limits`]: attempts counted per e-mail and per address.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use sha2::{Digest, Sha256};
use sqlx::{PgConnection, PgPool, Row};
use uuid::Uuid;

use crate::error::{ApiError, ErrorCode};

mod limits;
mod passwords;

use limits::{count_attempt, settle, withdraw, LOGINS, RESETS};
pub use limits::{LoginLimits, ResetLimits};
pub use passwords::{
    check_password, hash_password, PasswordRefusal, MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH,
};
use passwords::{decoy_hash, hashing_place, hashing_room, overloaded, verify_password, with_hashing_slot};

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

/// An e-mail as accounts keep it: trimmed, lower-case, bounded, without a
/// control character and plausible; `None` for anything else, which no
/// account can have.
pub fn normalised_email(email: &str) -> Option<String> {
    use espace_famille_domain::{family, text};
    let email = text::required("an e-mail address", email, text::EMAIL).ok()?;
    family::is_plausible_email(&email).then(|| email.to_lowercase())
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
        ApiError::Validation(crate::i18n::say(
            "api.invalid_email",
            &[("email", &email.escape_debug())],
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
    /// Confirms a new e-mail address (the token row keeps the address).
    EmailChange,
}

impl TokenPurpose {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            TokenPurpose::Activation => "activation",
            TokenPurpose::PasswordReset => "password_reset",
            TokenPurpose::EmailChange => "email_change",
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
            ErrorCode::InvalidToken,
            &crate::i18n::say("api.invalid_link", &[]),
        )
    };
    let Some(row) = row else { return Err(invalid()) };
    if row.get::<Option<DateTime<Utc>>, _>("used_at").is_some() {
        return Err(invalid());
    }
    if row.get::<DateTime<Utc>, _>("expires_at") < Utc::now() {
        return Err(ApiError::refused(
            ErrorCode::TokenExpired,
            &crate::i18n::say("api.expired_link", &[]),
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

/// Checks the password; one generic error whatever was wrong, and
/// `RATE_LIMITED` once too many attempts failed for the e-mail or the
/// client address.
///
/// Every attempt is counted, pending, before its password is checked, in
/// the transaction that reads the counts, under a lock on the e-mail and
/// one on the address: fifty attempts for one e-mail sent at once are
/// counted one after the other, and only the first few reach the hasher.
/// A wrong password settles the attempt as a failure, which then counts
/// for the address as well; a right one clears the e-mail's failures, its
/// own included. Attempts still pending do not count for the address: a
/// rush of parents behind one address is not refused for being a rush.
pub async fn login(
    pool: &PgPool,
    email: &str,
    password: &str,
    client_address: &str,
    limits: LoginLimits,
) -> Result<Account, ApiError> {
    let invalid = || {
        ApiError::refused(
            ErrorCode::InvalidCredentials,
            &crate::i18n::say("api.wrong_credentials", &[]),
        )
    };
    // What no account can have is refused at once: it tells nothing.
    let Some(email) = normalised_email(email) else {
        return Err(invalid());
    };
    if password.chars().count() > MAX_PASSWORD_LENGTH {
        return Err(invalid());
    }
    // With the hasher's queue full, refused OVERLOADED before anything is
    // counted or written: a rush's refusals cost nothing, and the parent
    // trying again later is not a failure for it.
    if !hashing_room() {
        return Err(overloaded());
    }
    let limits = (limits.window, limits.per_email, limits.per_address);
    let attempt = count_attempt(pool, &LOGINS, &email, client_address, limits).await?;
    let stored: Option<(Uuid, Option<String>)> =
        sqlx::query_as("SELECT id, password_hash FROM accounts WHERE lower(email) = $1")
            .bind(&email)
            .fetch_optional(pool)
            .await?;
    let hash = stored.as_ref().and_then(|(_, hash)| hash.clone());
    let password = password.to_string();
    // The place is taken once the attempt is counted: attempts queued on
    // one e-mail's lock hold none (an attacker's fifty at once cannot fill
    // the queue), and one that finds the queue full after all is withdrawn.
    let place = match hashing_place() {
        Ok(place) => place,
        Err(error) => {
            withdraw(pool, &LOGINS, attempt).await?;
            return Err(error);
        }
    };
    let verified = {
        let hash = hash.clone();
        place
            .run(move || match &hash {
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
        _ => {
            settle(pool, &LOGINS, attempt).await?;
            Err(invalid())
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
/// valid at a time. An account never activated gets a new activation link
/// instead (its earlier ones stop working): that is the way to a new link
/// when the first one expired, and a guardian still gives the profile.
pub async fn send_password_reset(
    pool: &PgPool,
    email: &str,
    settings: &AuthSettings,
) -> Result<(), ApiError> {
    let mut tx = pool.begin().await?;
    let Some(account) = find_by_email(&mut tx, email).await? else {
        return Ok(());
    };
    let (purpose, valid_for) = if account.active {
        (TokenPurpose::PasswordReset, settings.reset_valid_for)
    } else {
        (TokenPurpose::Activation, settings.activation_valid_for)
    };
    sqlx::query(
        "UPDATE account_tokens SET used_at = now()
         WHERE account_id = $1 AND purpose = $2 AND used_at IS NULL",
    )
    .bind(account.id)
    .bind(purpose.as_str())
    .execute(&mut *tx)
    .await?;
    let token = issue_token(&mut tx, account.id, purpose, valid_for).await?;
    let (subject, body) = match purpose {
        TokenPurpose::Activation => crate::mail::activation(&settings.mail, &token),
        _ => crate::mail::password_reset(&settings.mail, &token),
    };
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
/// The e-mail addresses of the accounts that are guardians of a family.
pub async fn guardian_emails(conn: &mut PgConnection, family_id: Uuid) -> Result<Vec<String>, ApiError> {
    Ok(sqlx::query_scalar(
        "SELECT a.email FROM accounts a JOIN account_grants g ON g.account_id = a.id
         WHERE g.role = 'parent' AND g.scope = $1 ORDER BY a.email",
    )
    .bind(family_id)
    .fetch_all(conn)
    .await?)
}

/// The e-mails of the guardians of these families, as (family, e-mail).
pub async fn guardians_emails(
    conn: &mut PgConnection,
    family_ids: &[Uuid],
) -> Result<Vec<(Uuid, String)>, ApiError> {
    Ok(sqlx::query_as(
        "SELECT g.scope, a.email FROM accounts a JOIN account_grants g ON g.account_id = a.id
         WHERE g.role = 'parent' AND g.scope = ANY($1) ORDER BY g.scope, a.email",
    )
    .bind(family_ids)
    .fetch_all(conn)
    .await?)
}

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

#[cfg(test)]
mod tests {
    use super::*;

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
