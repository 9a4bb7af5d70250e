//! Bookings' resolvers: a child's calendar and a family's week, baskets,
//! cancellations, absences, the agents' queue and decisions.

#[allow(unused_imports)]
use super::*;

#[derive(Default)]
pub struct ReservationQuery;

#[Object]
impl ReservationQuery {
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
    async fn reservation(
        &self,
        ctx: &Context<'_>,
        id: Uuid,
        #[graphql(desc = "as the events recorded up to this instant left it")] as_of: Option<
            chrono::DateTime<chrono::Utc>,
        >,
    ) -> Result<ReservationView> {
        Ok(ReservationView::recorded(
            &calendar::reservation(commands(ctx), caller(ctx), id, as_of).await?,
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
            return Err(ApiError::Validation(say("api.first_out_of_range", &[])).into());
        }
        if let (Some(from), Some(to)) = (from, to) {
            if to < from {
                return Err(ApiError::Validation(say("api.range_reversed", &[])).into());
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
pub struct ReservationMutation;

#[Object]
impl ReservationMutation {
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
                origin: espace_famille_domain::reservation::Origin::Calendar,
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
        let mut outcome = basket::submit(commands(ctx), basket, &metadata).await?;
        // Its prepaid lines' invoices, for the parent to pay them now.
        if outcome.lines.iter().any(|l| l.awaiting_payment) {
            let delay = ctx.data_unchecked::<Arc<crate::payment::Payments>>().prepaid_for;
            outcome.prepayment_invoices =
                crate::services::prepayment::issue_for_basket(commands(ctx), outcome.basket_id, delay)
                    .await?;
        }
        Ok(BasketOutcomeView::from(&outcome))
    }

    /// A guardian asks to cancel one booking (a basket of one line); on
    /// the waiting list, it leaves it.
    async fn request_cancellation(&self, ctx: &Context<'_>, reservation_id: Uuid) -> Result<ReservationView> {
        cancel_one(ctx, reservation_id).await
    }

    /// A guardian takes a booking off the waiting list, whenever: no place
    /// was given, no deadline applies. Refused (`NOT_WAIT_LISTED`) for a
    /// booking that is not waiting, which `requestCancellation` cancels.
    async fn leave_waiting_list(&self, ctx: &Context<'_>, reservation_id: Uuid) -> Result<ReservationView> {
        let caller = caller(ctx);
        caller.identity()?;
        let command = espace_famille_domain::reservation::ReservationCommand::LeaveWaitingList;
        let reservation = crate::services::absence::run(commands(ctx), reservation_id, command, |slot| {
            let actor = caller
                .require_parent_of(slot.family_id)
                .map_err(|error| hidden_reservation(caller, slot, reservation_id, error))?;
            Ok(metadata(actor, None))
        })
        .await?;
        Ok(ReservationView::new(reservation_id, &reservation)?)
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
        // An agent's judgement, like a decision, needs the reservation
        // alone.
        decide(ctx, reservation_id, |reservation| {
            reservation.check_judge_absence(justified, note.as_deref())
        })
        .await
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
        decide(ctx, reservation_id, |r| {
            r.check_decision(Decision::Approve {
                comment: comment.clone(),
            })
        })
        .await
    }

    /// An agent refuses a pending cancellation, with the reason the parent
    /// will read; the booking stands.
    async fn reject_cancellation(
        &self,
        ctx: &Context<'_>,
        reservation_id: Uuid,
        reason: String,
    ) -> Result<ReservationView> {
        decide(ctx, reservation_id, |r| {
            r.check_decision(Decision::Reject {
                reason: reason.clone(),
            })
        })
        .await
    }
}

/// A calendar's cost: its days (at least one, at most the longest range a
/// query may ask, whatever the dates say) times its fields and itself.
fn calendar_cost(from: NaiveDate, to: NaiveDate, child_complexity: usize) -> usize {
    let days = (to - from).num_days().clamp(1, calendar::MAX_CALENDAR_DAYS) as usize;
    days * (child_complexity + 1)
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
        Err(_) => ApiError::NotFound(say("api.no_reservation", &[("id", &id)])),
    }
}

/// An agent of the reservation's commune decides on it: `step` gives the
/// event from the reservation alone.
async fn decide(
    ctx: &Context<'_>,
    reservation_id: Uuid,
    step: impl Fn(&Reservation) -> Result<ReservationEvent, ReservationError> + Send + Sync,
) -> Result<ReservationView> {
    let commands = commands(ctx);
    let caller = caller(ctx);
    caller.identity()?;
    let decided = crate::services::decision::decide(commands, reservation_id, step, |slot| {
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

/// A guardian's cancellation of one booking: a basket of one line.
async fn cancel_one(ctx: &Context<'_>, reservation_id: Uuid) -> Result<ReservationView> {
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
            origin: espace_famille_domain::reservation::Origin::Calendar,
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
        &calendar::reservation(commands, caller, reservation_id, None).await?,
    )?)
}
