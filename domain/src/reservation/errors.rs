//! Why a reservation's command is refused.

#[allow(unused_imports)]
use super::*;

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
    #[error("booking opens on {} (Paris time)", crate::calendar::paris_display(*.0))]
    BookingNotOpen(DateTime<Utc>),
    #[error("this slot is already booked")]
    AlreadyBooked,
    #[error("this slot is already on the waiting list")]
    AlreadyWaitListed,
    #[error("this booking is not on the waiting list")]
    NotWaitListed,
    #[error("the waiting list of this day is full")]
    WaitingListFull,
    #[error("a request for this slot is already registered for the allocation")]
    AlreadyRequested,
    #[error("the allocation of this day has just taken place: book again")]
    AllocationClosed,
    #[error("this slot is not booked")]
    NotBooked,
    #[error("a cancellation of this booking is already waiting for an agent")]
    CancellationAlreadyRequested,
    #[error("this booking is already cancelled")]
    AlreadyCancelled,
    #[error("nothing on this booking waits for a decision")]
    NoPendingCancellation,
    #[error("a refusal needs a reason")]
    EmptyReason,
    #[error("{0:?} is not one of the commune's reasons of absence")]
    UnknownAbsenceReason(String),
    #[error("an absence could be reported until {} (Paris time)", crate::calendar::paris_display(*.0))]
    AbsenceTooLate(DateTime<Utc>),
    #[error("an absence is already reported on this day")]
    AbsenceAlreadyReported,
    #[error("no absence is reported on this day")]
    NoAbsenceReported,
    #[error("the roll call of {0} cannot be taken before the day")]
    RollCallTooEarly(NaiveDate),
    #[error("the family of child {0} does not belong to this commune")]
    NotInCommune(Uuid),
    #[error("this prepaid unit has no tariff for that day (or takes its places by allocation): it cannot be booked and paid ahead")]
    PrepaidNotAvailable,
    #[error("the family owes {owed} cents past due, above the commune's limit of {limit} cents: new bookings wait until it pays")]
    DebtLimit { owed: i64, limit: i64 },
    #[error("this booking awaits its payment: pay it, or let it lapse")]
    AwaitingPayment,
    #[error("this booking does not await a payment")]
    NotAwaitingPayment,
    #[error(transparent)]
    InvalidText(#[from] TextError),
    /// The stream holds another family's booking: no line of this family
    /// may touch it (reachable only through ids that collided before ids
    /// were claimed once for all).
    #[error("this booking belongs to another family")]
    OtherFamily,
}
