//! What the links the commune e-mails do — activate an account, set a new
//! password — for the GraphQL mutations and the portal's pages alike: both
//! call these, so a rule holds whichever way a parent comes in.

use chrono::{DateTime, Duration, Utc};
use espace_famille_domain::family::{Family, FamilyCommand, GuardianProfile, PostalAddress};
use espace_famille_projections::directory::DIRECTORY;
use sqlx::{PgPool, Row};

use crate::auth::accounts::{self, Account, TokenPurpose};
use crate::auth::identity::Actor;
use crate::commands::{metadata, Commands};
use crate::error::ApiError;
use crate::i18n::say;
use crate::services::{Failure, Work, Write};

/// What a guardian tells about themself on activation.
#[derive(Debug, Clone, Default)]
pub struct Profile {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
    pub address: Option<PostalAddress>,
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
        /// The address an e-mail change confirms.
        new_email: Option<String>,
    },
    /// Unknown, or already used.
    Invalid,
    Expired,
}

/// Reads a link's token without using it.
pub async fn peek(pool: &PgPool, token: &str, purpose: TokenPurpose) -> Result<LinkState, ApiError> {
    let row = sqlx::query(
        "SELECT t.expires_at, t.used_at, t.new_email, a.email, a.activated_at IS NOT NULL AS active,
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
        new_email: row.get("new_email"),
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
    commands
        .write(Activate {
            token,
            password,
            profile,
            session_for,
        })
        .await
}

struct Activate<'a> {
    token: &'a str,
    password: &'a str,
    profile: &'a Profile,
    session_for: Option<Duration>,
}

impl Write for Activate<'_> {
    type Answer = (Account, Option<NewSession>);

    async fn attempt(&mut self, work: &mut Work<'_>) -> Result<Self::Answer, Failure> {
        let account =
            accounts::consume_token(work.transaction().await?, self.token, TokenPurpose::Activation).await?;
        accounts::check_password(self.password, &account.email).map_err(ApiError::from)?;
        let actor = Actor {
            account_id: account.id,
            role: "parent",
        };
        let metadata = metadata(actor, None);
        let profile = self.profile;
        for family_id in accounts::families_of(&account.grants) {
            let profile = GuardianProfile {
                first_name: profile.first_name.clone().unwrap_or_default().into(),
                last_name: profile.last_name.clone().unwrap_or_default().into(),
                phone: profile.phone.clone().filter(|p| !p.trim().is_empty()).into(),
                address: profile.address.clone().into(),
            };
            let command = FamilyCommand::ActivateAccount {
                account_id: account.id,
                profile,
                email: Some(account.email.clone().into()),
            };
            match work.execute::<Family>(family_id, command, &(), &metadata).await {
                Ok(_) => {}
                // Already activated there: only the password changes.
                Err(Failure::Refused(ApiError::Conflict(_))) => {}
                Err(failure) => return Err(failure),
            }
        }
        let conn = work.transaction().await?;
        accounts::set_password(conn, &account, self.password).await?;
        let session = match self.session_for {
            Some(valid_for) => Some(accounts::open_session(conn, account.id, valid_for).await?),
            None => None,
        };
        Ok((account, session))
    }

    fn reads(&self) -> Option<&'static [&'static str]> {
        Some(&[DIRECTORY])
    }

    fn contended(&self) -> String {
        say("api.contended_family", &[])
    }
}

/// How long the link confirming a new e-mail address works.
pub const EMAIL_CHANGE_VALID_FOR: Duration = Duration::hours(24);

