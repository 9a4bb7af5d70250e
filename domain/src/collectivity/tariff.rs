//! What a unit costs: a commune's tariff, by quotient-familial bracket,
//! with its validity, its reductions for brothers and sisters, and what an
//! absence or an unexpected presence costs; and the price of one billed
//! day, with everything that explains it.
//!
//! Money is in integer euro cents. One rounding rule: the percentages that
//! apply to a day (a sibling's reduction, the share of an unjustified
//! absence) are applied to the bracket's price together, in integers, and
//! the result is rounded once, half up, to the cent; a penalty is added
//! after.

#[allow(unused_imports)]
use super::*;

/// One bracket of a tariff: the price of a unit for the families whose
/// quotient familial is at most `up_to` euros (and above the bracket
/// before); the last bracket has no bound.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bracket {
    pub up_to: Option<u32>,
    pub price_cents: i64,
}

/// A unit's tariff for a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tariff {
    pub id: Uuid,
    pub unit_id: Uuid,
    pub valid_from: NaiveDate,
    /// Inclusive; open-ended when absent.
    pub valid_until: Option<NaiveDate>,
    /// By quotient familial, lowest first.
    pub brackets: Vec<Bracket>,
    /// The reduction, in percent, of the second child (first entry), the
    /// third, and so on (the last applies to every further child); none:
    /// no reduction.
    pub sibling_reductions: Vec<u32>,
    /// What an unjustified absence costs, in percent of the day's price.
    pub unjustified_absence_percent: u32,
    /// Added to the day's price when a child was there without a booking.
    pub unexpected_presence_penalty_cents: i64,
}

/// The most brackets of a tariff, sibling reductions, tariffs of a commune.
pub const MAX_BRACKETS: usize = 12;
pub const MAX_SIBLING_REDUCTIONS: usize = 6;
pub const MAX_TARIFFS: usize = 500;
/// The highest price of a day, and penalty: 1,000 €.
pub const MAX_PRICE_CENTS: i64 = 100_000;

/// Why a day is billed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Billed {
    /// Booked (and there, or no roll call said otherwise).
    Booked,
    /// Booked, absent, the absence not justified: at the tariff's share.
    UnjustifiedAbsence,
    /// There without a booking: the price and the penalty.
    UnexpectedPresence,
}

/// A billed day's price and what explains it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Priced {
    pub tariff_id: Uuid,
    /// The bracket applied, from 0, and its bounds in euros (`None` above:
    /// the last).
    pub bracket: usize,
    pub bracket_from: u32,
    pub bracket_up_to: Option<u32>,
    /// The quotient familial it came from; `None`: none known for that
    /// commune on that day, so the highest bracket.
    pub quotient: Option<u32>,
    /// The bracket's price.
    pub unit_price_cents: i64,
    /// The child's rank among the family's children, from 1, and the
    /// reduction it gave, in percent.
    pub rank: u32,
    pub reduction_percent: u32,
    /// The share of the price billed, in percent (an unjustified absence).
    pub share_percent: u32,
    pub penalty_cents: i64,
    pub amount_cents: i64,
    pub billed: Billed,
}

/// `amount × numerator / denominator`, rounded half up (amounts are
/// never negative here).
fn round_half_up(amount: i64, numerator: i64, denominator: i64) -> i64 {
    (amount * numerator * 2 + denominator) / (denominator * 2)
}

impl Tariff {
    pub fn covers(&self, date: NaiveDate) -> bool {
        self.valid_from <= date && self.valid_until.is_none_or(|until| date <= until)
    }

    /// The bracket of a quotient familial (none known: the highest).
    pub fn bracket_of(&self, quotient: Option<u32>) -> usize {
        let last = self.brackets.len().saturating_sub(1);
        match quotient {
            None => last,
            Some(qf) => self
                .brackets
                .iter()
                .position(|b| b.up_to.is_none_or(|up_to| qf <= up_to))
                .unwrap_or(last),
        }
    }

    /// The reduction of the child of rank `rank` (1: the first).
    pub fn reduction_of(&self, rank: u32) -> u32 {
        if rank < 2 || self.sibling_reductions.is_empty() {
            return 0;
        }
        let index = (rank as usize - 2).min(self.sibling_reductions.len() - 1);
        self.sibling_reductions[index]
    }

