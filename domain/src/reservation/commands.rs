//! What a parent or an agent asks of a reservation.

#[allow(unused_imports)]
use super::*;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReservationCommand {
    Request {
        child_id: Uuid,
        unit_id: Uuid,
        date: NaiveDate,
        origin: Origin,
    },
    /// A request on a day whose places are all taken: it waits, with the
    /// ticket and position the day's places gave it.
    JoinWaitingList {
        child_id: Uuid,
        unit_id: Uuid,
        date: NaiveDate,
        origin: Origin,
        ticket: u32,
        position: u32,
    },
    /// A cancellation; on the waiting list, leaving it.
    Cancel,
    /// Leaving the waiting list, and only that: refused for a booking not
    /// waiting.
    LeaveWaitingList,
    /// An agent accepts the pending cancellation.
    Approve { comment: Option<String> },
    /// An agent refuses the pending cancellation; the booking stands.
    Reject { reason: String },
    /// The commune closed the day: the booking is cancelled, whatever the
    /// deadlines, and not charged.
    CancelByCommune { reason: String },
    /// The parent reports the child absent on a booked day, with one of the
    /// commune's reasons, up to the delay the commune allows after the day.
    ReportAbsence { reason: String },
    /// An agent judges a reported absence (again, to correct it): justified
    /// or not, with a note (a medical certificate received, say).
    JudgeAbsence { justified: bool, note: Option<String> },
    /// An agent's roll call for this child on this day: there or not. A
    /// child there without a booking is an unexpected presence; sent again
    /// with what is already recorded, nothing is written; otherwise it
    /// corrects the roll call with a new event.
    RecordAttendance {
        child_id: Uuid,
        unit_id: Uuid,
        date: NaiveDate,
        present: bool,
    },
    /// The booking's prepayment invoice was paid.
    ConfirmPayment { invoice_id: Uuid },
    /// The booking was not paid in time.
    Release,
}
