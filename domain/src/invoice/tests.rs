//! Given/when/then tests of the invoice.

use super::*;
use crate::collectivity::{Bracket, Tariff};
use cqrs_es::test::TestFramework;

fn tariff() -> Tariff {
    Tariff {
        id: Uuid::from_u128(0x7a),
        unit_id: Uuid::from_u128(0x0e1),
        valid_from: NaiveDate::from_ymd_opt(2026, 9, 1).unwrap(),
        valid_until: None,
        brackets: vec![
            Bracket {
                up_to: Some(700),
                price_cents: 215,
            },
            Bracket {
                up_to: None,
                price_cents: 485,
            },
        ],
        sibling_reductions: vec![],
        unjustified_absence_percent: 50,
        unexpected_presence_penalty_cents: 200,
    }
}

fn line(day: u32, billed: Billed) -> InvoiceLine {
    let priced = tariff().price(Some(550), 1, billed);
    InvoiceLine {
        child_id: Uuid::from_u128(0xc1),
        unit_id: Uuid::from_u128(0x0e1),
        date: NaiveDate::from_ymd_opt(2027, 1, day).unwrap(),
        reservation_id: Uuid::from_u128(u128::from(day)),
        reason: LineReason::Billed(billed),
        amount_cents: priced.amount_cents,
        priced,
    }
}

fn issued() -> Issued {
    let lines = vec![
        line(4, Billed::Booked),
        line(5, Billed::UnjustifiedAbsence),
        line(7, Billed::UnexpectedPresence),
    ];
    Issued {
        collectivity_id: Uuid::from_u128(0x0c0),
        family_id: Uuid::from_u128(0xfa),
        number: "2027-000001".into(),
        kind: InvoiceKind::Monthly {
            month: "2027-01".into(),
        },
        total_cents: lines.iter().map(|l| l.amount_cents).sum(),
        lines,
        issued_on: NaiveDate::from_ymd_opt(2027, 2, 1).unwrap(),
        payable_online_until: NaiveDate::from_ymd_opt(2027, 2, 28).unwrap(),
        due_on: NaiveDate::from_ymd_opt(2027, 2, 28).unwrap(),
    }
}

fn framework() -> TestFramework<Invoice> {
    TestFramework::with(())
}

fn paid_at() -> DateTime<Utc> {
    "2027-02-03T10:00:00Z".parse().unwrap()
}

#[test]
fn an_invoices_lines_explain_themselves_and_add_up_to_its_total() {
    let invoice = issued();
    // 215 booked, 215 × 50 % = 108 absent unjustified, 215 + 200 there
    // without a booking.
    let amounts: Vec<i64> = invoice.lines.iter().map(|l| l.amount_cents).collect();
    assert_eq!(amounts, [215, 108, 415]);
    assert_eq!(invoice.total_cents, 738);
    assert_eq!(invoice.lines[1].priced.share_percent, 50);
    assert_eq!(invoice.lines[0].priced.quotient, Some(550));
    framework()
        .given_no_previous_events()
        .when(InvoiceCommand::Issue {
            issued: invoice.clone(),
        })
        .then_expect_events(vec![InvoiceEvent::InvoiceIssued {
            issued: invoice.clone(),
        }]);
    // A total that does not add up, or no line: refused.
    framework()
        .given_no_previous_events()
        .when(InvoiceCommand::Issue {
            issued: Issued {
                total_cents: 737,
                ..invoice.clone()
            },
        })
        .then_expect_error(InvoiceError::InvalidLines);
    framework()
        .given_no_previous_events()
        .when(InvoiceCommand::Issue {
            issued: Issued {
                lines: vec![],
                total_cents: 0,
                ..invoice.clone()
            },
        })
        .then_expect_error(InvoiceError::InvalidLines);
    framework()
        .given(vec![InvoiceEvent::InvoiceIssued {
            issued: invoice.clone(),
        }])
        .when(InvoiceCommand::Issue { issued: invoice })
        .then_expect_error(InvoiceError::AlreadyIssued);
}

