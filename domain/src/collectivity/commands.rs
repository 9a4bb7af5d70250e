//! What a commune's agents ask of its configuration.

#[allow(unused_imports)]
use super::*;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CollectivityCommand {
    Create {
        id: Uuid,
        name: String,
    },
    AddService {
        service: Service,
    },
    AddUnit {
        unit: Unit,
    },
    /// The school holiday zone the commune follows, and its département.
    SetSchoolZone {
        zone: Zone,
        department: String,
    },
    /// Publish a school year's calendar: public holidays computed, the
    /// zone's school holidays from the official data.
    PublishSchoolYear {
        year: SchoolYear,
    },
    /// Close days, for every unit or one, with a reason.
    AddClosure {
        closure: Closure,
    },
    /// The reasons of absence parents choose from, and the delay.
    SetAbsenceRules {
        rules: AbsenceRules,
    },
    /// Open booking for a unit's days at an instant (sent again with the
    /// same id: the window is changed).
    SetBookingWindow {
        window: BookingWindow,
    },
    /// How many children a unit takes on every day; `None`: no limit.
    SetPlaces {
        unit_id: Uuid,
        places: Option<u32>,
    },
    /// How many it takes on one date, whatever the every-day number;
    /// `None`: that date follows the every-day number again.
    SetDayPlaces {
        unit_id: Uuid,
        date: NaiveDate,
        places: Option<u32>,
    },
    /// A unit's tariff for a period (sent again with the same id: it
    /// changes). Where tariffs overlap, the one set last applies.
    SetTariff {
        tariff: Tariff,
    },
    /// The least amount paid online, and the debt rule.
    SetPaymentRules {
        rules: PaymentRules,
    },
    /// A kind of request families may send, its form and attachments
    /// (sent again with the same id: it changes; `retired`: no new one).
    DefineRequestCategory {
        category: RequestCategory,
    },
}