    /// The price of one day billed so, for a family of quotient
    /// `quotient` and the child of rank `rank`.
    pub fn price(&self, quotient: Option<u32>, rank: u32, billed: Billed) -> Priced {
        let bracket = self.bracket_of(quotient);
        let unit_price = self.brackets.get(bracket).map_or(0, |b| b.price_cents);
        let bracket_from = match bracket {
            0 => 0,
            n => self.brackets[n - 1].up_to.map_or(0, |up_to| up_to + 1),
        };
        let reduction = self.reduction_of(rank);
        let share = match billed {
            Billed::UnjustifiedAbsence => self.unjustified_absence_percent,
            Billed::Booked | Billed::UnexpectedPresence => 100,
        };
        let penalty = match billed {
            Billed::UnexpectedPresence => self.unexpected_presence_penalty_cents,
            _ => 0,
        };
        let amount =
            round_half_up(unit_price, i64::from(100 - reduction) * i64::from(share), 10_000) + penalty;
        Priced {
            tariff_id: self.id,
            bracket,
            bracket_from,
            bracket_up_to: self.brackets.get(bracket).and_then(|b| b.up_to),
            quotient,
            unit_price_cents: unit_price,
            rank,
            reduction_percent: reduction,
            share_percent: share,
            penalty_cents: penalty,
            amount_cents: amount,
            billed,
        }
    }

    /// Whether the tariff is one a commune can set.
    pub(super) fn check(&self) -> Result<(), CollectivityError> {
        let invalid = || Err(CollectivityError::InvalidTariff);
        if self.brackets.is_empty() || self.brackets.len() > MAX_BRACKETS {
            return invalid();
        }
        if self.valid_until.is_some_and(|until| until < self.valid_from) {
            return invalid();
        }
        let (last, bounded) = self.brackets.split_last().expect("not empty");
        if last.up_to.is_some() {
            return invalid();
        }
        let bounds: Vec<u32> = bounded.iter().filter_map(|b| b.up_to).collect();
        if bounds.len() != bounded.len() || bounds.windows(2).any(|w| w[0] >= w[1]) {
            return invalid();
        }
        if self
            .brackets
            .iter()
            .any(|b| !(0..=MAX_PRICE_CENTS).contains(&b.price_cents))
        {
            return invalid();
        }
        if self.sibling_reductions.len() > MAX_SIBLING_REDUCTIONS
            || self.sibling_reductions.iter().any(|&r| r > 100)
            || self.unjustified_absence_percent > 100
            || !(0..=MAX_PRICE_CENTS).contains(&self.unexpected_presence_penalty_cents)
        {
            return invalid();
        }
        Ok(())
    }
}

