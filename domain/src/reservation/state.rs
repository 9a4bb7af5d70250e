//! The reservation as its events built it, and the checks behind its decisions.

#[allow(unused_imports)]
use super::*;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Reservation {
    pub slot: Option<Slot>,
    pub status: ReservationStatus,
    /// What the last roll call recorded, if one was taken.
    #[serde(default)]
    pub attendance: Option<Attendance>,
    /// The prepayment invoice that paid the booking, if one did.
    #[serde(default)]
    pub paid_by: Option<Uuid>,
}

impl Reservation {
    fn unit(context: &BookingContext, unit_id: Uuid) -> Result<&Unit, ReservationError> {
        context
            .collectivity
            .units
            .get(&unit_id)
            .ok_or(ReservationError::UnknownUnit(unit_id))
    }

    /// Whether `child` can be booked into `unit` on `date` now: the slot it
    /// would book, or the reason it cannot. The calendar shows this same
    /// verdict next to every day.
    pub fn check_request(
        &self,
        child_id: Uuid,
        unit_id: Uuid,
        date: NaiveDate,
        context: &BookingContext,
    ) -> Result<Slot, ReservationError> {
        text::date("a day", date)?;
        let unit = Self::unit(context, unit_id)?;
        let family = &context.family;
        if !family.children.contains_key(&child_id) {
            return Err(ReservationError::UnknownChild(child_id));
        }
        self.check_family(context)?;
        if self.status.stands() {
            return Err(ReservationError::AlreadyBooked);
        }
        if self.status == ReservationStatus::WaitListed {
            return Err(ReservationError::AlreadyWaitListed);
        }
        if self.status == ReservationStatus::AllocationPending {
            return Err(ReservationError::AlreadyRequested);
        }
        let calendar = &context.collectivity.calendar;
        unit.opening
            .check_unit(unit.id, date, calendar)
            .map_err(|reason| ReservationError::UnitClosed { date, reason })?;
        let collectivity_id = context
            .collectivity
            .id
            .ok_or(ReservationError::UnknownUnit(unit_id))?;
        let year = SchoolYear::of(date);
        if !family.is_enrolled(child_id, collectivity_id, unit.service_id, year) {
            return Err(ReservationError::NotEnrolled(year));
        }
        let resident = family.residences.contains(&collectivity_id);
        if let Some(opens) = context.collectivity.booking_opens_at(unit_id, date, resident) {
            if context.now < opens {
                return Err(ReservationError::BookingNotOpen(opens));
            }
        }
        let deadline = unit.booking_deadline.deadline_for(date, calendar);
        if context.now > deadline {
            return Err(ReservationError::DeadlinePassed(deadline));
        }
        if let Some(limit) = context.collectivity.payment_rules.debt_limit_cents {
            if context.overdue_cents > limit {
                return Err(ReservationError::DebtLimit {
                    owed: context.overdue_cents,
                    limit,
                });
            }
        }
        // A prepaid day is paid at its tariff, at once; places given by an
        // allocation run are not booked at once, so are not prepaid.
        if unit.billing == BillingMode::Prepaid
            && (context.collectivity.tariff_on(unit_id, date).is_none()
                || context
                    .collectivity
                    .collecting(unit_id, date, context.now)
                    .is_some())
        {
            return Err(ReservationError::PrepaidNotAvailable);
        }
        Self::slot_of(context, unit, child_id, date)
    }

    /// The slot of `child` in `unit` on `date`, in the context's family
    /// and commune.
    fn slot_of(
        context: &BookingContext,
        unit: &Unit,
        child_id: Uuid,
        date: NaiveDate,
    ) -> Result<Slot, ReservationError> {
        Ok(Slot {
            family_id: context
                .family
                .id
                .ok_or(ReservationError::UnknownChild(child_id))?,
            child_id,
            collectivity_id: context
                .collectivity
                .id
                .ok_or(ReservationError::UnknownUnit(unit.id))?,
            service_id: unit.service_id,
            unit_id: unit.id,
            date,
        })
    }