#[test]
fn a_payment_counts_once_for_the_amount_due_and_never_on_a_cancelled_invoice() {
    let issued_only = vec![InvoiceEvent::InvoiceIssued { issued: issued() }];
    let issued_events = vec![
        InvoiceEvent::InvoiceIssued { issued: issued() },
        InvoiceEvent::InvoicePaymentStarted {
            payment_id: Uuid::from_u128(0x9a),
        },
    ];
    let pay = |amount| InvoiceCommand::RecordPayment {
        payment_id: Uuid::from_u128(0x9a),
        amount_cents: amount,
        paid_at: paid_at(),
    };
    let paid = InvoiceEvent::InvoicePaid {
        payment_id: Uuid::from_u128(0x9a),
        amount_cents: 738,
        paid_at: paid_at(),
    };
    framework()
        .given(issued_events.clone())
        .when(pay(738))
        .then_expect_events(vec![paid.clone()]);
    framework()
        .given(issued_events.clone())
        .when(pay(700))
        .then_expect_error(InvoiceError::AmountMismatch { paid: 700, due: 738 });
    // The same payment told again: nothing; another: refused.
    framework()
        .given([issued_events.clone(), vec![paid.clone()]].concat())
        .when(pay(738))
        .then_expect_events(vec![]);
    framework()
        .given([issued_events.clone(), vec![paid]].concat())
        .when(InvoiceCommand::RecordPayment {
            payment_id: Uuid::from_u128(0x9b),
            amount_cents: 738,
            paid_at: paid_at(),
        })
        .then_expect_error(InvoiceError::AlreadyPaid);
    let cancelled = InvoiceEvent::InvoiceCancelled {
        reason: "Erreur de tarif".into(),
    };
    // Not while a payment is in progress.
    framework()
        .given(issued_events.clone())
        .when(InvoiceCommand::Cancel {
            reason: "Erreur de tarif".into(),
        })
        .then_expect_error(InvoiceError::PaymentInProgress);
    framework()
        .given(issued_only.clone())
        .when(InvoiceCommand::Cancel {
            reason: "Erreur de tarif".into(),
        })
        .then_expect_events(vec![cancelled.clone()]);
    framework()
        .given([issued_only.clone(), vec![cancelled]].concat())
        .when(pay(738))
        .then_expect_error(InvoiceError::Cancelled);
    framework()
        .given(issued_only)
        .when(InvoiceCommand::Cancel { reason: "  ".into() })
        .then_expect_error(InvoiceError::EmptyReason);
    framework()
        .given_no_previous_events()
        .when(pay(738))
        .then_expect_error(InvoiceError::NotIssued);
}

#[test]
fn one_payment_at_a_time_and_only_the_one_in_progress_pays() {
    let first = Uuid::from_u128(0x9a);
    let second = Uuid::from_u128(0x9b);
    let issued_only = vec![InvoiceEvent::InvoiceIssued { issued: issued() }];
    let started = [
        issued_only.clone(),
        vec![InvoiceEvent::InvoicePaymentStarted { payment_id: first }],
    ]
    .concat();
    framework()
        .given(issued_only.clone())
        .when(InvoiceCommand::StartPayment { payment_id: first })
        .then_expect_events(vec![InvoiceEvent::InvoicePaymentStarted { payment_id: first }]);
    framework()
        .given(started.clone())
        .when(InvoiceCommand::StartPayment { payment_id: second })
        .then_expect_error(InvoiceError::PaymentInProgress);
    framework()
        .given(started.clone())
        .when(InvoiceCommand::RecordPayment {
            payment_id: second,
            amount_cents: 738,
            paid_at: paid_at(),
        })
        .then_expect_error(InvoiceError::NotThisPayment);
    framework()
        .given(issued_only)
        .when(InvoiceCommand::RecordPayment {
            payment_id: first,
            amount_cents: 738,
            paid_at: paid_at(),
        })
        .then_expect_error(InvoiceError::NotThisPayment);
    // Released, another may begin; releasing another changes nothing.
    framework()
        .given(started.clone())
        .when(InvoiceCommand::ReleasePayment { payment_id: second })
        .then_expect_events(vec![]);
    framework()
        .given(
            [
                started,
                vec![InvoiceEvent::InvoicePaymentReleased { payment_id: first }],
            ]
            .concat(),
        )
        .when(InvoiceCommand::StartPayment { payment_id: second })
        .then_expect_events(vec![InvoiceEvent::InvoicePaymentStarted { payment_id: second }]);
}

#[test]
fn a_credit_note_refunds_lines_the_paid_invoice_billed_once_each() {
    let history = vec![
        InvoiceEvent::InvoiceIssued { issued: issued() },
        InvoiceEvent::InvoicePaid {
            payment_id: Uuid::from_u128(0x9a),
            amount_cents: 738,
            paid_at: paid_at(),
        },
    ];
    let refund = |day: u32, billed| {
        let billed_line = line(day, billed);
        InvoiceLine {
            reason: LineReason::Credit {
                invoice_number: "2027-000001".into(),
            },
            amount_cents: -billed_line.amount_cents,
            ..billed_line
        }
    };
    framework()
        .given(history.clone())
        .when(InvoiceCommand::IssueCreditNote {
            lines: vec![refund(4, Billed::Booked)],
        })
        .then_expect_events(vec![InvoiceEvent::CreditNoteIssued {
            lines: vec![refund(4, Billed::Booked)],
            total_cents: -215,
        }]);
    let credited = [
        history.clone(),
        vec![InvoiceEvent::CreditNoteIssued {
            lines: vec![refund(4, Billed::Booked)],
            total_cents: -215,
        }],
    ]
    .concat();
    framework()
        .given(credited)
        .when(InvoiceCommand::IssueCreditNote {
            lines: vec![refund(4, Billed::Booked)],
        })
        .then_expect_error(InvoiceError::NotRefundable);
    // A day it did not bill, or an unpaid invoice: nothing to refund.
    framework()
        .given(history)
        .when(InvoiceCommand::IssueCreditNote {
            lines: vec![refund(6, Billed::Booked)],
        })
        .then_expect_error(InvoiceError::NotRefundable);
    framework()
        .given(vec![InvoiceEvent::InvoiceIssued { issued: issued() }])
        .when(InvoiceCommand::IssueCreditNote {
            lines: vec![refund(4, Billed::Booked)],
        })
        .then_expect_error(InvoiceError::NotRefundable);
}
