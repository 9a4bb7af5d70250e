//! The invoices read model folds a batch into two statements: whatever the
//! batch size, it must end with the rows an event at a time leaves.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use cqrs_es::DomainEvent;
use espace_famille_domain::invoice::{InvoiceEvent, InvoiceKind, Issued};
use espace_famille_projections::engine::{self, Projection};
use espace_famille_projections::invoices::InvoicesProjection;
use espace_famille_projections::testing::{fresh_database, wait_below_horizon};
use sqlx::PgPool;
use uuid::Uuid;

async fn record(pool: &PgPool, stream: Uuid, sequence: i64, event: InvoiceEvent) {
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         VALUES ('Invoice', $1, $2, $3, $4, $5::json, '{}')",
    )
    .bind(stream.to_string())
    .bind(sequence)
    .bind(event.event_type())
    .bind(event.event_version())
    .bind(serde_json::to_string(&event).unwrap())
    .execute(pool)
    .await
    .unwrap();
}

fn issued(number: &str, kind: InvoiceKind, total_cents: i64) -> InvoiceEvent {
    let day = |d| NaiveDate::from_ymd_opt(2027, 2, d).unwrap();
    InvoiceEvent::InvoiceIssued {
        issued: Issued {
            collectivity_id: Uuid::from_u128(2),
            family_id: Uuid::from_u128(1),
            number: number.to_string(),
            kind,
            lines: vec![],
            total_cents,
            issued_on: day(1),
            payable_online_until: day(20),
            due_on: day(25),
        },
    }
}

fn monthly() -> InvoiceKind {
    InvoiceKind::Monthly {
        month: "2027-01".to_string(),
    }
}

fn paid_at(hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2027, 2, 3, hour, 0, 0).unwrap()
}

/// Every invoice row, as (number, status, total, credited, paid at, payment in progress, month).
type Row = (
    String,
    String,
    i64,
    i64,
    Option<DateTime<Utc>>,
    bool,
    Option<String>,
);

async fn rows(pool: &PgPool) -> Vec<Row> {
    sqlx::query_as(
        "SELECT number, status, total_cents, credited_cents, paid_at, payment_in_progress, month
         FROM invoices ORDER BY number",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

/// The rows the events above leave.
#[rustfmt::skip]
fn expected() -> Vec<Row> {
    let month = || Some("2027-01".to_string());
    vec![
        ("2027-000001".into(), "paid".into(), 10_000, 0, Some(paid_at(9)), false, month()),
        ("2027-000002".into(), "cancelled".into(), 2_500, 0, None, false, None),
        ("2027-000003".into(), "paid".into(), 5_000, 500, Some(paid_at(10)), false, month()),
        ("2027-000004".into(), "issued".into(), 7_000, 0, None, true, month()),
        ("2027-000005".into(), "issued".into(), 900, 0, None, false, month()),
    ]
}

#[tokio::test]
async fn invoices_rebuilt_in_batches_of_any_size_end_as_an_event_at_a_time_leaves_them() {
    let (pool, _) = fresh_database().await;
    engine::register(&pool, &[Arc::new(InvoicesProjection) as Arc<dyn Projection>])
        .await
        .unwrap();
    let [a, b, c, d, never, late] = [(); 6].map(|_| Uuid::new_v4());
    let payment = Uuid::new_v4;

    // Paid after a payment abandoned and one started again.
    record(&pool, a, 1, issued("2027-000001", monthly(), 10_000)).await;
    record(
        &pool,
        a,
        2,
        InvoiceEvent::InvoicePaymentStarted {
            payment_id: payment(),
        },
    )
    .await;
    // A prepayment cancelled.
    record(
        &pool,
        b,
        1,
        issued(
            "2027-000002",
            InvoiceKind::Prepayment { basket_id: payment() },
            2_500,
        ),
    )
    .await;
    record(
        &pool,
        a,
        3,
        InvoiceEvent::InvoicePaymentReleased {
            payment_id: payment(),
        },
    )
    .await;
    record(
        &pool,
        b,
        2,
        InvoiceEvent::InvoiceCancelled {
            reason: "annulée".to_string(),
        },
    )
    .await;
    record(
        &pool,
        a,
        4,
        InvoiceEvent::InvoicePaymentStarted {
            payment_id: payment(),
        },
    )
    .await;
    // Paid, then credited twice.
    record(&pool, c, 1, issued("2027-000003", monthly(), 5_000)).await;
    let paid = |hour| InvoiceEvent::InvoicePaid {
        payment_id: Uuid::nil(),
        amount_cents: 0,
        paid_at: paid_at(hour),
    };
    record(&pool, a, 5, paid(9)).await;
    record(&pool, c, 2, paid(10)).await;
    let credit = |total_cents| InvoiceEvent::CreditNoteIssued {
        lines: vec![],
        total_cents,
    };
    record(&pool, c, 3, credit(300)).await;
    // A payment under way.
    record(&pool, d, 1, issued("2027-000004", monthly(), 7_000)).await;
    record(&pool, c, 4, credit(200)).await;
    record(
        &pool,
        d,
        2,
        InvoiceEvent::InvoicePaymentStarted {
            payment_id: payment(),
        },
    )
    .await;
    // An invoice never issued changes nothing.
    record(&pool, never, 1, paid(11)).await;
    // What comes before its issue changes nothing either.
    record(
        &pool,
        late,
        1,
        InvoiceEvent::InvoicePaymentStarted {
            payment_id: payment(),
        },
    )
    .await;
    record(&pool, late, 2, issued("2027-000005", monthly(), 900)).await;
    wait_below_horizon(&pool).await;

    // Live, an event at a time.
    assert_eq!(engine::catch_up(&pool, &InvoicesProjection, 1).await.unwrap(), 16);
    let live = rows(&pool).await;
    assert_eq!(live, expected());

    // Batches cutting the streams anywhere fold to the same rows.
    for batch in [1, 2, 3, 4, 7, 1000] {
        let rebuild = engine::rebuild_in_batches(&pool, &[&InvoicesProjection], batch)
            .await
            .unwrap();
        assert_eq!(rebuild.events, 16);
        assert!(rebuild.reports[0].matched_live, "batches of {batch}");
        assert_eq!(rows(&pool).await, live, "batches of {batch}");
    }
}

#[tokio::test]
async fn an_invoice_issued_twice_is_refused_in_one_batch_as_event_by_event() {
    let (pool, _) = fresh_database().await;
    engine::register(&pool, &[Arc::new(InvoicesProjection) as Arc<dyn Projection>])
        .await
        .unwrap();
    let id = Uuid::new_v4();
    record(&pool, id, 1, issued("2027-000001", monthly(), 1_000)).await;
    record(&pool, id, 2, issued("2027-000001", monthly(), 1_000)).await;
    wait_below_horizon(&pool).await;
    assert!(engine::rebuild_in_batches(&pool, &[&InvoicesProjection], 1000)
        .await
        .is_err());
    assert!(rows(&pool).await.is_empty(), "nothing live changed");
}
