//! How a basket's outcome is kept in `baskets`: a compact receipt (decision
//! 0005), read back as the whole outcome; rows written whole before
//! receipts still read.

use std::collections::HashMap;

use chrono::NaiveDate;
use espace_famille_domain::reservation::reservation_id;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::{BasketAction, BasketOutcome, BasketStatus, LineOutcome};
use crate::error::Refusal;

/// How an outcome is kept in `baskets`, for a retried basket to get it
/// back. What a line's other fields determine is left out (its reservation
/// id; whether it was accepted: it was unless refused), and the lines of
/// one action, child and unit share those three. A four-week basket keeps
/// about 0.6 kB instead of 5, under the size from which PostgreSQL
/// compresses a row: the whole outcome took a tenth of the write's
/// throughput (README, *Performance*).
#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct Receipt {
    basket_id: Uuid,
    family_id: Uuid,
    status: BasketStatus,
    groups: Vec<ReceiptGroup>,
    /// The refused lines' reasons, each with its line's index.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    refusals: Vec<(i32, Refusal)>,
    /// The indexes of the lines skipped (days of a period the unit is
    /// closed); their reasons are among the refusals.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    skipped: Vec<i32>,
    /// The lines put on a waiting list: index and position.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    waiting: Vec<(i32, u32)>,
    /// The indexes of the lines booked in a prepaid unit, awaiting their
    /// payment.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    awaiting_payment: Vec<i32>,
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
pub(super) struct ReceiptGroup {
    action: BasketAction,
    child_id: Uuid,
    unit_id: Uuid,
    /// Each line's index in the basket and its day.
    lines: Vec<(i32, NaiveDate)>,
}

impl From<&BasketOutcome> for Receipt {
    fn from(outcome: &BasketOutcome) -> Receipt {
        let mut groups: Vec<ReceiptGroup> = Vec::new();
        let mut group_of: HashMap<(BasketAction, Uuid, Uuid), usize> = HashMap::new();
        let mut refusals = Vec::new();
        let mut skipped = Vec::new();
        let mut waiting = Vec::new();
        let mut awaiting_payment = Vec::new();
        for line in &outcome.lines {
            if line.awaiting_payment {
                awaiting_payment.push(line.index);
            }
            if line.skipped {
                skipped.push(line.index);
            }
            if let Some(position) = line.waiting_position {
                waiting.push((line.index, position));
            }
            let key = (line.action, line.child_id, line.unit_id);
            let group = *group_of.entry(key).or_insert_with(|| {
                groups.push(ReceiptGroup {
                    action: line.action,
                    child_id: line.child_id,
                    unit_id: line.unit_id,
                    lines: Vec::new(),
                });
                groups.len() - 1
            });
            groups[group].lines.push((line.index, line.date));
            if let Some(refusal) = &line.refusal {
                refusals.push((line.index, refusal.clone()));
            }
        }
        Receipt {
            basket_id: outcome.basket_id,
            family_id: outcome.family_id,
            status: outcome.status,
            groups,
            refusals,
            skipped,
            waiting,
            awaiting_payment,
        }
    }
}

impl From<Receipt> for BasketOutcome {
    fn from(receipt: Receipt) -> BasketOutcome {
        let Receipt {
            basket_id,
            family_id,
            status,
            groups,
            refusals,
            skipped,
            waiting,
            awaiting_payment,
        } = receipt;
        let waiting: HashMap<i32, u32> = waiting.into_iter().collect();
        let mut refusals: HashMap<i32, Refusal> = refusals.into_iter().collect();
        let mut lines: Vec<LineOutcome> = groups
            .into_iter()
            .flat_map(|group| {
                group.lines.into_iter().map(move |(index, date)| LineOutcome {
                    index,
                    action: group.action,
                    child_id: group.child_id,
                    unit_id: group.unit_id,
                    date,
                    reservation_id: reservation_id(group.child_id, group.unit_id, date),
                    accepted: true,
                    refusal: None,
                    skipped: false,
                    waiting_position: None,
                    awaiting_payment: false,
                })
            })
            .collect();
        lines.sort_by_key(|line| line.index);
        for line in &mut lines {
            line.refusal = refusals.remove(&line.index);
            line.accepted = line.refusal.is_none();
            line.skipped = skipped.contains(&line.index);
            line.waiting_position = waiting.get(&line.index).copied();
            line.awaiting_payment = awaiting_payment.contains(&line.index);
        }
        BasketOutcome {
            basket_id,
            family_id,
            status,
            lines,
            prepayment_invoices: Vec::new(),
        }
    }
}