    /// Whether this booking can be cancelled now: the event a cancellation
    /// would record, or the reason it cannot.
    pub fn check_cancel(&self, context: &BookingContext) -> Result<ReservationEvent, ReservationError> {
        self.check_family(context)?;
        if self.status == ReservationStatus::WaitListed {
            // Whenever: the place was never given.
            return Ok(ReservationEvent::LeftWaitingList);
        }
        if self.status == ReservationStatus::AllocationPending {
            // A request withdrawn before its run.
            return Ok(ReservationEvent::ReservationCancelled);
        }
        if self.status == ReservationStatus::AwaitingPayment {
            return Err(ReservationError::AwaitingPayment);
        }
        let slot = match (self.slot, self.status) {
            (Some(slot), ReservationStatus::Confirmed | ReservationStatus::AwaitingApproval) => slot,
            _ => return Err(self.why_it_cannot_change()),
        };
        let unit = Self::unit(context, slot.unit_id)?;
        let deadline = unit
            .cancellation_deadline
            .deadline_for(slot.date, &context.collectivity.calendar);
        if context.now > deadline {
            return Err(ReservationError::DeadlinePassed(deadline));
        }
        // A booking not yet approved is withdrawn: nothing to approve.
        Ok(
            if unit.cancellation_needs_approval && self.status == ReservationStatus::Confirmed {
                ReservationEvent::CancellationRequested
            } else {
                ReservationEvent::ReservationCancelled
            },
        )
    }
}

impl Reservation {
    /// A reservation already booked is only ever touched by its own family.
    fn check_family(&self, context: &BookingContext) -> Result<(), ReservationError> {
        match self.slot {
            Some(slot) if Some(slot.family_id) != context.family.id => Err(ReservationError::OtherFamily),
            _ => Ok(()),
        }
    }
}

impl Reservation {
    /// The events of an allocation run's outcome for this request: a place
    /// (waiting for an agent's approval where the unit asks for one), or a
    /// ticket on the waiting list.
    pub fn check_allocation(
        &self,
        collectivity: &Collectivity,
        run_id: Uuid,
        waiting: Option<(u32, u32)>,
    ) -> Result<Vec<ReservationEvent>, ReservationError> {
        let slot = match (self.slot, self.status) {
            (Some(slot), ReservationStatus::AllocationPending) => slot,
            _ => return Err(ReservationError::NotBooked),
        };
        Ok(match waiting {
            Some((ticket, position)) => vec![ReservationEvent::AllocationWaitListed {
                run_id,
                ticket,
                position,
            }],
            None => {
                let approval = collectivity
                    .units
                    .get(&slot.unit_id)
                    .is_some_and(|unit| unit.booking_needs_approval);
                let mut events = vec![ReservationEvent::PlaceAllocated { run_id }];
                if approval {
                    events.push(ReservationEvent::BookingAwaitingApproval);
                }
                events
            }
        })
    }

    /// The events of this booking's promotion from the waiting list to a
    /// place freed at `now`: only while it waits, on a day the unit still
    /// runs, up to the booking deadline (after it, nobody is promoted and
    /// the list stays as it is). In a unit where an agent approves each
    /// booking, the promoted one waits for that approval.
    pub fn check_promotion(
        &self,
        collectivity: &Collectivity,
        now: DateTime<Utc>,
    ) -> Result<Vec<ReservationEvent>, ReservationError> {
        let slot = match (self.slot, self.status) {
            (Some(slot), ReservationStatus::WaitListed) => slot,
            _ => return Err(ReservationError::NotWaitListed),
        };
        let unit = collectivity
            .units
            .get(&slot.unit_id)
            .ok_or(ReservationError::UnknownUnit(slot.unit_id))?;
        unit.opening
            .check_unit(unit.id, slot.date, &collectivity.calendar)
            .map_err(|reason| ReservationError::UnitClosed {
                date: slot.date,
                reason,
            })?;
        let deadline = unit
            .booking_deadline
            .deadline_for(slot.date, &collectivity.calendar);
        if now > deadline {
            return Err(ReservationError::DeadlinePassed(deadline));
        }
        let mut events = vec![ReservationEvent::Promoted];
        if unit.billing == BillingMode::Prepaid {
            events.push(ReservationEvent::PaymentAwaited);
        } else if unit.booking_needs_approval {
            events.push(ReservationEvent::BookingAwaitingApproval);
        }
        Ok(events)
    }
}

