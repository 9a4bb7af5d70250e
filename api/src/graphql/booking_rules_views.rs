//! The views of what a commune sets about booking and paying: a unit's
//! places, booking windows and their allocations, tariffs.

use async_graphql::{Enum, InputObject, SimpleObject};
use chrono::{DateTime, FixedOffset, NaiveDate, Utc};
use espace_famille_domain::calendar::DateRange;
use espace_famille_domain::collectivity as domain;
use uuid::Uuid;

/// The places of a unit on one date.
#[derive(SimpleObject)]
pub struct DayPlacesView {
    pub date: NaiveDate,
    pub places: u32,
}

/// When booking opens for a unit's days in a range.
#[derive(SimpleObject)]
#[graphql(name = "BookingWindow")]
pub struct BookingWindowView {
    pub id: Uuid,
    pub unit_id: Uuid,
    pub first: NaiveDate,
    /// Included.
    pub last: NaiveDate,
    /// With Paris's offset.
    pub opens_at: DateTime<FixedOffset>,
    /// Residents may book from this instant.
    pub residents_open_at: Option<DateTime<FixedOffset>>,
    /// Requests are collected and places allocated when it closes.
    pub allocation: Option<AllocationView>,
}

/// What a commune may allocate places by.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "espace_famille_domain::allocation::Criterion", name = "Criterion")]
pub enum CriterionGql {
    /// The family lives in the commune (`setResidence`).
    Resident,
    /// A sister or brother already has a place that day in the unit.
    SiblingPlaced,
    /// Both parents work (`setWorkingParents`).
    BothParentsWorking,
}

/// How an allocated window gives its places.
#[derive(SimpleObject)]
#[graphql(name = "Allocation")]
pub struct AllocationView {
    /// With Paris's offset: requests are collected until then.
    pub closes_at: DateTime<FixedOffset>,
    /// The priorities, the most important first; then the lottery.
    pub criteria: Vec<CriterionGql>,
    /// The SHA-256 of the lottery's seed, published now; the seed is
    /// revealed in each run (`AllocationRun`), for anyone to check.
    pub seed_commitment: String,
}

/// An allocated window's rule.
#[derive(InputObject)]
pub struct AllocationInput {
    pub closes_at: DateTime<Utc>,
    /// At most three, each once, the most important first.
    pub criteria: Vec<CriterionGql>,
}

#[derive(InputObject)]
pub struct SetBookingWindowInput {
    pub collectivity_id: Uuid,
    /// Yours, to change the window later; a new one when absent.
    pub id: Option<Uuid>,
    pub unit_id: Uuid,
    pub first: NaiveDate,
    /// Included.
    pub last: NaiveDate,
    pub opens_at: DateTime<Utc>,
    /// Residents (as an agent recorded them) may book from this instant.
    pub residents_open_at: Option<DateTime<Utc>>,
    /// Collect the requests and allocate the places when it closes, by
    /// these priorities and a lottery, instead of first come, first served.
    pub allocation: Option<AllocationInput>,
}

impl SetBookingWindowInput {
    pub fn window(&self) -> domain::BookingWindow {
        domain::BookingWindow {
            id: self.id.unwrap_or_else(Uuid::new_v4),
            unit_id: self.unit_id,
            range: DateRange {
                first: self.first,
                last: self.last,
            },
            opens_at: self.opens_at,
            residents_open_at: self.residents_open_at,
            allocation: None,
        }
    }

    /// The allocation asked for: when it closes, its criteria.
    pub fn allocated(&self) -> Option<(DateTime<Utc>, Vec<espace_famille_domain::allocation::Criterion>)> {
        self.allocation
            .as_ref()
            .map(|a| (a.closes_at, a.criteria.iter().map(|&c| c.into()).collect()))
    }
}

/// A bracket of a tariff: the price of a day for the families whose
/// quotient familial (in euros) is at most `upTo`; the last has none.
#[derive(SimpleObject, InputObject)]
#[graphql(input_name = "BracketInput", name = "Bracket")]
pub struct BracketGql {
    pub up_to: Option<u32>,
    /// In euro cents.
    pub price_cents: i64,
}

/// What a unit costs for a period.
#[derive(SimpleObject)]
#[graphql(name = "Tariff")]
pub struct TariffView {
    pub id: Uuid,
    pub unit_id: Uuid,
    pub valid_from: NaiveDate,
    /// Included; none: open-ended.
    pub valid_until: Option<NaiveDate>,
    /// Lowest quotient first; no quotient known: the last.
    pub brackets: Vec<BracketGql>,
    /// The second child's reduction in percent, the third's, and so on.
    pub sibling_reductions: Vec<u32>,
    pub unjustified_absence_percent: u32,
    pub unexpected_presence_penalty_cents: i64,
}

impl From<&domain::Tariff> for TariffView {
    fn from(t: &domain::Tariff) -> Self {
        TariffView {
            id: t.id,
            unit_id: t.unit_id,
            valid_from: t.valid_from,
            valid_until: t.valid_until,
            brackets: t
                .brackets
                .iter()
                .map(|b| BracketGql {
                    up_to: b.up_to,
                    price_cents: b.price_cents,
                })
                .collect(),
            sibling_reductions: t.sibling_reductions.clone(),
            unjustified_absence_percent: t.unjustified_absence_percent,
            unexpected_presence_penalty_cents: t.unexpected_presence_penalty_cents,
        }
    }
}

#[derive(InputObject)]
pub struct SetTariffInput {
    pub collectivity_id: Uuid,
    /// Yours, to change the tariff later; a new one when absent.
    pub id: Option<Uuid>,
    pub unit_id: Uuid,
    pub valid_from: NaiveDate,
    pub valid_until: Option<NaiveDate>,
    pub brackets: Vec<BracketGql>,
    #[graphql(default)]
    pub sibling_reductions: Vec<u32>,
    #[graphql(default = 100)]
    pub unjustified_absence_percent: u32,
    #[graphql(default)]
    pub unexpected_presence_penalty_cents: i64,
}

impl SetTariffInput {
    pub fn tariff(&self) -> domain::Tariff {
        domain::Tariff {
            id: self.id.unwrap_or_else(Uuid::new_v4),
            unit_id: self.unit_id,
            valid_from: self.valid_from,
            valid_until: self.valid_until,
            brackets: self
                .brackets
                .iter()
                .map(|b| domain::Bracket {
                    up_to: b.up_to,
                    price_cents: b.price_cents,
                })
                .collect(),
            sibling_reductions: self.sibling_reductions.clone(),
            unjustified_absence_percent: self.unjustified_absence_percent,
            unexpected_presence_penalty_cents: self.unexpected_presence_penalty_cents,
        }
    }
}
