//! A régie's invoice numbers for a year: a stream per commune and year,
//! appended in the transaction of the invoices it numbers, after the
//! version it read. Two writers that read the same last number cannot both
//! commit, and a number is given only with its invoice: no duplicate, no
//! gap.

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Namespace of the numbers' stream ids; never change it.
const NUMBERS_NAMESPACE: Uuid = Uuid::from_u128(0x8c21_5f0e_3d74_4b9a_a6e2_0f51_97cd_4e38);

/// The stream of `collectivity_id`'s invoice numbers for `year`.
pub fn numbers_id(collectivity_id: Uuid, year: i32) -> Uuid {
    let mut name = Vec::with_capacity(20);
    name.extend_from_slice(collectivity_id.as_bytes());
    name.extend_from_slice(&year.to_be_bytes());
    Uuid::new_v5(&NUMBERS_NAMESPACE, &name)
}

/// An invoice number as it is printed: the year, then the rank.
pub fn format_number(year: i32, number: u32) -> String {
    format!("{year}-{number:06}")
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceNumbers {
    pub given: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NumbersCommand {
    /// The next numbers, one per invoice, in order.
    Give { invoices: Vec<Uuid> },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum NumbersEvent {
    NumberGiven { invoice_id: Uuid, number: u32 },
}

impl DomainEvent for NumbersEvent {
    fn event_type(&self) -> String {
        "NumberGiven".to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no more invoice numbers this year")]
pub struct NumbersExhausted;

impl Aggregate for InvoiceNumbers {
    const TYPE: &'static str = "InvoiceNumbers";
    type Command = NumbersCommand;
    type Event = NumbersEvent;
    type Error = NumbersExhausted;
    type Services = ();

    async fn handle(
        &mut self,
        command: NumbersCommand,
        _: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), NumbersExhausted> {
        let NumbersCommand::Give { invoices } = command;
        if u64::from(self.given) + invoices.len() as u64 > 999_999 {
            return Err(NumbersExhausted);
        }
        for invoice_id in invoices {
            let number = self.given + 1;
            sink.write(NumbersEvent::NumberGiven { invoice_id, number }, self)
                .await;
        }
        Ok(())
    }

    fn apply(&mut self, event: NumbersEvent) {
        let NumbersEvent::NumberGiven { number, .. } = event;
        self.given = self.given.max(number);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cqrs_es::test::TestFramework;

    #[test]
    fn numbers_follow_each_other_from_the_last_given() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        TestFramework::<InvoiceNumbers>::with(())
            .given(vec![NumbersEvent::NumberGiven {
                invoice_id: Uuid::from_u128(9),
                number: 41,
            }])
            .when(NumbersCommand::Give { invoices: vec![a, b] })
            .then_expect_events(vec![
                NumbersEvent::NumberGiven {
                    invoice_id: a,
                    number: 42,
                },
                NumbersEvent::NumberGiven {
                    invoice_id: b,
                    number: 43,
                },
            ]);
        assert_eq!(format_number(2027, 42), "2027-000042");
        assert_ne!(numbers_id(a, 2027), numbers_id(a, 2028));
        assert_ne!(numbers_id(a, 2027), numbers_id(b, 2027));
    }
}
