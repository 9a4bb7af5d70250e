//! The reservation: one child in one unit on one date.
//!
//! Its id is derived from the three (UUIDv5), so the same booking can never
//! exist twice and a retried request lands on the same stream. Every refusal
//! is a typed reason a parent can read: a date is never greyed out without
//! saying why.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::calendar::{ClosedReason, SchoolYear};
use crate::collectivity::{BillingMode, Collectivity, Unit};
use crate::family::Family;
use crate::text::{self, TextError};

/// Namespace of reservation ids; never change it, or every id changes.
const RESERVATION_NAMESPACE: Uuid = Uuid::from_u128(0x6d3c_5a80_91f2_4c1e_9b7d_2f41_a0c8_e517);

/// The id of the reservation of `child` in `unit` on `date`.
pub fn reservation_id(child_id: Uuid, unit_id: Uuid, date: NaiveDate) -> Uuid {
    let mut name = Vec::with_capacity(42);
    name.extend_from_slice(child_id.as_bytes());
    name.extend_from_slice(unit_id.as_bytes());
    name.extend_from_slice(date.format("%Y-%m-%d").to_string().as_bytes());
    Uuid::new_v5(&RESERVATION_NAMESPACE, &name)
}

/// What a reservation is about, fixed at its first request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Slot {
    pub family_id: Uuid,
    pub child_id: Uuid,
    pub collectivity_id: Uuid,
    pub service_id: Uuid,
    pub unit_id: Uuid,
    pub date: NaiveDate,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReservationStatus {
    /// Never booked.
    #[default]
    Free,
    Confirmed,
    /// The parent asked to cancel; an agent decides.
    CancellationRequested,
    Cancelled,
}

