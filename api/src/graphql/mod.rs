//! The GraphQL schema. Resolvers are thin: authorise, turn input into domain
//! values, run one command or one query, map the result.

pub mod account;
pub mod booking_views;
pub mod collectivity_views;
pub mod family_views;
pub mod limits;
pub mod parse_cache;
pub mod profile;
pub mod reservation_views;
pub mod types;

use espace_famille_domain::collectivity::Collectivity;
use espace_famille_domain::family::Family;
use std::sync::Arc;

use async_graphql::{Context, EmptySubscription, MergedObject, Object, Result, Schema};
use chrono::NaiveDate;
use espace_famille_domain::collectivity::{CollectivityCommand, Service};
use espace_famille_domain::family::{Child, FamilyCommand, QuotientFamilial};
use espace_famille_domain::reservation::Decision;
use espace_famille_projections::work_queue;
use uuid::Uuid;

use crate::auth::accounts::AuthSettings;
use crate::auth::identity::Caller;
use crate::auth::sessions::Sessions;
use crate::commands::{metadata, Commands};
use crate::error::ApiError;
use crate::services::basket::{self, Basket, BasketAction, BasketLine, BasketStatus};
use crate::services::calendar;
use booking_views::BasketOutcomeView;
use types::*;

pub type AppSchema = Schema<Query, Mutation, EmptySubscription>;

#[derive(MergedObject, Default)]
pub struct Query(BookingQuery, account::AccountQuery);

#[derive(MergedObject, Default)]
pub struct Mutation(
    BookingMutation,
    account::AccountMutation,
    profile::ProfileMutation,
);

/// Builds the schema; the commands, settings, kept sessions and caller
/// come through the context.
pub fn schema(services: Option<(Arc<Commands>, AuthSettings, Arc<Sessions>)>) -> AppSchema {
    // Depth and aliases are checked before execution (see [`limits`]), with
    // room for the standard introspection query.
    let builder = Schema::build(Query::default(), Mutation::default(), EmptySubscription)
        .limit_complexity(2_000)
        .limit_directives(20);
    match services {
        Some((commands, auth, sessions)) => builder.data(commands).data(auth).data(sessions).finish(),
        None => builder.finish(),
    }
}

fn commands<'a>(ctx: &'a Context<'_>) -> &'a Arc<Commands> {
    ctx.data_unchecked::<Arc<Commands>>()
}

fn sessions<'a>(ctx: &'a Context<'_>) -> &'a Sessions {
    ctx.data_unchecked::<Arc<Sessions>>()
}

static NOBODY: Caller = Caller {
    identity: None,
    client_address: String::new(),
    bearer: None,
};

fn caller<'a>(ctx: &'a Context<'_>) -> &'a Caller {
    ctx.data_opt::<Caller>().unwrap_or(&NOBODY)
}

#[derive(Default)]
pub struct BookingQuery;

/// A calendar's cost: its days (at least one, at most the longest range a
/// query may ask, whatever the dates say) times its fields and itself.
fn calendar_cost(from: NaiveDate, to: NaiveDate, child_complexity: usize) -> usize {
    let days = (to - from).num_days().clamp(1, calendar::MAX_CALENDAR_DAYS) as usize;
    days * (child_complexity + 1)
}

#[Object]
impl BookingQuery {
    /// A commune and its configuration: its services, units, rules and
    /// school calendar are public, as the commune publishes them, so anyone
    /// may read them, signed in or not.
    async fn collectivity(&self, ctx: &Context<'_>, id: Uuid) -> Result<CollectivityView> {
        let collectivity = commands(ctx).load_collectivity(id).await?;
        Ok((&collectivity).into())
    }

    /// A family, for its guardians (all of it), and for the agents and
    /// auditors of its communes (their commune's part only).
    async fn family(&self, ctx: &Context<'_>, id: Uuid) -> Result<FamilyView> {
        let family = readable_family(ctx, id).await?;
        Ok(FamilyView::new(
            &family,
            caller(ctx).visible_communes(id).as_deref(),
        ))
    }

