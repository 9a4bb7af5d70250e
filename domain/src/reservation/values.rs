//! What a reservation is about, where it stands, what it is checked against.

#[allow(unused_imports)]
use super::*;

/// Where a parent asked for a booking: the kind of basket line that made
/// its request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Origin {
    /// A day chosen in the calendar.
    Calendar,
    /// A day of a period booked at once (a range of dates and a weekly
    /// pattern).
    Period,
    /// Asked before requests recorded where they came from (version 1 of
    /// `ReservationRequested`).
    Unrecorded,
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

/// What the roll call recorded of a child on a day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Attendance {
    /// Booked and there.
    Present,
    /// Booked (or recorded there by mistake) and not there.
    Absent,
    /// There without a booking that stands.
    Unexpected,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReservationStatus {
    /// Never booked.
    #[default]
    Free,
    Confirmed,
    /// Every place was taken: waiting for one to free up.
    WaitListed,
    /// Asked while an allocated window is open: waiting for its run.
    AllocationPending,
    /// Booked in a prepaid unit: held until its prepayment invoice is
    /// paid, released if it is not in time.
    AwaitingPayment,
    /// Booked in a unit where an agent approves each booking: not yet.
    AwaitingApproval,
    /// An agent refused the booking: the day is not booked, and may be
    /// asked again.
    Rejected,
    /// The parent asked to cancel; an agent decides.
    CancellationRequested,
    Cancelled,
    /// Not paid in time: the place went back, nothing is owed.
    Released,
    /// The parent said the child will be, or was, absent.
    AbsenceReported,
    /// An agent accepted the absence's reason (illness, say).
    AbsentJustified,
    /// An agent did not accept it: billing counts the day.
    AbsentUnjustified,
}

impl ReservationStatus {
    /// An absence is reported on the day, judged or not.
    pub fn has_absence(self) -> bool {
        matches!(
            self,
            ReservationStatus::AbsenceReported
                | ReservationStatus::AbsentJustified
                | ReservationStatus::AbsentUnjustified
        )
    }

    /// Booked for the roll call: a booking that stands, except one still
    /// waiting for an agent's approval (the child was never confirmed).
    pub fn booked_for_roll_call(self) -> bool {
        self.stands()
            && !matches!(
                self,
                ReservationStatus::AwaitingApproval | ReservationStatus::AwaitingPayment
            )
    }

    /// A booking stands: booked, waiting for its payment, its approval or
    /// a decision on its cancellation, or with an absence.
    pub fn stands(self) -> bool {
        matches!(
            self,
            ReservationStatus::Confirmed
                | ReservationStatus::AwaitingApproval
                | ReservationStatus::AwaitingPayment
                | ReservationStatus::CancellationRequested
        ) || self.has_absence()
    }
}

/// What a command needs to know beyond the reservation's own history: the
/// time, and the commune's and family's state as their events built them.
#[derive(Debug, Clone)]
pub struct BookingContext {
    pub now: DateTime<Utc>,
    pub collectivity: Arc<Collectivity>,
    pub family: Arc<Family>,
    /// What the family owes the commune past its invoices' due dates, in
    /// cents, where the commune has a debt rule (0 otherwise).
    pub overdue_cents: i64,
}