/// What a command needs to know beyond the reservation's own history: the
/// time, and the commune's and family's state as their events built them.
#[derive(Debug, Clone)]
pub struct BookingContext {
    pub now: DateTime<Utc>,
    pub collectivity: Arc<Collectivity>,
    pub family: Arc<Family>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReservationCommand {
    Request {
        child_id: Uuid,
        unit_id: Uuid,
        date: NaiveDate,
    },
    Cancel,
    /// An agent accepts the pending cancellation.
    Approve {
        comment: Option<String>,
    },
    /// An agent refuses the pending cancellation; the booking stands.
    Reject {
        reason: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReservationEvent {
    ReservationRequested {
        slot: Slot,
    },
    ReservationConfirmed,
    CancellationRequested,
    /// Cancelled by the parent within the deadline, where no approval is needed.
    ReservationCancelled,
    AgentApproved {
        comment: Option<String>,
    },
    AgentRejected {
        reason: String,
    },
}

impl DomainEvent for ReservationEvent {
    fn event_type(&self) -> String {
        match self {
            ReservationEvent::ReservationRequested { .. } => "ReservationRequested",
            ReservationEvent::ReservationConfirmed => "ReservationConfirmed",
            ReservationEvent::CancellationRequested => "CancellationRequested",
            ReservationEvent::ReservationCancelled => "ReservationCancelled",
            ReservationEvent::AgentApproved { .. } => "AgentApproved",
            ReservationEvent::AgentRejected { .. } => "AgentRejected",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReservationError {
    #[error("no unit {0} in this commune")]
    UnknownUnit(Uuid),
    #[error("no child {0} in this family")]
    UnknownChild(Uuid),
    #[error("the unit is closed on {date}: {reason}")]
    UnitClosed { date: NaiveDate, reason: ClosedReason },
    #[error("the child is not enrolled in this service for the school year {0}")]
    NotEnrolled(SchoolYear),
    #[error("the deadline passed on {} (Paris time)", crate::calendar::paris_display(*.0))]
    DeadlinePassed(DateTime<Utc>),
    #[error("this slot is already booked")]
    AlreadyBooked,
    #[error("this slot is not booked")]
    NotBooked,
    #[error("a cancellation of this booking is already waiting for an agent")]
    CancellationAlreadyRequested,
    #[error("this booking is already cancelled")]
    AlreadyCancelled,
    #[error("there is no cancellation waiting for a decision on this booking")]
    NoPendingCancellation,
    #[error("a refusal needs a reason")]
    EmptyReason,
    #[error("online payment is not available yet: prepaid units cannot be booked")]
    PrepaidNotAvailable,
    #[error(transparent)]
    InvalidText(#[from] TextError),
    /// The stream holds another family's booking: no line of this family
    /// may touch it (reachable only through ids that collided before ids
    /// were claimed once for all).
    #[error("this booking belongs to another family")]
    OtherFamily,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Reservation {
    pub slot: Option<Slot>,
    pub status: ReservationStatus,
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
        match self.status {
            ReservationStatus::Confirmed | ReservationStatus::CancellationRequested => {
                return Err(ReservationError::AlreadyBooked)
            }
            ReservationStatus::Free | ReservationStatus::Cancelled => {}
        }
        let calendar = &context.collectivity.calendar;
        unit.opening
            .check(date, calendar)
            .map_err(|reason| ReservationError::UnitClosed { date, reason })?;
        let collectivity_id = context
            .collectivity
            .id
            .ok_or(ReservationError::UnknownUnit(unit_id))?;
        let year = SchoolYear::of(date);
        if !family.is_enrolled(child_id, collectivity_id, unit.service_id, year) {
            return Err(ReservationError::NotEnrolled(year));
        }
        let deadline = unit.booking_deadline.deadline_for(date, calendar);
        if context.now > deadline {
            return Err(ReservationError::DeadlinePassed(deadline));
        }
        if unit.billing == BillingMode::Prepaid {
            return Err(ReservationError::PrepaidNotAvailable);
        }
        Ok(Slot {
            family_id: family.id.ok_or(ReservationError::UnknownChild(child_id))?,
            child_id,
            collectivity_id,
            service_id: unit.service_id,
            unit_id,
            date,
        })
    }

    /// Whether this booking can be cancelled now: the event a cancellation
    /// would record, or the reason it cannot.
    pub fn check_cancel(&self, context: &BookingContext) -> Result<ReservationEvent, ReservationError> {
        self.check_family(context)?;
        let slot = match (self.slot, self.status) {
            (Some(slot), ReservationStatus::Confirmed) => slot,
            (_, ReservationStatus::CancellationRequested) => {
                return Err(ReservationError::CancellationAlreadyRequested)
            }
            (_, ReservationStatus::Cancelled) => return Err(ReservationError::AlreadyCancelled),
            _ => return Err(ReservationError::NotBooked),
        };
        let unit = Self::unit(context, slot.unit_id)?;
        let deadline = unit
            .cancellation_deadline
            .deadline_for(slot.date, &context.collectivity.calendar);
        if context.now > deadline {
            return Err(ReservationError::DeadlinePassed(deadline));
        }
        Ok(if unit.cancellation_needs_approval {
            ReservationEvent::CancellationRequested
        } else {
            ReservationEvent::ReservationCancelled
        })
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
}

impl Aggregate for Reservation {
    const TYPE: &'static str = "Reservation";
    type Command = ReservationCommand;
    type Event = ReservationEvent;
    type Error = ReservationError;
    type Services = BookingContext;

    async fn handle(
        &mut self,
        command: Self::Command,
        context: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        match command {
            ReservationCommand::Request {
                child_id,
                unit_id,
                date,
            } => {
                let slot = self.check_request(child_id, unit_id, date, context)?;
                sink.write(ReservationEvent::ReservationRequested { slot }, self)
                    .await;
                sink.write(ReservationEvent::ReservationConfirmed, self).await;
            }
            ReservationCommand::Cancel => {
                let event = self.check_cancel(context)?;
                sink.write(event, self).await;
            }
            ReservationCommand::Approve { comment } => {
                let event = self.check_decision(Decision::Approve { comment })?;
                sink.write(event, self).await;
            }
            ReservationCommand::Reject { reason } => {
                let event = self.check_decision(Decision::Reject { reason })?;
                sink.write(event, self).await;
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            ReservationEvent::ReservationRequested { slot } => self.slot = Some(slot),
            ReservationEvent::ReservationConfirmed | ReservationEvent::AgentRejected { .. } => {
                self.status = ReservationStatus::Confirmed
            }
            ReservationEvent::CancellationRequested => self.status = ReservationStatus::CancellationRequested,
            ReservationEvent::ReservationCancelled | ReservationEvent::AgentApproved { .. } => {
                self.status = ReservationStatus::Cancelled
            }
        }
    }
}

#[cfg(test)]
mod tests;