/// An agent's answer to a pending cancellation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    Approve { comment: Option<String> },
    Reject { reason: String },
}

impl Reservation {
    /// The event a decision on this reservation records, or why it cannot be
    /// taken. Unlike booking and cancelling, deciding depends on nothing
    /// but the reservation's own history: no commune, family or clock.
    pub fn check_decision(&self, decision: Decision) -> Result<ReservationEvent, ReservationError> {
        if self.status == ReservationStatus::AwaitingApproval {
            return match decision {
                Decision::Approve { comment } => Ok(ReservationEvent::BookingApproved {
                    comment: text::multiline("a comment", comment.as_deref(), text::COMMENT)?,
                }),
                Decision::Reject { reason } => {
                    let reason = text::multiline("a reason", Some(&reason), text::COMMENT)?
                        .ok_or(ReservationError::EmptyReason)?;
                    Ok(ReservationEvent::BookingRejected { reason })
                }
            };
        }
        if self.status != ReservationStatus::CancellationRequested {
            return Err(ReservationError::NoPendingCancellation);
        }
        match decision {
            Decision::Approve { comment } => Ok(ReservationEvent::AgentApproved {
                comment: text::multiline("a comment", comment.as_deref(), text::COMMENT)?,
            }),
            Decision::Reject { reason } => {
                let reason = text::multiline("a reason", Some(&reason), text::COMMENT)?
                    .ok_or(ReservationError::EmptyReason)?;
                Ok(ReservationEvent::AgentRejected { reason })
            }
        }
    }

    /// The commune's cancellation of a booked day it closed: any booking
    /// that stands (a cancellation pending included), whatever the
    /// deadlines; the closure's reason is given.
    pub fn check_cancel_by_commune(&self, reason: &str) -> Result<ReservationEvent, ReservationError> {
        if !self.status.stands()
            && !matches!(
                self.status,
                ReservationStatus::WaitListed | ReservationStatus::AllocationPending
            )
        {
            return Err(self.why_it_cannot_change());
        }
        let reason =
            text::multiline("a reason", Some(reason), text::COMMENT)?.ok_or(ReservationError::EmptyReason)?;
        Ok(ReservationEvent::ReservationCancelledByCommune { reason })
    }

    /// A parent's report that the child is absent on a booked day: one of
    /// the commune's reasons, until the end of the day (Paris time) the
    /// commune's delay after the slot allows, even past the cancellation
    /// deadline, on the day itself.
    pub fn check_report_absence(
        &self,
        reason: &str,
        context: &BookingContext,
    ) -> Result<ReservationEvent, ReservationError> {
        self.check_family(context)?;
        let slot = match (self.slot, self.status) {
            (Some(slot), ReservationStatus::Confirmed) => slot,
            _ => return Err(self.why_it_cannot_change()),
        };
        let rules = &context.collectivity.absence_rules;
        let wanted = reason.trim().to_lowercase();
        let reason = rules
            .reasons
            .iter()
            .find(|known| known.to_lowercase() == wanted)
            .ok_or_else(|| {
                ReservationError::UnknownAbsenceReason(reason.trim().chars().take(100).collect())
            })?;
        let last_day = slot.date + chrono::Duration::days(i64::from(rules.report_days_after));
        let end_of_day = chrono::NaiveTime::from_hms_opt(23, 59, 59).unwrap_or_default();
        let until = crate::calendar::paris_instant(last_day, end_of_day);
        if context.now > until {
            return Err(ReservationError::AbsenceTooLate(until));
        }
        Ok(ReservationEvent::AbsenceReported {
            reason: reason.clone(),
        })
    }