    /// A child's days in one unit between two dates (inclusive, at most 93
    /// days): state, deadlines, and why a day cannot be booked or cancelled.
    /// It costs, against the complexity limit, what it reads: each of its
    /// days' fields, and each day.
    #[graphql(complexity = "calendar_cost(from, to, child_complexity)")]
    async fn calendar(
        &self,
        ctx: &Context<'_>,
        child_id: Uuid,
        unit_id: Uuid,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<CalendarDay>> {
        Ok(
            calendar::calendar(commands(ctx), caller(ctx), child_id, unit_id, from, to)
                .await?
                .into_iter()
                .map(CalendarDay::from)
                .collect(),
        )
    }

    /// A family's ISO week: each child, each unit of its services (in the
    /// communes the caller may see), its seven days, and how many are
    /// booked.
    async fn family_week(
        &self,
        ctx: &Context<'_>,
        family_id: Uuid,
        #[graphql(desc = "the ISO year")] year: i32,
        #[graphql(desc = "the ISO week, 1 to 53")] week: u32,
    ) -> Result<FamilyWeekView> {
        let week = calendar::family_week(commands(ctx), caller(ctx), family_id, year, week).await?;
        Ok(FamilyWeekView::from(week))
    }

    /// A reservation with its full event history.
    async fn reservation(&self, ctx: &Context<'_>, id: Uuid) -> Result<ReservationView> {
        Ok(ReservationView::recorded(
            &calendar::reservation(commands(ctx), caller(ctx), id).await?,
        )?)
    }

    /// Cancellations of a commune waiting for an agent, oldest first.
    #[allow(clippy::too_many_arguments)]
    async fn agent_work_queue(
        &self,
        ctx: &Context<'_>,
        collectivity_id: Uuid,
        unit_id: Option<Uuid>,
        child_id: Option<Uuid>,
        kind: Option<PendingKindView>,
        #[graphql(desc = "days from (included)")] from: Option<NaiveDate>,
        #[graphql(desc = "days to (included)")] to: Option<NaiveDate>,
        #[graphql(desc = "the `cursor` of the last item of the previous page")] after: Option<String>,
        #[graphql(default = 100, desc = "at most 500")] first: i32,
    ) -> Result<Vec<PendingCancellationView>> {
        caller(ctx).require_staff_reader_of(collectivity_id)?;
        if !(1..=500).contains(&first) {
            return Err(ApiError::Validation("`first` is 1 to 500".into()).into());
        }
        if let (Some(from), Some(to)) = (from, to) {
            if to < from {
                return Err(ApiError::Validation("`to` is before `from`".into()).into());
            }
        }
        let filter = work_queue::QueueFilter {
            unit_id,
            child_id,
            kind: kind.map(|k| match k {
                PendingKindView::Booking => work_queue::PendingKind::Booking,
                PendingKindView::Cancellation => work_queue::PendingKind::Cancellation,
            }),
            from,
            to,
            after: after.as_deref().map(parse_cursor).transpose()?,
            limit: i64::from(first),
        };
        let pending = work_queue::pending(&commands(ctx).pool, collectivity_id, &filter)
            .await
            .map_err(ApiError::from)?;
        Ok(pending.into_iter().map(Into::into).collect())
    }
}

#[derive(Default)]
pub struct BookingMutation;

#[Object]
impl BookingMutation {
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

