//! Accounts: login, logout, activation, password reset, agents' accounts,
//! and `me`, the caller's own view across every commune it reaches.

use async_graphql::{Context, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use espace_famille_domain::family::FamilyError;
use uuid::Uuid;

use super::{caller, commands, sessions, types::*};
use crate::auth::accounts::{self, Account, AuthSettings, Grant, TokenPurpose};
use crate::auth::sessions::hash_of;
use crate::error::ApiError;
use crate::mail;
use crate::services::credentials;

fn settings<'a>(ctx: &'a Context<'_>) -> &'a AuthSettings {
    ctx.data_unchecked::<AuthSettings>()
}

#[derive(SimpleObject)]
pub struct GrantView {
    /// admin, agent, parent or auditor.
    pub role: String,
    /// The commune (agent, auditor) or family (parent); none for admin and
    /// an auditor of everything.
    pub scope: Option<Uuid>,
}

impl From<&Grant> for GrantView {
    fn from(grant: &Grant) -> Self {
        let (role, scope) = match *grant {
            Grant::Admin => ("admin", None),
            Grant::Agent(c) => ("agent", Some(c)),
            Grant::Parent(f) => ("parent", Some(f)),
            Grant::Auditor(c) => ("auditor", c),
        };
        GrantView {
            role: role.to_string(),
            scope,
        }
    }
}

/// A session: send `Authorization: Bearer <token>` with every request.
#[derive(SimpleObject)]
pub struct SessionView {
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub account_id: Uuid,
    pub grants: Vec<GrantView>,
}

/// The caller's own account, and everything it reaches with one login.
#[derive(SimpleObject)]
pub struct Me {
    pub account_id: Uuid,
    pub email: String,
    pub grants: Vec<GrantView>,
    /// The families this account is a guardian of.
    pub families: Vec<FamilyView>,
    /// The guardian's own profile; null for an account that is no active
    /// guardian.
    pub profile: Option<super::profile::ProfileView>,
    /// Every commune reached: the families' communes, the agent's communes.
    pub collectivities: Vec<CollectivityView>,
}

#[derive(InputObject)]
pub struct ActivateAccountInput {
    /// From the activation link.
    pub token: String,
    pub password: String,
    /// Required for a guardian.
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
    pub address: Option<super::profile::PostalAddressInput>,
}

#[derive(Default)]
pub struct AccountQuery;

#[Object]
impl AccountQuery {
    /// The caller's account, families and communes.
    async fn me(&self, ctx: &Context<'_>) -> Result<Me> {
        let caller = caller(ctx);
        let identity = caller.identity()?;
        let commands = commands(ctx);
        let mut families = Vec::new();
        let mut loaded = Vec::new();
        let mut communes = Vec::new();
        for family_id in accounts::families_of(&identity.grants) {
            let family = commands.load_family(family_id).await?;
            communes.extend(family.memberships.keys().copied());
            families.push(FamilyView::new(&family, None));
            loaded.push(family);
        }
        let profile = super::profile::ProfileView::of(&identity.email, identity.account_id, &loaded);
        for grant in &identity.grants {
            if let Grant::Agent(c) | Grant::Auditor(Some(c)) = grant {
                communes.push(*c);
            }
        }
        communes.sort();
        communes.dedup();
        let mut collectivities = Vec::new();
        for id in communes {
            collectivities.push((&commands.load_collectivity(id).await?).into());
        }
        Ok(Me {
            account_id: identity.account_id,
            email: identity.email.clone(),
            grants: identity.grants.iter().map(GrantView::from).collect(),
            families,
            profile,
            collectivities,
        })
    }
}

#[derive(Default)]
pub struct AccountMutation;

async fn session(
    ctx: &Context<'_>,
    conn: &mut sqlx::PgConnection,
    account: &Account,
) -> Result<SessionView, ApiError> {
    let valid_for = settings(ctx).session_valid_for;
    let (token, expires_at) = accounts::open_session(conn, account.id, valid_for).await?;
    Ok(SessionView {
        token,
        expires_at,
        account_id: account.id,
        grants: account.grants.iter().map(GrantView::from).collect(),
    })
}

/// The session a link opened, as the mutations answer it.
fn session_view(
    account: &Account,
    session: Option<credentials::NewSession>,
) -> Result<SessionView, ApiError> {
    let (token, expires_at) = session.ok_or_else(|| ApiError::Internal("no session was opened".into()))?;
    Ok(SessionView {
        token,
        expires_at,
        account_id: account.id,
        grants: account.grants.iter().map(GrantView::from).collect(),
    })
}

#[Object]
impl AccountMutation {
    /// Opens a session. Any mistake gives the same `INVALID_CREDENTIALS`;
    /// too many failures for the e-mail or the client give `RATE_LIMITED`.
    async fn login(&self, ctx: &Context<'_>, email: String, password: String) -> Result<SessionView> {
        let commands = commands(ctx);
        let limits = settings(ctx).login_limits;
        // The parent's next request comes at once: this server keeps the
        // session it opens, with the grants read here.
        let sessions = sessions(ctx);
        let start = sessions.read_start();
        let account = accounts::login(
            &commands.pool,
            &email,
            &password,
            &caller(ctx).client_address,
            limits,
        )
        .await?;
        let mut conn = commands.pool.acquire().await.map_err(ApiError::from)?;
        let session = session(ctx, &mut conn, &account).await?;
        drop(conn);
        sessions.keep(start, hash_of(&session.token), account, session.expires_at);
        Ok(session)
    }

    /// Ends the caller's session.
    async fn logout(&self, ctx: &Context<'_>) -> Result<bool> {
        let caller = caller(ctx);
        caller.identity()?;
        let token = caller.bearer.as_deref().ok_or(ApiError::Unauthenticated)?;
        let revoked = accounts::revoke_session(&commands(ctx).pool, token).await?;
        // The other servers hear it from the database.
        sessions(ctx).forget_token(token);
        Ok(revoked)
    }

    /// Activates an account from its e-mailed link: sets the password, and
    /// for a guardian records `AccountActivated` with the profile; logs in.
    async fn activate_account(&self, ctx: &Context<'_>, input: ActivateAccountInput) -> Result<SessionView> {
        let profile = credentials::Profile {
            first_name: input.first_name,
            last_name: input.last_name,
            phone: input.phone,
            address: input.address.map(Into::into),
        };
        let valid_for = settings(ctx).session_valid_for;
        let (account, session) = credentials::activate(
            commands(ctx),
            &input.token,
            &input.password,
            &profile,
            Some(valid_for),
        )
        .await?;
        Ok(session_view(&account, session)?)
    }

    /// Sends a password-reset link if the e-mail has an account. Always
    /// answers true, in the same time whether the e-mail has an account or
    /// not: the link is sent after the answer. Too many requests for one
    /// e-mail or from one client give `RATE_LIMITED`.
    async fn request_password_reset(&self, ctx: &Context<'_>, email: String) -> Result<bool> {
        let commands = commands(ctx);
        let settings = settings(ctx).clone();
        let counted = accounts::count_reset_request(
            &commands.pool,
            &email,
            &caller(ctx).client_address,
            settings.reset_limits,
        )
        .await?;
        if let Some(email) = counted {
            let pool = commands.pool.clone();
            tokio::spawn(async move {
                if let Err(error) = accounts::send_password_reset(&pool, &email, &settings).await {
                    tracing::error!(?error, "a password-reset link was not sent");
                }
            });
        }
        Ok(true)
    }

    /// Sets a new password from a reset link; ends every other session of
    /// the account and opens a new one.
    async fn reset_password(
        &self,
        ctx: &Context<'_>,
        token: String,
        password: String,
    ) -> Result<SessionView> {
        let valid_for = settings(ctx).session_valid_for;
        let (account, session) =
            credentials::reset_password(&commands(ctx).pool, &token, &password, Some(valid_for)).await?;
        sessions(ctx).forget_account(account.id);
        Ok(session_view(&account, session)?)
    }

    /// Gives an e-mail an agent's access to a commune (the administrator,
    /// or an agent of that commune); a new account gets an activation link.
    async fn create_agent_account(
        &self,
        ctx: &Context<'_>,
        collectivity_id: Uuid,
        email: String,
    ) -> Result<GrantView> {
        caller(ctx).require_agent_or_admin(collectivity_id)?;
        let commands = commands(ctx);
        commands.load_collectivity(collectivity_id).await?;
        if accounts::normalised_email(&email).is_none() {
            return Err(ApiError::from(FamilyError::InvalidEmail(email.escape_debug().to_string())).into());
        }
        let settings = settings(ctx);
        let mut tx = commands.pool.begin().await.map_err(ApiError::from)?;
        let grant = Grant::Agent(collectivity_id);
        let account = accounts::ensure_account(&mut tx, &email, &[grant]).await?;
        let (subject, body) = if account.active {
            mail::access_added(&settings.mail)
        } else {
            let token = accounts::issue_token(
                &mut tx,
                account.id,
                TokenPurpose::Activation,
                settings.activation_valid_for,
            )
            .await?;
            mail::activation(&settings.mail, &token)
        };
        mail::enqueue(&mut tx, None, &account.email, &subject, &body).await?;
        tx.commit().await.map_err(ApiError::from)?;
        // A signed-in agent's next request here has the new grant.
        sessions(ctx).forget_account(account.id);
        Ok(GrantView::from(&grant))
    }
}