    /// An agent's judgement of a reported absence, or its correction.
    pub fn check_judge_absence(
        &self,
        justified: bool,
        note: Option<&str>,
    ) -> Result<ReservationEvent, ReservationError> {
        if !self.status.has_absence() {
            return Err(ReservationError::NoAbsenceReported);
        }
        let note = text::multiline("a note", note, text::COMMENT)?;
        Ok(if justified {
            ReservationEvent::AbsenceJustified { note }
        } else {
            ReservationEvent::AbsenceUnjustified { note }
        })
    }

    /// Why a parent's change (a cancellation, an absence) does not apply
    /// to the reservation as it stands.
    fn why_it_cannot_change(&self) -> ReservationError {
        match self.status {
            ReservationStatus::CancellationRequested => ReservationError::CancellationAlreadyRequested,
            ReservationStatus::Cancelled | ReservationStatus::Released => ReservationError::AlreadyCancelled,
            ReservationStatus::AwaitingPayment => ReservationError::AwaitingPayment,
            status if status.has_absence() => ReservationError::AbsenceAlreadyReported,
            _ => ReservationError::NotBooked,
        }
    }
}

/// What a roll call does with one child's reservation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RollCallEntry {
    /// This event records it.
    Record(ReservationEvent),
    /// Already recorded so: nothing to write.
    Unchanged,
    /// There without a booking: an unexpected presence, once the child is
    /// known to be the commune's (see [`Reservation::check_unexpected_presence`]).
    Unexpected,
}

impl Reservation {
    /// What the roll call of `date`, taken `today` (Paris), records for
    /// this reservation: `present` or not.
    pub fn check_attendance(
        &self,
        date: NaiveDate,
        present: bool,
        today: NaiveDate,
    ) -> Result<RollCallEntry, ReservationError> {
        if date > today {
            return Err(ReservationError::RollCallTooEarly(date));
        }
        let booked = self.status.booked_for_roll_call();
        let wanted = match (present, booked) {
            (true, true) => Attendance::Present,
            (true, false) => Attendance::Unexpected,
            (false, _) => Attendance::Absent,
        };
        if self.attendance == Some(wanted) {
            return Ok(RollCallEntry::Unchanged);
        }
        if booked {
            return Ok(RollCallEntry::Record(ReservationEvent::AttendanceRecorded {
                present,
            }));
        }
        if present {
            return Ok(RollCallEntry::Unexpected);
        }
        // Absent without a booking: only a correction of an unexpected
        // presence recorded by mistake.
        if self.attendance == Some(Attendance::Unexpected) {
            return Ok(RollCallEntry::Record(ReservationEvent::AttendanceRecorded {
                present: false,
            }));
        }
        Err(ReservationError::NotBooked)
    }

    /// The unexpected presence of `child` in `unit` on `date`: a child of
    /// a family of the unit's commune, on a day the unit runs.
    pub fn check_unexpected_presence(
        &self,
        child_id: Uuid,
        unit_id: Uuid,
        date: NaiveDate,
        context: &BookingContext,
    ) -> Result<ReservationEvent, ReservationError> {
        let unit = Self::unit(context, unit_id)?;
        let family = &context.family;
        if !family.children.contains_key(&child_id) {
            return Err(ReservationError::UnknownChild(child_id));
        }
        let collectivity_id = context
            .collectivity
            .id
            .ok_or(ReservationError::UnknownUnit(unit_id))?;
        if !family.is_member_of(collectivity_id) {
            return Err(ReservationError::NotInCommune(child_id));
        }
        self.check_family(context)?;
        unit.opening
            .check_unit(unit.id, date, &context.collectivity.calendar)
            .map_err(|reason| ReservationError::UnitClosed { date, reason })?;
        let slot = Self::slot_of(context, unit, child_id, date)?;
        Ok(ReservationEvent::UnexpectedPresenceRecorded { slot })
    }
}
