//! What a commune offers: services and their units.

#[allow(unused_imports)]
use super::*;

/// How a commune takes absences: the reasons a parent chooses from, and
/// how many days after the slot an absence may still be reported (0: until
/// the end of the day itself).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AbsenceRules {
    pub reasons: Vec<String>,
    pub report_days_after: u32,
}

impl Default for AbsenceRules {
    fn default() -> Self {
        AbsenceRules {
            reasons: vec!["Maladie".into(), "Raison familiale".into()],
            report_days_after: 0,
        }
    }
}

/// How a commune's régie takes payments: the least amount paid online
/// (PayFiP refuses less than 1 €) and, optionally, the unpaid amount past
/// due above which a family cannot book until it pays.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRules {
    pub minimum_online_cents: i64,
    pub debt_limit_cents: Option<i64>,
}

impl Default for PaymentRules {
    fn default() -> Self {
        PaymentRules {
            minimum_online_cents: 100,
            debt_limit_cents: None,
        }
    }
}

/// The largest amount a commune's payment rules name: 100,000 €.
pub const MAX_RULE_CENTS: i64 = 10_000_000;

/// The most reasons of absence a commune lists, and the longest delay.
pub const MAX_ABSENCE_REASONS: usize = 20;
pub const MAX_ABSENCE_DELAY_DAYS: u32 = 31;

/// The kinds of service a commune offers to families.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ServiceKind {
    /// Cantine (school canteen).
    Canteen,
    /// Étude surveillée (supervised homework time after class).
    SupervisedStudy,
    /// Accueil périscolaire du matin (before-school care).
    MorningCare,
    /// Accueil périscolaire du soir (after-school care).
    EveningCare,
    /// Accueil de loisirs (leisure centre), Wednesdays or holidays.
    LeisureCentre,
}

/// How a unit is paid for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BillingMode {
    /// Paid when the basket is validated.
    Prepaid,
    /// Billed on the family's invoice at the end of the month.
    Monthly,
}

/// A service of the commune (the canteen, the supervised study...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Service {
    pub id: Uuid,
    pub name: String,
    pub kind: ServiceKind,
}

/// What a parent books: one unit of a service on one day (a meal, a study
/// session, a leisure-centre day), with its opening days and deadlines.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unit {
    pub id: Uuid,
    pub service_id: Uuid,
    pub name: String,
    pub opening: OpeningDays,
    pub billing: BillingMode,
    pub booking_deadline: DeadlineRule,
    pub cancellation_deadline: DeadlineRule,
    /// Whether a cancellation waits for an agent's decision.
    pub cancellation_needs_approval: bool,
    /// Whether a booking waits for an agent's decision.
    #[serde(default)]
    pub booking_needs_approval: bool,
}

/// When booking opens for a unit's days in a range (a term, say): at an
/// instant, earlier for the commune's residents when it says so. Before
/// it, those days cannot be booked, and say when they can.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BookingWindow {
    pub id: Uuid,
    pub unit_id: Uuid,
    pub range: DateRange,
    pub opens_at: DateTime<Utc>,
    /// Residents may book from this instant, before everyone else.
    pub residents_open_at: Option<DateTime<Utc>>,
    /// Requests are collected and places allocated when it closes, by
    /// the commune's rule, instead of given as they come.
    #[serde(default)]
    pub allocation: Option<Allocation>,
}

impl BookingWindow {
    /// When a family (resident of the commune or not) may book.
    pub fn opens_for(&self, resident: bool) -> DateTime<Utc> {
        match self.residents_open_at {
            Some(earlier) if resident => earlier.min(self.opens_at),
            _ => self.opens_at,
        }
    }

    /// Whether requests are collected at `now` rather than served.
    pub fn collects_at(&self, now: DateTime<Utc>) -> bool {
        self.allocation.as_ref().is_some_and(|a| now < a.closes_at)
    }
}

/// The most booking windows a commune keeps.
pub const MAX_BOOKING_WINDOWS: usize = 500;

/// How many children a unit takes on a day: a number for every day, and
/// other numbers for given dates (a school trip halves the places of one
/// Wednesday). No number: as many as book.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitPlaces {
    pub every_day: Option<u32>,
    pub on: BTreeMap<NaiveDate, u32>,
}

impl UnitPlaces {
    /// The places on `date`, if they are counted.
    pub fn on(&self, date: NaiveDate) -> Option<u32> {
        self.on.get(&date).copied().or(self.every_day)
    }
}

/// The most places a unit takes on a day.
pub const MAX_PLACES: u32 = 5_000;

/// The most dates a unit's places are set for, one by one.
pub const MAX_PLACE_DATES: usize = 500;