async fn cancel_email_changes(conn: &mut sqlx::PgConnection, account_id: uuid::Uuid) -> Result<(), ApiError> {
    sqlx::query(
        "UPDATE account_tokens SET used_at = now()
         WHERE account_id = $1 AND purpose = 'email_change' AND used_at IS NULL",
    )
    .bind(account_id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Asks for the account's e-mail to become `new_email`: a link to confirm
/// goes to the new address (or, when another account has it, a word that
/// it does — the caller is not told which), and the current address is
/// told. Only the latest request's link works. `VALIDATION` for an address
/// no account can have, or the account's own.
pub async fn request_email_change(
    pool: &PgPool,
    account: &Account,
    new_email: &str,
    mail: &crate::mail::MailSettings,
) -> Result<(), ApiError> {
    let new_email = accounts::normalised_email(new_email).ok_or_else(|| {
        ApiError::Validation(say("api.invalid_email", &[("email", &new_email.escape_debug())]))
    })?;
    if new_email == account.email.to_lowercase() {
        return Err(ApiError::Validation(say("api.same_email", &[])));
    }
    let family = accounts::families_of(&account.grants).first().copied();
    let mut tx = pool.begin().await?;
    cancel_email_changes(&mut tx, account.id).await?;
    let taken = accounts::find_by_email(&mut tx, &new_email).await?.is_some();
    let (subject, body) = if taken {
        crate::mail::email_already_used(mail)
    } else {
        let (token, hash) = accounts::new_token();
        sqlx::query(
            "INSERT INTO account_tokens (token_hash, account_id, purpose, expires_at, new_email)
             VALUES ($1, $2, 'email_change', $3, $4)",
        )
        .bind(hash)
        .bind(account.id)
        .bind(Utc::now() + EMAIL_CHANGE_VALID_FOR)
        .bind(&new_email)
        .execute(&mut *tx)
        .await?;
        crate::mail::email_change_confirmation(mail, &token)
    };
    crate::mail::enqueue(&mut tx, family, &new_email, &subject, &body).await?;
    let (subject, body) = crate::mail::email_change_requested(mail, &new_email);
    crate::mail::enqueue(&mut tx, family, &account.email, &subject, &body).await?;
    tx.commit().await?;
    Ok(())
}

/// Confirms a new e-mail from its link: the account takes it, each family
/// it is an active guardian of records `GuardianEmailChanged`, the former
/// address is told — in one transaction. `CONFLICT` when another account
/// took the address meanwhile. The caller tells the session cache to
/// forget the account.
pub async fn confirm_email_change(
    commands: &Commands,
    token: &str,
    mail: &crate::mail::MailSettings,
) -> Result<Account, ApiError> {
    commands.write(ConfirmEmailChange { token, mail }).await
}

struct ConfirmEmailChange<'a> {
    token: &'a str,
    mail: &'a crate::mail::MailSettings,
}

impl Write for ConfirmEmailChange<'_> {
    type Answer = Account;

    async fn attempt(&mut self, work: &mut Work<'_>) -> Result<Account, Failure> {
        let tx = work.transaction().await?;
        let account = accounts::consume_token(&mut *tx, self.token, TokenPurpose::EmailChange).await?;
        let new_email: String =
            sqlx::query_scalar("SELECT new_email FROM account_tokens WHERE token_hash = $1")
                .bind(accounts::token_hash(self.token.trim()))
                .fetch_one(&mut *tx)
                .await?;
        if accounts::find_by_email(&mut *tx, &new_email).await?.is_some() {
            return Err(ApiError::Conflict(say("api.email_taken", &[])).into());
        }
        sqlx::query("UPDATE accounts SET email = $2 WHERE id = $1")
            .bind(account.id)
            .bind(&new_email)
            .execute(&mut *tx)
            .await?;
        let actor = Actor {
            account_id: account.id,
            role: "parent",
        };
        let metadata = metadata(actor, None);
        for family_id in accounts::families_of(&account.grants) {
            let command = FamilyCommand::ChangeGuardianEmail {
                account_id: account.id,
                email: new_email.clone().into(),
            };
            match work.execute::<Family>(family_id, command, &(), &metadata).await {
                Ok(_) => {}
                // Invited there, not yet active: the account's address is enough.
                Err(Failure::Refused(ApiError::Forbidden)) => {}
                Err(failure) => return Err(failure),
            }
        }
        let family = accounts::families_of(&account.grants).first().copied();
        let (subject, body) = crate::mail::email_changed(self.mail, &new_email);
        crate::mail::enqueue(work.transaction().await?, family, &account.email, &subject, &body).await?;
        Ok(Account {
            email: new_email,
            ..account
        })
    }

    fn reads(&self) -> Option<&'static [&'static str]> {
        Some(&[DIRECTORY])
    }

    fn contended(&self) -> String {
        say("api.contended_family", &[])
    }
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
    // A change of e-mail asked from a stolen session goes with it.
    cancel_email_changes(&mut tx, account.id).await?;
    let session = match session_for {
        Some(valid_for) => Some(accounts::open_session(&mut tx, account.id, valid_for).await?),
        None => None,
    };
    tx.commit().await?;
    Ok((account, session))
}
