//! A family's resolvers: opening its account, its children, enrolments,
//! memberships and quotients, its erasure.

#[allow(unused_imports)]
use super::*;

#[derive(Default)]
pub struct FamilyQuery;

#[Object]
impl FamilyQuery {
    /// A family, for its guardians (all of it), and for the agents and
    /// auditors of its communes (their commune's part only).
    async fn family(
        &self,
        ctx: &Context<'_>,
        id: Uuid,
        #[graphql(
            desc = "as the events recorded up to this instant left it (personal values erased since read as erased)"
        )]
        as_of: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<FamilyView> {
        let mut family = readable_family(ctx, id).await?;
        if as_of.is_some() {
            let then = crate::services::audit::as_of::<espace_famille_domain::family::Family>(
                commands(ctx),
                id,
                as_of,
            )
            .await?;
            if then.id.is_none() {
                return Err(ApiError::NotFound(say("api.no_family", &[("id", &id)])).into());
            }
            family = Arc::new(then);
        }
        Ok(FamilyView::new(
            &family,
            caller(ctx).visible_communes(id).as_deref(),
        ))
    }
}

#[derive(Default)]
pub struct FamilyMutation;

#[Object]
impl FamilyMutation {
    /// An agent opens a family's account for its guardian.
    async fn open_family_account(
        &self,
        ctx: &Context<'_>,
        input: OpenFamilyAccountInput,
    ) -> Result<FamilyView> {
        let actor = caller(ctx).require_agent_of(input.collectivity_id)?;
        let commands = commands(ctx);
        commands.load_collectivity(input.collectivity_id).await?;
        let id = input.id.unwrap_or_else(Uuid::new_v4);
        commands.ensure_unclaimed(id).await?;
        let command = FamilyCommand::OpenAccount {
            id,
            collectivity_id: input.collectivity_id,
            family_ref: input.family_ref,
            guardian_email: input.guardian_email.into(),
        };
        run_family_command(ctx, id, command, actor).await
    }

    /// The family's guardian, or an agent of one of its communes, registers
    /// a child.
    async fn register_child(&self, ctx: &Context<'_>, input: RegisterChildInput) -> Result<FamilyView> {
        let commands = commands(ctx);
        let family = readable_family(ctx, input.family_id).await?;
        let actor = caller(ctx).require_guardian_or_agent(input.family_id, &family.collectivities())?;
        let child = Child {
            id: input.id.unwrap_or_else(Uuid::new_v4),
            first_name: input.first_name.into(),
            last_name: input.last_name.into(),
            birth_date: input.birth_date.into(),
            school_class: input.school_class.into(),
        };
        commands.ensure_unclaimed(child.id).await?;
        let command = FamilyCommand::RegisterChild { child };
        run_family_command(ctx, input.family_id, command, actor).await
    }

    /// The family's guardian, or an agent of one of its communes, declares
    /// a child's allergies and PAI: the roll-call sheet flags the child.
    async fn declare_child_health(
        &self,
        ctx: &Context<'_>,
        input: DeclareChildHealthInput,
    ) -> Result<FamilyView> {
        let family = readable_family(ctx, input.family_id).await?;
        let actor = caller(ctx).require_guardian_or_agent(input.family_id, &family.collectivities())?;
        let command = FamilyCommand::DeclareChildHealth {
            child_id: input.child_id,
            health: ChildHealth {
                allergies: input.allergies,
                pai: input.pai,
            }
            .into(),
        };
        run_family_command(ctx, input.family_id, command, actor).await
    }

    /// An agent records whether the family lives in the agent's commune:
    /// residents may be let in to book earlier.
    async fn set_residence(
        &self,
        ctx: &Context<'_>,
        family_id: Uuid,
        collectivity_id: Uuid,
        resident: bool,
    ) -> Result<FamilyView> {
        let actor = caller(ctx).require_agent_of(collectivity_id)?;
        readable_family(ctx, family_id).await?;
        let command = FamilyCommand::SetResidence {
            collectivity_id,
            resident,
        };
        run_family_command(ctx, family_id, command, actor).await
    }

    /// An agent records whether both parents (or the single parent) work:
    /// a priority the commune may allocate places by.
    async fn set_working_parents(
        &self,
        ctx: &Context<'_>,
        family_id: Uuid,
        collectivity_id: Uuid,
        both_working: bool,
    ) -> Result<FamilyView> {
        let actor = caller(ctx).require_agent_of(collectivity_id)?;
        readable_family(ctx, family_id).await?;
        let command = FamilyCommand::SetWorkingParents {
            collectivity_id,
            both_working,
        };
        run_family_command(ctx, family_id, command, actor).await
    }

