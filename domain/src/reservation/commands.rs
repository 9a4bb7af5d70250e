//! What a parent or an agent asks of a reservation.

#[allow(unused_imports)]
use super::*;

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
    /// The commune closed the day: the booking is cancelled, whatever the
    /// deadlines, and not charged.
    CancelByCommune {
        reason: String,
    },
}