impl Collectivity {
    /// The tariff of `unit_id` on `date`: the last one set that covers it.
    pub fn tariff_on(&self, unit_id: Uuid, date: NaiveDate) -> Option<&Tariff> {
        self.tariffs
            .iter()
            .rev()
            .find(|t| t.unit_id == unit_id && t.covers(date))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A canteen's brackets as communes publish them.
    fn canteen() -> Tariff {
        Tariff {
            id: Uuid::from_u128(0x7a),
            unit_id: Uuid::from_u128(0x0e1),
            valid_from: NaiveDate::from_ymd_opt(2026, 9, 1).unwrap(),
            valid_until: Some(NaiveDate::from_ymd_opt(2027, 8, 31).unwrap()),
            brackets: vec![
                Bracket {
                    up_to: Some(400),
                    price_cents: 105,
                },
                Bracket {
                    up_to: Some(700),
                    price_cents: 215,
                },
                Bracket {
                    up_to: Some(1_000),
                    price_cents: 333,
                },
                Bracket {
                    up_to: Some(1_500),
                    price_cents: 410,
                },
                Bracket {
                    up_to: None,
                    price_cents: 485,
                },
            ],
            sibling_reductions: vec![10, 25],
            unjustified_absence_percent: 50,
            unexpected_presence_penalty_cents: 200,
        }
    }

    #[test]
    fn a_quotient_falls_in_its_bracket_edges_included_and_none_known_is_the_highest() {
        let tariff = canteen();
        let price = |qf| tariff.price(qf, 1, Billed::Booked).amount_cents;
        assert_eq!(price(Some(0)), 105);
        assert_eq!(price(Some(400)), 105, "the edge belongs to the bracket below");
        assert_eq!(price(Some(401)), 215);
        assert_eq!(price(Some(700)), 215);
        assert_eq!(price(Some(1_000)), 333);
        assert_eq!(price(Some(1_001)), 410);
        assert_eq!(price(Some(1_500)), 410);
        assert_eq!(price(Some(1_501)), 485);
        assert_eq!(price(Some(u32::MAX)), 485);
        let unknown = tariff.price(None, 1, Billed::Booked);
        assert_eq!(
            (unknown.bracket, unknown.amount_cents),
            (4, 485),
            "no QF: the highest bracket"
        );
        let second = tariff.price(Some(550), 1, Billed::Booked);
        assert_eq!((second.bracket_from, second.bracket_up_to), (401, Some(700)));
    }

    #[test]
    fn percentages_apply_together_and_round_once_half_up() {
        let tariff = canteen();
        // 2nd child: 215 × 90 % = 193.5 → 194.
        assert_eq!(tariff.price(Some(550), 2, Billed::Booked).amount_cents, 194);
        // 3rd and further: 25 %. 215 × 75 % = 161.25 → 161.
        assert_eq!(tariff.price(Some(550), 3, Billed::Booked).amount_cents, 161);
        assert_eq!(tariff.price(Some(550), 7, Billed::Booked).amount_cents, 161);
        // An unjustified absence at 50 % of the 2nd child's day: 215 × 90 %
        // × 50 % = 96.75 → 97 (rounding each step would give 97 too, but
        // 105 × 90 % × 50 % = 47.25 → 47 where steps give 95 / 2 = 47.5 → 48).
        assert_eq!(
            tariff
                .price(Some(550), 2, Billed::UnjustifiedAbsence)
                .amount_cents,
            97
        );
        assert_eq!(
            tariff
                .price(Some(100), 2, Billed::UnjustifiedAbsence)
                .amount_cents,
            47
        );
        // There without a booking: the price and the penalty.
        let unexpected = tariff.price(Some(550), 1, Billed::UnexpectedPresence);
        assert_eq!((unexpected.amount_cents, unexpected.penalty_cents), (415, 200));
        // Half a cent rounds up.
        assert_eq!(round_half_up(1, 50, 100), 1);
        assert_eq!(round_half_up(3, 50, 100), 2);
        assert_eq!(round_half_up(0, 50, 100), 0);
    }

    #[test]
    fn a_tariff_is_checked_before_it_is_set() {
        assert_eq!(canteen().check(), Ok(()));
        let broken = |change: &dyn Fn(&mut Tariff)| {
            let mut tariff = canteen();
            change(&mut tariff);
            tariff.check()
        };
        let invalid = Err(CollectivityError::InvalidTariff);
        assert_eq!(broken(&|t| t.brackets.clear()), invalid);
        assert_eq!(
            broken(&|t| t.brackets[4].up_to = Some(5_000)),
            invalid,
            "the last is open"
        );
        assert_eq!(
            broken(&|t| t.brackets[1].up_to = Some(400)),
            invalid,
            "bounds rise"
        );
        assert_eq!(
            broken(&|t| t.brackets[2].up_to = None),
            invalid,
            "only the last is open"
        );
        assert_eq!(broken(&|t| t.brackets[0].price_cents = -1), invalid);
        assert_eq!(
            broken(&|t| t.brackets[0].price_cents = MAX_PRICE_CENTS + 1),
            invalid
        );
        assert_eq!(broken(&|t| t.unjustified_absence_percent = 101), invalid);
        assert_eq!(broken(&|t| t.sibling_reductions = vec![101]), invalid);
        assert_eq!(
            broken(&|t| t.valid_until = Some(NaiveDate::from_ymd_opt(2026, 8, 31).unwrap())),
            invalid
        );
    }
}
