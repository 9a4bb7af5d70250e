//! Rate limits: logins and password-reset requests counted per e-mail and
//! per client address over a sliding window.

use chrono::{Duration, Utc};
use sqlx::{PgPool, Row};
use uuid::Uuid;

use crate::error::{ApiError, ErrorCode};

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
pub(super) struct Attempts {
    /// Names the advisory locks of this kind.
    kind: &'static str,
    table: &'static str,
    at: &'static str,
    /// What a client over the limit reads.
    refusal: &'static str,
    /// Whether an attempt is counted as pending until it is settled (a
    /// login until its password is checked): pending attempts count for
    /// their e-mail, not for their address.
    pending: bool,
}

pub(super) const LOGINS: Attempts = Attempts {
    kind: "login",
    table: "login_failures",
    at: "failed_at",
    refusal: "too many failed attempts; wait a few minutes and try again",
    pending: true,
};

pub(super) const RESETS: Attempts = Attempts {
    kind: "reset",
    table: "password_reset_requests",
    at: "requested_at",
    refusal: "too many password-reset requests; wait an hour and try again",
    pending: false,
};

/// Counts one attempt for `email` from `client_address`, or refuses it with
/// `RATE_LIMITED` when either already made its number within `window`.
/// Attempts of one kind for one e-mail, and from one address, are counted
/// one after the other under advisory locks (the address last, whatever the
/// e-mail, so two attempts never wait for each other in opposite orders),
/// the counts read in a statement after the locks: a statement's snapshot
/// is taken before it waits for a lock. The attempt's id, for [`settle`].
pub(super) async fn count_attempt(
    pool: &PgPool,
    attempts: &Attempts,
    email: &str,
    client_address: &str,
    (window, per_email, per_address): (Duration, i64, i64),
) -> Result<Uuid, ApiError> {
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
                (SELECT count(*) FROM {table}
                 WHERE client_address = $2 AND {at} > $3 AND NOT pending) AS by_address"
    ))
    .bind(email)
    .bind(client_address)
    .bind(Utc::now() - window)
    .fetch_one(&mut *tx)
    .await?;
    if row.get::<i64, _>("by_email") >= per_email || row.get::<i64, _>("by_address") >= per_address {
        return Err(ApiError::refused(ErrorCode::RateLimited, attempts.refusal));
    }
    let attempt = Uuid::new_v4();
    sqlx::query(&format!(
        "INSERT INTO {table} (email, client_address, attempt_id, pending) VALUES ($1, $2, $3, $4)"
    ))
    .bind(email)
    .bind(client_address)
    .bind(attempt)
    .bind(attempts.pending)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(attempt)
}

/// A pending attempt that failed: it now counts for its address too.
pub(super) async fn settle(pool: &PgPool, attempts: &Attempts, attempt: Uuid) -> Result<(), ApiError> {
    sqlx::query(&format!(
        "UPDATE {} SET pending = false WHERE attempt_id = $1",
        attempts.table
    ))
    .bind(attempt)
    .execute(pool)
    .await?;
    Ok(())
}

/// A pending attempt that never reached the password check (the hasher's
/// queue was full): not an attempt at all, forgotten.
pub(super) async fn withdraw(pool: &PgPool, attempts: &Attempts, attempt: Uuid) -> Result<(), ApiError> {
    sqlx::query(&format!(
        "DELETE FROM {} WHERE attempt_id = $1 AND pending",
        attempts.table
    ))
    .bind(attempt)
    .execute(pool)
    .await?;
    Ok(())
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
