//! A commune's resolvers: its configuration, read by anyone; its services,
//! units, school calendar, closures and absence rules, set by its agents.

#[allow(unused_imports)]
use super::*;

#[derive(Default)]
pub struct CollectivityQuery;

#[Object]
impl CollectivityQuery {
    /// A commune and its configuration: its services, units, rules and
    /// school calendar are public, as the commune publishes them, so anyone
    /// may read them, signed in or not.
    async fn collectivity(
        &self,
        ctx: &Context<'_>,
        id: Uuid,
        #[graphql(
            desc = "its configuration as the events recorded up to this instant left it: the rules in force then"
        )]
        as_of: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<CollectivityView> {
        if as_of.is_some() {
            let then = crate::services::audit::as_of::<Collectivity>(commands(ctx), id, as_of).await?;
            if !then.exists() {
                return Err(ApiError::NotFound(say("commune.not_found", &[])).into());
            }
            return Ok((&then).into());
        }
        let collectivity = commands(ctx).load_collectivity(id).await?;
        Ok((&collectivity).into())
    }
}

#[derive(Default)]
pub struct CollectivityMutation;

#[Object]
impl CollectivityMutation {
    async fn create_collectivity(
        &self,
        ctx: &Context<'_>,
        input: CreateCollectivityInput,
    ) -> Result<CollectivityView> {
        let actor = caller(ctx).require_admin()?;
        let id = input.id.unwrap_or_else(Uuid::new_v4);
        let commands = commands(ctx);
        commands.ensure_unclaimed(id).await?;
        let command = CollectivityCommand::Create { id, name: input.name };
        commands
            .execute::<Collectivity>(id, command, &metadata(actor, None))
            .await?;
        Ok((&commands.load_collectivity(id).await?).into())
    }

    async fn add_service(&self, ctx: &Context<'_>, input: AddServiceInput) -> Result<CollectivityView> {
        let actor = caller(ctx).require_agent_of(input.collectivity_id)?;
        let commands = commands(ctx);
        let service = Service {
            id: input.id.unwrap_or_else(Uuid::new_v4),
            name: input.name,
            kind: input.kind.into(),
        };
        commands.ensure_unclaimed(service.id).await?;
        let command = CollectivityCommand::AddService { service };
        commands
            .execute::<Collectivity>(input.collectivity_id, command, &metadata(actor, None))
            .await?;
        Ok((&commands.load_collectivity(input.collectivity_id).await?).into())
    }

    async fn add_unit(&self, ctx: &Context<'_>, input: AddUnitInput) -> Result<CollectivityView> {
        let actor = caller(ctx).require_agent_of(input.collectivity_id)?;
        let commands = commands(ctx);
        let (collectivity_id, unit) = input.into_domain()?;
        commands.ensure_unclaimed(unit.id).await?;
        let command = CollectivityCommand::AddUnit { unit };
        commands
            .execute::<Collectivity>(collectivity_id, command, &metadata(actor, None))
            .await?;
        Ok((&commands.load_collectivity(collectivity_id).await?).into())
    }

    /// An agent sets the school holiday zone the commune follows and its
    /// département (Bas-Rhin, Haut-Rhin and Moselle have two more public
    /// holidays).
    async fn set_school_zone(
        &self,
        ctx: &Context<'_>,
        collectivity_id: Uuid,
        zone: SchoolZoneGql,
        department: String,
    ) -> Result<CollectivityView> {
        let actor = caller(ctx).require_agent_of(collectivity_id)?;
        let commands = commands(ctx);
        let command = CollectivityCommand::SetSchoolZone {
            zone: zone.into(),
            department,
        };
        commands
            .execute::<Collectivity>(collectivity_id, command, &metadata(actor, None))
            .await?;
        Ok((&commands.load_collectivity(collectivity_id).await?).into())
    }

    /// An agent publishes a school year's calendar: its public holidays,
    /// computed, and its zone's school holidays from the Ministry's data.
    /// Until then, its days cannot be booked. Sent again, it changes
    /// nothing; a year published is never published otherwise.
    async fn publish_school_year(
        &self,
        ctx: &Context<'_>,
        collectivity_id: Uuid,
        #[graphql(desc = "the calendar year it starts in: 2026 for 2026-2027")] school_year: i32,
    ) -> Result<CollectivityView> {
        let actor = caller(ctx).require_agent_of(collectivity_id)?;
        let commands = commands(ctx);
        let command = CollectivityCommand::PublishSchoolYear {
            year: espace_famille_domain::calendar::SchoolYear(school_year),
        };
        commands
            .execute::<Collectivity>(collectivity_id, command, &metadata(actor, None))
            .await?;
        Ok((&commands.load_collectivity(collectivity_id).await?).into())
    }

    /// An agent closes days, for every unit or one, with the reason the
    /// parents read on them. Every booking that stands on those days is
    /// cancelled by the commune, not charged, and its family told by
    /// e-mail; the answer lists them. Sending the same closure again
    /// records nothing new and cancels what is still booked.
    async fn add_closure(&self, ctx: &Context<'_>, input: AddClosureInput) -> Result<ClosureOutcomeView> {
        let actor = caller(ctx).require_agent_of(input.collectivity_id)?;
        let commands = commands(ctx);
        let mail = &ctx.data_unchecked::<AuthSettings>().mail;
        let cancelled = crate::services::closure::close(
            commands,
            input.collectivity_id,
            input.closure(),
            &metadata(actor, None),
            mail,
        )
        .await?;
        Ok(ClosureOutcomeView {
            collectivity: (&commands.load_collectivity(input.collectivity_id).await?).into(),
            cancelled: cancelled.iter().map(CancelledBookingView::from).collect(),
        })
    }

