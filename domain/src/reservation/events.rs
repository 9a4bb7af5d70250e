//! What happened to a reservation.

#[allow(unused_imports)]
use super::*;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReservationEvent {
    /// Version 2: with its origin (version 1 had only the slot; it reads
    /// as `Origin::Unrecorded`, see `crate::upcast`).
    ReservationRequested {
        slot: Slot,
        origin: Origin,
    },
    ReservationConfirmed,
    /// Every place of the day was taken: the booking waits, `position`th,
    /// with the day's `ticket`th ticket (see `places`).
    WaitListed {
        ticket: u32,
        position: u32,
    },
    /// A place freed up and this booking, first in line, took it.
    Promoted,
    /// The parent took the booking off the waiting list.
    LeftWaitingList,
    /// Asked while an allocated window is open: the places are given when
    /// it closes.
    AllocationRequested {
        window_id: Uuid,
        closes_at: DateTime<Utc>,
    },
    /// The allocation run gave this request a place.
    PlaceAllocated {
        run_id: Uuid,
    },
    /// The allocation run put this request on the waiting list.
    AllocationWaitListed {
        run_id: Uuid,
        ticket: u32,
        position: u32,
    },
    /// Booked in a prepaid unit: held until its prepayment invoice is paid.
    PaymentAwaited,
    /// Its prepayment invoice was paid: the booking is confirmed.
    PrepaymentReceived {
        invoice_id: Uuid,
    },
    /// Not paid in time: the place goes back.
    Released,
    /// Requested in a unit where an agent approves each booking.
    BookingAwaitingApproval,
    BookingApproved {
        comment: Option<String>,
    },
    /// An agent refused the booking: the day is not booked.
    BookingRejected {
        reason: String,
    },
    CancellationRequested,
    /// Cancelled by the parent within the deadline, where no approval is needed.
    ReservationCancelled,
    AgentApproved {
        comment: Option<String>,
    },
    AgentRejected {
        reason: String,
    },
    /// The commune closed the day; not charged.
    ReservationCancelledByCommune {
        reason: String,
    },
    AbsenceReported {
        reason: String,
    },
    AbsenceJustified {
        note: Option<String>,
    },
    AbsenceUnjustified {
        note: Option<String>,
    },
    /// The roll call of a booked child (or its correction).
    AttendanceRecorded {
        present: bool,
    },
    /// The child was there without a booking that stands; the slot says
    /// where, as the stream may have no request before it.
    UnexpectedPresenceRecorded {
        slot: Slot,
    },
}

impl ReservationEvent {
    /// The slot an event introduces to its stream, if it does.
    pub fn slot(&self) -> Option<Slot> {
        match self {
            ReservationEvent::ReservationRequested { slot, .. }
            | ReservationEvent::UnexpectedPresenceRecorded { slot } => Some(*slot),
            _ => None,
        }
    }
}

impl DomainEvent for ReservationEvent {
    fn event_type(&self) -> String {
        match self {
            ReservationEvent::ReservationRequested { .. } => "ReservationRequested",
            ReservationEvent::ReservationConfirmed => "ReservationConfirmed",
            ReservationEvent::WaitListed { .. } => "WaitListed",
            ReservationEvent::Promoted => "Promoted",
            ReservationEvent::LeftWaitingList => "LeftWaitingList",
            ReservationEvent::AllocationRequested { .. } => "AllocationRequested",
            ReservationEvent::PlaceAllocated { .. } => "PlaceAllocated",
            ReservationEvent::AllocationWaitListed { .. } => "AllocationWaitListed",
            ReservationEvent::PaymentAwaited => "PaymentAwaited",
            ReservationEvent::PrepaymentReceived { .. } => "PrepaymentReceived",
            ReservationEvent::Released => "Released",
            ReservationEvent::BookingAwaitingApproval => "BookingAwaitingApproval",
            ReservationEvent::BookingApproved { .. } => "BookingApproved",
            ReservationEvent::BookingRejected { .. } => "BookingRejected",
            ReservationEvent::CancellationRequested => "CancellationRequested",
            ReservationEvent::ReservationCancelled => "ReservationCancelled",
            ReservationEvent::AgentApproved { .. } => "AgentApproved",
            ReservationEvent::AgentRejected { .. } => "AgentRejected",
            ReservationEvent::ReservationCancelledByCommune { .. } => "ReservationCancelledByCommune",
            ReservationEvent::AbsenceReported { .. } => "AbsenceReported",
            ReservationEvent::AbsenceJustified { .. } => "AbsenceJustified",
            ReservationEvent::AbsenceUnjustified { .. } => "AbsenceUnjustified",
            ReservationEvent::AttendanceRecorded { .. } => "AttendanceRecorded",
            ReservationEvent::UnexpectedPresenceRecorded { .. } => "UnexpectedPresenceRecorded",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        match self {
            ReservationEvent::ReservationRequested { .. } => "2",
            _ => "1",
        }
        .to_string()
    }
}