    /// An agent enrols a child in one of the commune's services for a
    /// school year.
    async fn enrol_child(&self, ctx: &Context<'_>, input: EnrolChildInput) -> Result<FamilyView> {
        let actor = caller(ctx).require_agent_of(input.collectivity_id)?;
        readable_family(ctx, input.family_id).await?;
        let commands = commands(ctx);
        let collectivity = commands.load_collectivity(input.collectivity_id).await?;
        if !collectivity.services.contains_key(&input.service_id) {
            return Err(
                ApiError::NotFound(format!("no service {} in this commune", input.service_id)).into(),
            );
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
            return Err(ApiError::Validation("a quotient familial cannot be negative".into()).into());
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
    /// unreadable), its guardians' accounts, sessions and messages are
    /// deleted. Its events and bookings stay, anonymous.
    async fn erase_family(&self, ctx: &Context<'_>, family_id: Uuid) -> Result<bool> {
        let caller = caller(ctx);
        let commands = commands(ctx);
        let family = readable_family(ctx, family_id).await?;
        let actor = caller.require_agent_of_any(&family.collectivities())?;
        let guardians = crate::services::family::erase(commands, family_id, &metadata(actor, None)).await?;
        // Other servers hear it from the database; this one forgets now.
        for account in guardians {
            sessions(ctx).forget_account(account);
        }
        Ok(true)
    }

    /// A guardian validates a basket of bookings and cancellations: all
    /// lines are written in one transaction, or none (unless
    /// `keepValidLines`). Periods add a line per child, unit and day of
    /// their pattern, after the lines given one by one; a day of a period
    /// the unit is closed is skipped (`skipped`, with its reason) and
    /// refuses nothing. Retrying with the same `basketId` returns the
    /// first outcome and writes nothing.
    async fn submit_basket(&self, ctx: &Context<'_>, input: SubmitBasketInput) -> Result<BasketOutcomeView> {
        let actor = caller(ctx).require_parent_of(input.family_id)?;
        let mut lines: Vec<BasketLine> = input
            .lines
            .into_iter()
            .map(|l| BasketLine {
                action: l.action.into(),
                child_id: l.child_id,
                unit_id: l.unit_id,
                date: l.date,
                skip_if_closed: false,
            })
            .collect();
        for period in &input.periods {
            lines.extend(period.period().lines()?);
        }
        let basket = Basket {
            id: input.basket_id,
            family_id: input.family_id,
            lines,
            keep_valid_lines: input.keep_valid_lines,
        };
        let metadata = metadata(actor, Some(basket.id));
        let outcome = basket::submit(commands(ctx), basket, &metadata).await?;
        Ok(BasketOutcomeView::from(&outcome))
    }

    /// A guardian asks to cancel one booking (a basket of one line).
    async fn request_cancellation(&self, ctx: &Context<'_>, reservation_id: Uuid) -> Result<ReservationView> {
        let commands = commands(ctx);
        let caller = caller(ctx);
        caller.identity()?;
        let slot = commands.reservation_slot(reservation_id).await?;
        let actor = caller
            .require_parent_of(slot.family_id)
            .map_err(|error| hidden_reservation(caller, &slot, reservation_id, error))?;
        let basket = Basket {
            id: Uuid::new_v4(),
            family_id: slot.family_id,
            lines: vec![BasketLine {
                action: BasketAction::Cancel,
                child_id: slot.child_id,
                unit_id: slot.unit_id,
                date: slot.date,
                skip_if_closed: false,
            }],
            keep_valid_lines: false,
        };
        let metadata = metadata(actor, Some(basket.id));
        let outcome = basket::submit(commands, basket, &metadata).await?;
        if outcome.status != BasketStatus::Accepted {
            let refusal = outcome.lines.into_iter().find_map(|l| l.refusal);
            return Err(refusal
                .map(ApiError::Refused)
                .unwrap_or_else(|| ApiError::Internal("refused cancellation without a reason".into()))
                .into());
        }
        Ok(ReservationView::recorded(
            &calendar::reservation(commands, caller, reservation_id).await?,
        )?)
    }

    /// A guardian reports the child absent on a booked day, with one of the
    /// commune's reasons: also past the cancellation deadline, on the day
    /// itself, up to the delay the commune allows after it.
    async fn report_absence(
        &self,
        ctx: &Context<'_>,
        reservation_id: Uuid,
        reason: String,
    ) -> Result<ReservationView> {
        let caller = caller(ctx);
        caller.identity()?;
        let command = espace_famille_domain::reservation::ReservationCommand::ReportAbsence { reason };
        let reservation = crate::services::absence::run(commands(ctx), reservation_id, command, |slot| {
            let actor = caller
                .require_parent_of(slot.family_id)
                .map_err(|error| hidden_reservation(caller, slot, reservation_id, error))?;
            Ok(metadata(actor, None))
        })
        .await?;
        Ok(ReservationView::new(reservation_id, &reservation)?)
    }

    /// An agent judges a reported absence, justified or not (again, to
    /// correct it), with a note.
    async fn judge_absence(
        &self,
        ctx: &Context<'_>,
        reservation_id: Uuid,
        justified: bool,
        note: Option<String>,
    ) -> Result<ReservationView> {
        let caller = caller(ctx);
        caller.identity()?;
        let command =
            espace_famille_domain::reservation::ReservationCommand::JudgeAbsence { justified, note };
        let reservation = crate::services::absence::run(commands(ctx), reservation_id, command, |slot| {
            let actor = caller
                .require_agent_of(slot.collectivity_id)
                .map_err(|error| hidden_reservation(caller, slot, reservation_id, error))?;
            Ok(metadata(actor, None))
        })
        .await?;
        Ok(ReservationView::new(reservation_id, &reservation)?)
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
            return Err(ApiError::Validation("too many reasons of absence".into()).into());
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

    /// An agent decides on many bookings and cancellations at once, all or
    /// none (at most 200): any refusal refuses them all.
    async fn decide_many(
        &self,
        ctx: &Context<'_>,
        decisions: Vec<DecisionInput>,
    ) -> Result<Vec<ReservationView>> {
        let caller = caller(ctx);
        // Every decision is an agent's: the role is checked on each below.
        let actor = crate::auth::identity::Actor {
            account_id: caller.identity()?.account_id,
            role: "agent",
        };
        let items = decisions
            .into_iter()
            .map(|d| {
                let decision = if d.approve {
                    Decision::Approve { comment: d.note }
                } else {
                    Decision::Reject {
                        reason: d.note.unwrap_or_default(),
                    }
                };
                (d.reservation_id, decision)
            })
            .collect();
        let decided = crate::services::decision::decide_many(
            commands(ctx),
            items,
            &metadata(actor, None),
            |id, slot| {
                caller
                    .require_agent_of(slot.collectivity_id)
                    .map(|_| ())
                    .map_err(|error| hidden_reservation(caller, slot, id, error))
            },
        )
        .await?;
        decided
            .iter()
            .map(|(id, reservation)| Ok(ReservationView::new(*id, reservation)?))
            .collect()
    }

    /// An agent accepts a pending cancellation.
    async fn approve_cancellation(
        &self,
        ctx: &Context<'_>,
        reservation_id: Uuid,
        comment: Option<String>,
    ) -> Result<ReservationView> {
        decide(ctx, reservation_id, Decision::Approve { comment }).await
    }

    /// An agent refuses a pending cancellation, with the reason the parent
    /// will read; the booking stands.
    async fn reject_cancellation(
        &self,
        ctx: &Context<'_>,
        reservation_id: Uuid,
        reason: String,
    ) -> Result<ReservationView> {
        decide(ctx, reservation_id, Decision::Reject { reason }).await
    }
}

/// A family the caller may read (its guardians, the agents and auditors of
/// its communes). A family the caller may not read answers as one that
/// does not exist: no answer confirms that an id is in use.
async fn readable_family(
    ctx: &Context<'_>,
    id: Uuid,
) -> Result<Arc<espace_famille_domain::family::Family>, ApiError> {
    let caller = caller(ctx);
    caller.identity()?;
    let hidden = || ApiError::NotFound(format!("no family {id}"));
    let family = match commands(ctx).current_family(id).await {
        Err(ApiError::NotFound(_)) => return Err(hidden()),
        other => other?,
    };
    caller
        .require_reader_of(id, &family.collectivities())
        .map_err(|_| hidden())?;
    Ok(family)
}

/// The refusal of an action on a reservation: `error` for a caller who may
/// read it, else the answer an unknown reservation gets.
fn hidden_reservation(
    caller: &Caller,
    slot: &espace_famille_domain::reservation::Slot,
    id: Uuid,
    error: ApiError,
) -> ApiError {
    match caller.require_reader_of(slot.family_id, &[slot.collectivity_id]) {
        Ok(_) => error,
        Err(_) => ApiError::NotFound(format!("no reservation {id}")),
    }
}

/// Runs a family command and answers with the family as the caller may see
/// it.
async fn run_family_command(
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

async fn decide(ctx: &Context<'_>, reservation_id: Uuid, decision: Decision) -> Result<ReservationView> {
    let commands = commands(ctx);
    let caller = caller(ctx);
    caller.identity()?;
    let decided = crate::services::decision::decide(commands, reservation_id, decision, |slot| {
        let actor = caller
            .require_agent_of(slot.collectivity_id)
            .map_err(|error| hidden_reservation(caller, slot, reservation_id, error))?;
        Ok(metadata(actor, None))
    })
    .await?;
    // The answer comes from the state just decided; the history is read
    // only if asked for.
    Ok(ReservationView::new(reservation_id, &decided)?)
}