    /// An agent opens booking for a unit's days at an instant, earlier for
    /// residents if asked (sent again with the same id: the window
    /// changes). Before it, those days say when they open
    /// (`BOOKING_NOT_OPEN`), checked with the server's clock when a
    /// basket is decided. An allocated window collects requests until it
    /// closes, then gives each day's places by its priorities and a
    /// lottery whose seed's commitment is published here.
    async fn set_booking_window(
        &self,
        ctx: &Context<'_>,
        input: SetBookingWindowInput,
    ) -> Result<CollectivityView> {
        let actor = caller(ctx).require_agent_of(input.collectivity_id)?;
        if input
            .allocation
            .as_ref()
            .is_some_and(|a| a.criteria.len() > espace_famille_domain::allocation::MAX_CRITERIA)
        {
            return Err(ApiError::Validation(say("api.too_many_criteria", &[])).into());
        }
        let set = crate::services::allocation::set_window(
            commands(ctx),
            input.collectivity_id,
            input.window(),
            input.allocated(),
            &metadata(actor, None),
        )
        .await?;
        Ok((&set).into())
    }

    /// An agent sets a unit's tariff for a period: a price per quotient
    /// familial bracket (no quotient known: the highest), reductions for
    /// the second child and after, what an unjustified absence costs (100 %
    /// by default) and an unexpected presence's penalty. Sent again with
    /// the same id: it changes. Where two overlap, the later one applies.
    async fn set_tariff(&self, ctx: &Context<'_>, input: SetTariffInput) -> Result<CollectivityView> {
        let actor = caller(ctx).require_agent_of(input.collectivity_id)?;
        if input.brackets.len() > espace_famille_domain::collectivity::MAX_BRACKETS
            || input.sibling_reductions.len() > espace_famille_domain::collectivity::MAX_SIBLING_REDUCTIONS
        {
            return Err(ApiError::from(
                espace_famille_domain::collectivity::CollectivityError::InvalidTariff,
            )
            .into());
        }
        let commands = commands(ctx);
        let command = CollectivityCommand::SetTariff {
            tariff: input.tariff(),
        };
        commands
            .execute::<Collectivity>(input.collectivity_id, command, &metadata(actor, None))
            .await?;
        Ok((&commands.load_collectivity(input.collectivity_id).await?).into())
    }

    /// An agent sets how many children a unit takes every day (`places`
    /// null: no limit). A booking beyond them waits on the day's waiting
    /// list; more places promote those waiting, first first.
    async fn set_places(
        &self,
        ctx: &Context<'_>,
        collectivity_id: Uuid,
        unit_id: Uuid,
        places: Option<u32>,
    ) -> Result<CollectivityView> {
        let actor = caller(ctx).require_agent_of(collectivity_id)?;
        let commands = commands(ctx);
        let command = CollectivityCommand::SetPlaces { unit_id, places };
        commands
            .execute::<Collectivity>(collectivity_id, command, &metadata(actor, None))
            .await?;
        Ok((&commands.load_collectivity(collectivity_id).await?).into())
    }

    /// An agent sets how many children a unit takes on one date, whatever
    /// the every-day number (a school trip, say); `places` null: the date
    /// follows the every-day number again.
    async fn set_day_places(
        &self,
        ctx: &Context<'_>,
        collectivity_id: Uuid,
        unit_id: Uuid,
        date: NaiveDate,
        places: Option<u32>,
    ) -> Result<CollectivityView> {
        let actor = caller(ctx).require_agent_of(collectivity_id)?;
        let commands = commands(ctx);
        let command = CollectivityCommand::SetDayPlaces {
            unit_id,
            date,
            places,
        };
        commands
            .execute::<Collectivity>(collectivity_id, command, &metadata(actor, None))
            .await?;
        Ok((&commands.load_collectivity(collectivity_id).await?).into())
    }

    /// An agent sets the reasons of absence parents choose from, and how
    /// many days after a slot an absence may still be reported.
    async fn set_absence_rules(
        &self,
        ctx: &Context<'_>,
        collectivity_id: Uuid,
        reasons: Vec<String>,
        report_days_after: u32,
    ) -> Result<CollectivityView> {
        let actor = caller(ctx).require_agent_of(collectivity_id)?;
        let commands = commands(ctx);
        if reasons.len() > espace_famille_domain::collectivity::MAX_ABSENCE_REASONS {
            return Err(ApiError::Validation(say("api.too_many_absence_reasons", &[])).into());
        }
        let command = CollectivityCommand::SetAbsenceRules {
            rules: espace_famille_domain::collectivity::AbsenceRules {
                reasons,
                report_days_after,
            },
        };
        commands
            .execute::<Collectivity>(collectivity_id, command, &metadata(actor, None))
            .await?;
        Ok((&commands.load_collectivity(collectivity_id).await?).into())
    }

    /// An agent sets the least amount families pay online (PayFiP's is
    /// 1 €, the default) and, optionally, the unpaid amount past due above
    /// which a family cannot book until it pays.
    async fn set_payment_rules(
        &self,
        ctx: &Context<'_>,
        collectivity_id: Uuid,
        minimum_online_cents: i64,
        debt_limit_cents: Option<i64>,
    ) -> Result<CollectivityView> {
        let actor = caller(ctx).require_agent_of(collectivity_id)?;
        let commands = commands(ctx);
        let command = CollectivityCommand::SetPaymentRules {
            rules: espace_famille_domain::collectivity::PaymentRules {
                minimum_online_cents,
                debt_limit_cents,
            },
        };
        commands
            .execute::<Collectivity>(collectivity_id, command, &metadata(actor, None))
            .await?;
        Ok((&commands.load_collectivity(collectivity_id).await?).into())
    }
}
