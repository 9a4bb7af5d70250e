//! What the links the commune e-mails do — activate an account, set a new
//! password — for the GraphQL mutations and the portal's pages alike: both
//! call these, so a rule holds whichever way a parent comes in.

use chrono::{DateTime, Duration, Utc};
use cqrs_es::Aggregate;
use espace_famille_domain::family::{Family, FamilyCommand, GuardianProfile};
use espace_famille_projections::store::StoreError;
use sqlx::{PgPool, Row};

use crate::accounts::{self, Account, TokenPurpose};
use crate::commands::{metadata, Commands, Failure};
use crate::error::ApiError;
use crate::identity::Actor;

/// What a guardian tells about themself on activation.
#[derive(Debug, Clone, Default)]
pub struct Profile {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
}

/// A session opened by a link: its bearer token and when it expires.
pub type NewSession = (String, DateTime<Utc>);

/// What a link's token is worth, read without using it (the page that
/// shows the form reads it; only the form's answer uses it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkState {
    /// Usable: the account's e-mail, and whether the form asks for the
    /// guardian's profile (an account with a family not yet active).
    Valid {
        email: String,
        asks_profile: bool,
    },
    /// Unknown, or already used.
    Invalid,
    Expired,
}

/// Reads a link's token without using it.
pub async fn peek(pool: &PgPool, token: &str, purpose: TokenPurpose) -> Result<LinkState, ApiError> {
    let row = sqlx::query(
        "SELECT t.expires_at, t.used_at, a.email, a.activated_at IS NOT NULL AS active,
                EXISTS (SELECT 1 FROM account_grants g WHERE g.account_id = a.id AND g.role = 'parent') AS guardian
         FROM account_tokens t JOIN accounts a ON a.id = t.account_id
         WHERE t.token_hash = $1 AND t.purpose = $2",
    )
    .bind(accounts::token_hash(token.trim()))
    .bind(purpose.as_str())
    .fetch_optional(pool)
    .await?;
    let Some(row) = row else {
        return Ok(LinkState::Invalid);
    };
    if row.get::<Option<DateTime<Utc>>, _>("used_at").is_some() {
        return Ok(LinkState::Invalid);
    }
    if row.get::<DateTime<Utc>, _>("expires_at") < Utc::now() {
        return Ok(LinkState::Expired);
    }
    let asks_profile =
        purpose == TokenPurpose::Activation && !row.get::<bool, _>("active") && row.get("guardian");
    Ok(LinkState::Valid {
        email: row.get("email"),
        asks_profile,
    })
}

/// Activates an account from its link: checks the password, records
/// `AccountActivated` with the profile in each of the account's families,
/// sets the password, uses the token — all in one transaction — and opens
/// a session when `session_for` says how long it lasts.
pub async fn activate(
    commands: &Commands,
    token: &str,
    password: &str,
    profile: &Profile,
    session_for: Option<Duration>,
) -> Result<(Account, Option<NewSession>), ApiError> {
    'attempt: for _ in 0..5 {
        let mut tx = commands.pool.begin().await?;
        let account = accounts::consume_token(&mut tx, token, TokenPurpose::Activation).await?;
        accounts::check_password(password, &account.email)?;
        let mut last = None;
        for family_id in accounts::families_of(&account.grants) {
            let profile = GuardianProfile {
                first_name: profile.first_name.clone().unwrap_or_default().into(),
                last_name: profile.last_name.clone().unwrap_or_default().into(),
                phone: profile.phone.clone().filter(|p| !p.trim().is_empty()).into(),
            };
            let actor = Actor {
                account_id: account.id,
                role: "parent",
            };
            let command = FamilyCommand::ActivateAccount {
                account_id: account.id,
                profile,
            };
            match commands
                .family_in(&mut tx, family_id, command, &metadata(actor, None))
                .await
            {
                Ok(position) => last = last.max(position),
                // Already activated there: only the password changes.
                Err(Failure::Refused(ApiError::Conflict(_))) => {}
                // The family moved meanwhile: roll back, token included, and try again.
                Err(Failure::Store(StoreError::Conflict)) => continue 'attempt,
                Err(failure) => return Err(failure.into()),
            }
        }
        accounts::set_password(&mut tx, &account, password).await?;
        let session = match session_for {
            Some(valid_for) => Some(accounts::open_session(&mut tx, account.id, valid_for).await?),
            None => None,
        };
        if tx.commit().await.is_err() {
            continue;
        }
        if let Some(position) = last {
            commands.wait_for_read_models(position, &[Family::TYPE]).await?;
        }
        return Ok((account, session));
    }
    Err(ApiError::Conflict("the family kept changing; try again".into()))
}

/// Sets a new password from a reset link, ends every session of the
/// account, and opens a new one when `session_for` says how long it lasts.
/// The caller tells this server's session cache to forget the account.
pub async fn reset_password(
    pool: &PgPool,
    token: &str,
    password: &str,
    session_for: Option<Duration>,
) -> Result<(Account, Option<NewSession>), ApiError> {
    let mut tx = pool.begin().await?;
    let account = accounts::consume_token(&mut tx, token, TokenPurpose::PasswordReset).await?;
    accounts::set_password(&mut tx, &account, password).await?;
    sqlx::query("UPDATE sessions SET revoked_at = now() WHERE account_id = $1 AND revoked_at IS NULL")
        .bind(account.id)
        .execute(&mut *tx)
        .await?;
    let session = match session_for {
        Some(valid_for) => Some(accounts::open_session(&mut tx, account.id, valid_for).await?),
        None => None,
    };
    tx.commit().await?;
    Ok((account, session))
}
