//! The guardian's profile (the portal's "Informations profil"), a change of
//! e-mail that takes effect only from a link sent to the new address, and
//! the family's other guardians, each with a login of their own.

use async_graphql::{Context, InputObject, Object, Result, SimpleObject};
use espace_famille_domain::family::{Family, FamilyCommand, Guardian, GuardianProfile, PostalAddress};
use uuid::Uuid;

use super::family::{readable_family, run_family_command};
use super::types::FamilyView;
use super::{caller, commands, sessions};
use crate::auth::accounts::{self, AuthSettings};
use crate::auth::identity::Actor;
use crate::commands::metadata;
use crate::error::ApiError;
use crate::services::credentials;

#[derive(InputObject)]
pub struct PostalAddressInput {
    /// Number and street.
    pub line1: String,
    /// Building, staircase, lieu-dit.
    pub line2: Option<String>,
    pub postcode: String,
    pub city: String,
}

impl From<PostalAddressInput> for PostalAddress {
    fn from(input: PostalAddressInput) -> Self {
        PostalAddress {
            line1: input.line1,
            line2: input.line2,
            postcode: input.postcode,
            city: input.city,
        }
    }
}

#[derive(SimpleObject, Clone)]
pub struct PostalAddressView {
    pub line1: String,
    pub line2: Option<String>,
    pub postcode: String,
    pub city: String,
}

impl From<&PostalAddress> for PostalAddressView {
    fn from(address: &PostalAddress) -> Self {
        PostalAddressView {
            line1: address.line1.clone(),
            line2: address.line2.clone(),
            postcode: address.postcode.clone(),
            city: address.city.clone(),
        }
    }
}

/// A guardian of the family, as its readers see them (null fields once
/// the family was erased).
#[derive(SimpleObject)]
pub struct GuardianView {
    pub account_id: Uuid,
    pub email: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
    pub address: Option<PostalAddressView>,
}

impl From<&Guardian> for GuardianView {
    fn from(guardian: &Guardian) -> Self {
        let profile = &guardian.profile;
        GuardianView {
            account_id: guardian.account_id,
            email: guardian.email.as_ref().and_then(|e| e.known().cloned()),
            first_name: profile.first_name.known().cloned(),
            last_name: profile.last_name.known().cloned(),
            phone: profile.phone.known().cloned().flatten(),
            address: profile
                .address
                .known()
                .and_then(|a| a.as_ref())
                .map(PostalAddressView::from),
        }
    }
}

/// The caller's own profile: the account's e-mail and what the guardian
/// told about themself.
#[derive(SimpleObject)]
pub struct ProfileView {
    pub email: String,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub phone: Option<String>,
    pub address: Option<PostalAddressView>,
}

impl ProfileView {
    /// The profile of `account_id` in the first of `families` where it is
    /// an active guardian.
    pub fn of(email: &str, account_id: Uuid, families: &[Family]) -> Option<ProfileView> {
        let guardian = families
            .iter()
            .flat_map(|f| f.guardians.iter())
            .find(|g| g.account_id == account_id)?;
        let view = GuardianView::from(guardian);
        Some(ProfileView {
            email: email.to_string(),
            first_name: view.first_name,
            last_name: view.last_name,
            phone: view.phone,
            address: view.address,
        })
    }
}

/// The whole profile, as the form shows it: what is left out is removed.
#[derive(InputObject)]
pub struct ProfileInput {
    pub first_name: String,
    pub last_name: String,
    pub phone: Option<String>,
    pub address: Option<PostalAddressInput>,
}

#[derive(Default)]
pub struct ProfileMutation;

#[Object]
impl ProfileMutation {
    /// A guardian updates their profile, in every family they are a
    /// guardian of (`GuardianProfileUpdated`).
    async fn update_profile(&self, ctx: &Context<'_>, input: ProfileInput) -> Result<ProfileView> {
        let identity = caller(ctx).identity()?;
        let families = accounts::families_of(&identity.grants);
        if families.is_empty() {
            return Err(ApiError::Forbidden.into());
        }
        let commands = commands(ctx);
        let profile = GuardianProfile {
            first_name: input.first_name.into(),
            last_name: input.last_name.into(),
            phone: input.phone.filter(|p| !p.trim().is_empty()).into(),
            address: input.address.map(PostalAddress::from).into(),
        };
        let actor = Actor {
            account_id: identity.account_id,
            role: "parent",
        };
        let mut updated = Vec::new();
        for family_id in families {
            let family = commands.load_family(family_id).await?;
            if family.is_guardian(identity.account_id) && !family.erased {
                let command = FamilyCommand::UpdateGuardianProfile {
                    account_id: identity.account_id,
                    profile: profile.clone(),
                };
                commands
                    .execute::<Family>(family_id, command, &metadata(actor, None))
                    .await?;
                updated.push(commands.load_family(family_id).await?);
            }
        }
        ProfileView::of(&identity.email, identity.account_id, &updated)
            .ok_or_else(|| ApiError::Forbidden.into())
    }

    /// Asks for the caller's e-mail to change (the password is asked again:
    /// a session left open must not be enough). A link goes to the new
    /// address, and the change takes effect only from it; the current
    /// address is told. Answers true whether or not the new address already
    /// has an account (then it is told so, and nothing changes).
    async fn request_email_change(
        &self,
        ctx: &Context<'_>,
        new_email: String,
        password: String,
    ) -> Result<bool> {
        let caller = caller(ctx);
        let identity = caller.identity()?;
        let settings = ctx.data_unchecked::<AuthSettings>();
        let pool = &commands(ctx).pool;
        let account = accounts::login(
            pool,
            &identity.email,
            &password,
            &caller.client_address,
            settings.login_limits,
        )
        .await?;
        credentials::request_email_change(pool, &account, &new_email, &settings.mail).await?;
        Ok(true)
    }

    /// Confirms a new e-mail from the link sent to it: the account takes
    /// the address, each family records `GuardianEmailChanged`, the former
    /// address is told.
    async fn confirm_email_change(&self, ctx: &Context<'_>, token: String) -> Result<bool> {
        let settings = ctx.data_unchecked::<AuthSettings>();
        let account = credentials::confirm_email_change(commands(ctx), &token, &settings.mail).await?;
        sessions(ctx).forget_account(account.id);
        Ok(true)
    }

    /// A guardian of the family, or an agent of one of its communes,
    /// invites another guardian by e-mail (`GuardianInvited`): they get an
    /// activation link for an account of their own (or, with an account
    /// already, the family is added to it), and see the whole family.
    async fn invite_guardian(&self, ctx: &Context<'_>, family_id: Uuid, email: String) -> Result<FamilyView> {
        let family = readable_family(ctx, family_id).await?;
        let actor = caller(ctx).require_guardian_or_agent(family_id, &family.collectivities())?;
        let command = FamilyCommand::InviteGuardian { email: email.into() };
        run_family_command(ctx, family_id, command, actor).await
    }
}
