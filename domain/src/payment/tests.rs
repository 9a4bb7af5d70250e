//! Given/when/then tests of the payment.

use super::*;
use cqrs_es::test::TestFramework;

fn at() -> DateTime<Utc> {
    "2027-02-03T10:00:00Z".parse().unwrap()
}

fn started() -> Started {
    Started {
        collectivity_id: Uuid::from_u128(0xc0),
        family_id: Uuid::from_u128(0xfa),
        invoices: vec![
            PaidInvoice {
                invoice_id: Uuid::from_u128(1),
                number: "2027-000001".into(),
                amount_cents: 4_310,
            },
            PaidInvoice {
                invoice_id: Uuid::from_u128(2),
                number: "2027-000002".into(),
                amount_cents: 1_290,
            },
        ],
        amount_cents: 5_600,
        started_at: at(),
    }
}

fn observed(status: OperationStatus, amount_cents: i64) -> Observed {
    Observed {
        status,
        authorisation: (status == OperationStatus::Paid).then(|| "A12345".to_string()),
        amount_cents,
        at: at(),
    }
}

fn opened() -> Vec<PaymentEvent> {
    vec![
        PaymentEvent::PaymentStarted { started: started() },
        PaymentEvent::OperationOpened {
            operation_id: "op-1".into(),
        },
    ]
}

fn framework() -> TestFramework<Payment> {
    TestFramework::with(())
}

#[test]
fn a_payment_pays_invoices_whose_amounts_add_up_to_it() {
    let mut wrong = started();
    wrong.amount_cents += 1;
    framework()
        .given_no_previous_events()
        .when(PaymentCommand::Start { started: wrong })
        .then_expect_error(PaymentError::InvalidInvoices);
    let mut twice = started();
    twice.invoices[1].invoice_id = twice.invoices[0].invoice_id;
    framework()
        .given_no_previous_events()
        .when(PaymentCommand::Start { started: twice })
        .then_expect_error(PaymentError::InvalidInvoices);
    framework()
        .given_no_previous_events()
        .when(PaymentCommand::Start { started: started() })
        .then_expect_events(vec![PaymentEvent::PaymentStarted { started: started() }]);
}

#[test]
fn the_amount_due_paid_succeeds_with_the_providers_authorisation() {
    let paid = observed(OperationStatus::Paid, 5_600);
    framework()
        .given(opened())
        .when(PaymentCommand::Observe {
            observed: paid.clone(),
        })
        .then_expect_events(vec![
            PaymentEvent::OperationObserved { observed: paid },
            PaymentEvent::PaymentSucceeded {
                authorisation: Some("A12345".into()),
                amount_cents: 5_600,
                paid_at: at(),
            },
        ]);
}

#[test]
fn another_amount_paid_is_an_anomaly_that_pays_nothing() {
    let paid = observed(OperationStatus::Paid, 100);
    framework()
        .given(opened())
        .when(PaymentCommand::Observe {
            observed: paid.clone(),
        })
        .then_expect_events(vec![
            PaymentEvent::OperationObserved { observed: paid },
            PaymentEvent::PaymentAnomaly {
                paid_cents: 100,
                due_cents: 5_600,
            },
        ]);
}

#[test]
fn a_final_answer_told_again_adds_nothing_and_cannot_be_changed() {
    let mut given = opened();
    given.push(PaymentEvent::OperationObserved {
        observed: observed(OperationStatus::Refused, 0),
    });
    given.push(PaymentEvent::PaymentFailed {
        because: FailedBecause::Refused,
    });
    for status in [OperationStatus::Refused, OperationStatus::Paid] {
        framework()
            .given(given.clone())
            .when(PaymentCommand::Observe {
                observed: observed(status, 5_600),
            })
            .then_expect_events(vec![]);
    }
}

#[test]
fn pending_is_kept_once_until_it_changes() {
    let pending = observed(OperationStatus::Pending, 0);
    framework()
        .given(opened())
        .when(PaymentCommand::Observe {
            observed: pending.clone(),
        })
        .then_expect_events(vec![PaymentEvent::OperationObserved {
            observed: pending.clone(),
        }]);
    let mut given = opened();
    given.push(PaymentEvent::OperationObserved {
        observed: pending.clone(),
    });
    framework()
        .given(given)
        .when(PaymentCommand::Observe { observed: pending })
        .then_expect_events(vec![]);
}

#[test]
fn nothing_is_observed_before_the_operation_is_opened() {
    framework()
        .given(vec![PaymentEvent::PaymentStarted { started: started() }])
        .when(PaymentCommand::Observe {
            observed: observed(OperationStatus::Paid, 5_600),
        })
        .then_expect_error(PaymentError::NotOpened);
    framework()
        .given(vec![PaymentEvent::PaymentStarted { started: started() }])
        .when(PaymentCommand::Abort)
        .then_expect_events(vec![PaymentEvent::PaymentFailed {
            because: FailedBecause::NotOpened,
        }]);
}

#[test]
fn an_operation_id_is_safe_in_an_address() {
    assert!(valid_operation_id("op_1-AZ"));
    for bad in ["", "a/b", "a b", "é", &"x".repeat(65)] {
        assert!(!valid_operation_id(bad), "{bad}");
    }
    framework()
        .given(vec![PaymentEvent::PaymentStarted { started: started() }])
        .when(PaymentCommand::Open {
            operation_id: "../x".into(),
        })
        .then_expect_error(PaymentError::InvalidOperationId);
}