    /// An agent enrols a child in one of the commune's services for a
    /// school year.
    async fn enrol_child(&self, ctx: &Context<'_>, input: EnrolChildInput) -> Result<FamilyView> {
        let actor = caller(ctx).require_agent_of(input.collectivity_id)?;
        readable_family(ctx, input.family_id).await?;
        let commands = commands(ctx);
        let collectivity = commands.load_collectivity(input.collectivity_id).await?;
        if !collectivity.services.contains_key(&input.service_id) {
            return Err(ApiError::NotFound(say("api.no_service_here", &[("id", &input.service_id)])).into());
        }
        let command = FamilyCommand::EnrolChild {
            enrolment: input.enrolment(),
        };
        run_family_command(ctx, input.family_id, command, actor).await
    }

    /// A guardian lets another commune join the family: the code to give
    /// that commune's agent (valid a week, once).
    async fn create_family_join_code(&self, ctx: &Context<'_>, family_id: Uuid) -> Result<FamilyJoinCode> {
        let actor = caller(ctx).require_parent_of(family_id)?;
        let commands = commands(ctx);
        let mut conn = commands.pool.acquire().await.map_err(ApiError::from)?;
        let (code, expires_at) = crate::join_codes::create(&mut conn, family_id, actor.account_id).await?;
        Ok(FamilyJoinCode {
            family_id,
            code,
            expires_at,
        })
    }

    /// An agent links a family to the agent's commune, under the commune's
    /// own reference, with the code its guardian gave: the guardian keeps
    /// one login for both communes. Nothing of the family is shown before.
    async fn join_family(&self, ctx: &Context<'_>, input: JoinFamilyInput) -> Result<FamilyView> {
        let actor = caller(ctx).require_agent_of(input.collectivity_id)?;
        let commands = commands(ctx);
        commands.load_collectivity(input.collectivity_id).await?;
        let family_id = crate::services::family::join(
            commands,
            input.collectivity_id,
            &input.code,
            &input.family_ref,
            &metadata(actor, None),
        )
        .await?;
        let visible = caller(ctx).visible_communes(family_id);
        Ok(FamilyView::new(
            &commands.load_family(family_id).await?,
            visible.as_deref(),
        ))
    }

    /// An agent sets the family's quotient familial in the agent's commune
    /// for a period.
    async fn set_quotient_familial(
        &self,
        ctx: &Context<'_>,
        input: SetQuotientFamilialInput,
    ) -> Result<FamilyView> {
        let actor = caller(ctx).require_agent_of(input.collectivity_id)?;
        readable_family(ctx, input.family_id).await?;
        if input.quotient < 0 {
            return Err(ApiError::Validation(say("api.negative_quotient", &[])).into());
        }
        let command = FamilyCommand::SetQuotientFamilial {
            quotient: QuotientFamilial {
                collectivity_id: input.collectivity_id,
                quotient: input.quotient as u32,
                valid_from: input.valid_from,
                valid_until: input.valid_until,
            },
        };
        run_family_command(ctx, input.family_id, command, actor).await
    }

    /// GDPR erasure, by an agent of one of the family's communes: the
    /// family's key is destroyed (every personal value in its events becomes
    /// unreadable), its guardians' accounts, sessions and messages and its
    /// requests' files are deleted. Its events and bookings stay, anonymous.
    async fn erase_family(&self, ctx: &Context<'_>, family_id: Uuid) -> Result<bool> {
        let caller = caller(ctx);
        let commands = commands(ctx);
        let family = readable_family(ctx, family_id).await?;
        let actor = caller.require_agent_of_any(&family.collectivities())?;
        let files = ctx.data_unchecked::<Arc<crate::files::Files>>();
        let guardians =
            crate::services::family::erase(commands, files, family_id, &metadata(actor, None)).await?;
        // Other servers hear it from the database; this one forgets now.
        for account in guardians {
            sessions(ctx).forget_account(account);
        }
        Ok(true)
    }
}

/// A family the caller may read (its guardians, the agents and auditors of
/// its communes). A family the caller may not read answers as one that
/// does not exist: no answer confirms that an id is in use.
pub(super) async fn readable_family(
    ctx: &Context<'_>,
    id: Uuid,
) -> Result<Arc<espace_famille_domain::family::Family>, ApiError> {
    let caller = caller(ctx);
    caller.identity()?;
    let hidden = || ApiError::NotFound(say("api.no_family", &[("id", &id)]));
    let family = match commands(ctx).current_family(id).await {
        Err(ApiError::NotFound(_)) => return Err(hidden()),
        other => other?,
    };
    caller
        .require_reader_of(id, &family.collectivities())
        .map_err(|_| hidden())?;
    Ok(family)
}

/// Runs a family command and answers with the family as the caller may see
/// it.
pub(super) async fn run_family_command(
    ctx: &Context<'_>,
    family_id: Uuid,
    command: FamilyCommand,
    actor: crate::auth::identity::Actor,
) -> Result<FamilyView> {
    let commands = commands(ctx);
    commands
        .execute::<Family>(family_id, command, &metadata(actor, None))
        .await?;
    let visible = caller(ctx).visible_communes(family_id);
    Ok(FamilyView::new(
        &commands.load_family(family_id).await?,
        visible.as_deref(),
    ))
}