/// An outcome as `baskets` holds it: a receipt, or the whole outcome as
/// rows written before receipts hold it.
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum Stored {
    Receipt(Receipt),
    Outcome(BasketOutcome),
}

impl From<Stored> for BasketOutcome {
    fn from(stored: Stored) -> BasketOutcome {
        match stored {
            Stored::Receipt(receipt) => receipt.into(),
            Stored::Outcome(outcome) => outcome,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorCode;
    use chrono::Utc;
    use espace_famille_domain::reservation::ReservationError;

    fn line(
        index: i32,
        action: BasketAction,
        child: u128,
        unit: u128,
        day: u32,
        refusal: Option<Refusal>,
    ) -> LineOutcome {
        let (child_id, unit_id) = (Uuid::from_u128(child), Uuid::from_u128(unit));
        let date = NaiveDate::from_ymd_opt(2026, 12, day).unwrap();
        LineOutcome {
            index,
            action,
            child_id,
            unit_id,
            date,
            reservation_id: reservation_id(child_id, unit_id, date),
            accepted: refusal.is_none(),
            refusal,
            skipped: false,
            waiting_position: None,
            awaiting_payment: false,
        }
    }

    fn outcome(status: BasketStatus, lines: Vec<LineOutcome>) -> BasketOutcome {
        BasketOutcome {
            basket_id: Uuid::from_u128(1),
            family_id: Uuid::from_u128(2),
            status,
            lines,
            prepayment_invoices: Vec::new(),
        }
    }

    fn stored(value: serde_json::Value) -> BasketOutcome {
        serde_json::from_value::<Stored>(value).unwrap().into()
    }

    #[test]
    fn a_receipt_gives_back_the_outcome_it_was_made_from() {
        let deadline = Refusal {
            code: ErrorCode::DeadlinePassed,
            message: "too late".into(),
            deadline: Some(Utc::now()),
            closed_reason: None,
            opens_at: None,
            minimum_cents: None,
            owed_cents: None,
        };
        // Two children, two actions, their lines interleaved; a line
        // refused with its deadline, another (line 3's slot again) refused
        // as already booked.
        let partial = outcome(
            BasketStatus::Partial,
            vec![
                line(0, BasketAction::Book, 3, 4, 7, None),
                line(1, BasketAction::Book, 5, 4, 7, Some(deadline)),
                line(2, BasketAction::Cancel, 3, 4, 8, None),
                line(3, BasketAction::Book, 3, 4, 9, None),
                line(
                    4,
                    BasketAction::Book,
                    3,
                    4,
                    9,
                    Some(Refusal::from(&ReservationError::AlreadyBooked)),
                ),
                // A day of a period the unit is closed, skipped.
                LineOutcome {
                    skipped: true,
                    ..line(
                        5,
                        BasketAction::Book,
                        3,
                        4,
                        16,
                        Some(Refusal::from(&ReservationError::UnitClosed {
                            date: NaiveDate::from_ymd_opt(2026, 12, 16).unwrap(),
                            reason: espace_famille_domain::calendar::ClosedReason::ClosedWeekday(
                                chrono::Weekday::Wed,
                            ),
                        })),
                    )
                },
                // A full day: on the waiting list, second.
                LineOutcome {
                    waiting_position: Some(2),
                    ..line(6, BasketAction::Book, 5, 4, 10, None)
                },
                // A prepaid day: held until paid.
                LineOutcome {
                    awaiting_payment: true,
                    ..line(7, BasketAction::Book, 5, 9, 10, None)
                },
            ],
        );
        let receipt = Receipt::from(&partial);
        assert_eq!(receipt.groups.len(), 4);
        assert_eq!(receipt.refusals.len(), 3);
        assert_eq!(receipt.skipped, [5]);
        assert_eq!(receipt.waiting, [(6, 2)]);
        assert_eq!(receipt.awaiting_payment, [7]);
        assert_eq!(stored(serde_json::to_value(&receipt).unwrap()), partial);
    }

    /// Rows as `baskets` held them before the stored types and the
    /// GraphQL views were separate: a receipt and a whole outcome.
    #[test]
    fn outcomes_stored_before_read_back_the_same() {
        let day = NaiveDate::from_ymd_opt(2026, 12, 7).unwrap();
        let refusal = Refusal {
            code: ErrorCode::DeadlinePassed,
            message: "too late".into(),
            deadline: Some("2026-12-05T11:00:00Z".parse().unwrap()),
            closed_reason: None,
            opens_at: None,
            minimum_cents: None,
            owed_cents: None,
        };
        let expected = outcome(
            BasketStatus::Partial,
            vec![
                line(0, BasketAction::Book, 3, 4, 7, None),
                line(1, BasketAction::Book, 3, 4, 7, Some(refusal)),
            ],
        );
        assert_eq!(expected.lines[0].date, day);
        let receipt = r#"{"basket_id":"00000000-0000-0000-0000-000000000001","family_id":"00000000-0000-0000-0000-000000000002","status":"Partial","groups":[{"action":"Book","child_id":"00000000-0000-0000-0000-000000000003","unit_id":"00000000-0000-0000-0000-000000000004","lines":[[0,"2026-12-07"],[1,"2026-12-07"]]}],"refusals":[[1,{"code":"DEADLINE_PASSED","message":"too late","deadline":"2026-12-05T11:00:00Z","closed_reason":null}]]}"#;
        assert_eq!(stored(serde_json::from_str(receipt).unwrap()), expected);
        let whole = r#"{"basket_id":"00000000-0000-0000-0000-000000000001","family_id":"00000000-0000-0000-0000-000000000002","status":"Partial","lines":[{"index":0,"action":"Book","child_id":"00000000-0000-0000-0000-000000000003","unit_id":"00000000-0000-0000-0000-000000000004","date":"2026-12-07","reservation_id":"3420cb28-3166-5bf5-88a3-71b1273fe4f2","accepted":true,"refusal":null},{"index":1,"action":"Book","child_id":"00000000-0000-0000-0000-000000000003","unit_id":"00000000-0000-0000-0000-000000000004","date":"2026-12-07","reservation_id":"3420cb28-3166-5bf5-88a3-71b1273fe4f2","accepted":false,"refusal":{"code":"DEADLINE_PASSED","message":"too late","deadline":"2026-12-05T11:00:00Z","closed_reason":null}}]}"#;
        assert_eq!(stored(serde_json::from_str(whole).unwrap()), expected);
        // And what is written now reads as it did.
        assert_eq!(serde_json::to_string(&Receipt::from(&expected)).unwrap(), receipt);
    }

    #[test]
    fn an_outcome_stored_whole_still_reads_back() {
        let whole = outcome(
            BasketStatus::Accepted,
            vec![line(0, BasketAction::Book, 3, 4, 7, None)],
        );
        assert_eq!(stored(serde_json::to_value(&whole).unwrap()), whole);
    }

    #[test]
    fn a_four_week_receipt_stays_under_the_size_postgresql_compresses() {
        let days = [
            7, 8, 10, 11, 14, 15, 17, 18, 21, 22, 24, 25, 28, 29, 30, 31, 1, 2, 3, 4,
        ];
        let lines = days
            .iter()
            .enumerate()
            .map(|(index, &day)| line(index as i32, BasketAction::Book, 3, 4, day, None))
            .collect();
        let accepted = outcome(BasketStatus::Accepted, lines);
        let receipt = serde_json::to_string(&Receipt::from(&accepted)).unwrap();
        // PostgreSQL compresses a row from about 2 kB; the whole outcome
        // takes more than twice that.
        assert!(receipt.len() < 1_000, "{} bytes: {receipt}", receipt.len());
        assert!(serde_json::to_string(&accepted).unwrap().len() > 4_000);
    }
}
