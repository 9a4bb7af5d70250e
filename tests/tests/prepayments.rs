//! Prepaid bookings: a basket's prepaid lines are held until their
//! prepayment invoice is paid through the provider, then confirmed; unpaid
//! past their delay they are released and their places go back.

use std::time::Duration;

use chrono::NaiveDate;
use espace_famille_tests::*;
use serde_json::{json, Value};
use uuid::Uuid;

const SECRET: &str = "secret-des-prepaiements";

const BASKET: &str = "mutation($input: SubmitBasketInput!) {
  submitBasket(input: $input) {
    status prepaymentInvoices
    lines { reservationId accepted awaitingPayment waitingPosition refusal { code } }
  }
}";

const PAY: &str =
    "mutation($ids: [UUID!]!) { payInvoices(invoiceIds: $ids) { paymentId amountCents paymentUrl } }";

/// A prepaid unit of the fixture's canteen at 3.90 € a day, and `places`.
async fn prepaid_unit(app: &TestApp, fixture: &Fixture, from: NaiveDate, places: Option<u32>) -> Uuid {
    let unit = Uuid::new_v4();
    app.gql(
        Some(&fixture.agent()),
        "mutation($c: UUID!, $s: UUID!, $u: UUID!) {
           addUnit(input: {
             collectivityId: $c, id: $u, serviceId: $s, name: \"Repas du mercredi prépayé\",
             weekdays: [MON, TUE, THU, FRI], openDuring: SCHOOL_TERMS, billing: PREPAID,
             bookingDeadline: { daysBefore: { days: 2, at: \"12:00\", skipWeekends: true } },
             cancellationDeadline: { daysBefore: { days: 2, at: \"12:00\", skipWeekends: true } },
             bookingNeedsApproval: true
           }) { id }
         }",
        json!({ "c": fixture.collectivity, "s": fixture.canteen, "u": unit }),
    )
    .await
    .data("addUnit");
    flat_tariff(app, fixture, unit, from, 390).await;
    if let Some(places) = places {
        app.gql(
            Some(&fixture.agent()),
            "mutation($c: UUID!, $u: UUID!, $p: Int) { setPlaces(collectivityId: $c, unitId: $u, places: $p) { id } }",
            json!({ "c": fixture.collectivity, "u": unit, "p": places }),
        )
        .await
        .data("setPlaces");
    }
    unit
}

async fn book(app: &TestApp, fixture: &Fixture, unit: Uuid, days: &[NaiveDate]) -> Value {
    book_as(app, fixture, Uuid::new_v4(), unit, days).await
}

async fn book_as(app: &TestApp, fixture: &Fixture, basket: Uuid, unit: Uuid, days: &[NaiveDate]) -> Value {
    let lines: Vec<Value> = days
        .iter()
        .map(|d| json!({ "action": "BOOK", "childId": fixture.child, "unitId": unit, "date": d }))
        .collect();
    app.gql(
        Some(&fixture.parent()),
        BASKET,
        json!({ "input": { "basketId": basket, "familyId": fixture.family, "lines": lines } }),
    )
    .await
    .data("submitBasket")
    .clone()
}

async fn states(app: &TestApp, fixture: &Fixture, unit: Uuid, days: &[NaiveDate]) -> Vec<String> {
    let calendar = app
        .gql(
            Some(&fixture.parent()),
            "query($child: UUID!, $unit: UUID!, $from: NaiveDate!, $to: NaiveDate!) {
               calendar(childId: $child, unitId: $unit, from: $from, to: $to) { date state label } }",
            json!({ "child": fixture.child, "unit": unit, "from": days[0], "to": days[days.len() - 1] }),
        )
        .await;
    calendar
        .data("calendar")
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| days.iter().any(|day| json!(day) == d["date"]))
        .map(|d| d["state"].as_str().unwrap().to_string())
        .collect()
}

async fn invoice(app: &TestApp, fixture: &Fixture, id: &Value) -> Value {
    app.gql(
        Some(&fixture.parent()),
        "query($id: UUID!) { invoice(id: $id) { number status month totalCents dueOn lines { date reason amountCents unitPriceCents } } }",
        json!({ "id": id }),
    )
    .await
    .data("invoice")
    .clone()
}

/// Polls `check` every 100 ms for 15 s.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..150 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("never: {what}");
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn decide(url: &str, action: &str) {
    let decided = browser()
        .post(url)
        .form(&[("action", action)])
        .send()
        .await
        .unwrap();
    assert_eq!(decided.status(), 303);
}

#[tokio::test]
async fn a_baskets_prepaid_lines_await_their_invoice_and_are_confirmed_once_it_is_paid() {
    let app = spawn_app_with(|s| s.payment.secret = SECRET.into()).await;
    let days = future_canteen_days(2);
    let fixture = setup_commune(&app, &days).await;
    let unit = prepaid_unit(&app, &fixture, days[0], None).await;
    let outcome = book(&app, &fixture, unit, &days).await;
    assert_eq!(outcome["status"], "ACCEPTED");
    assert!(outcome["lines"]
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l["awaitingPayment"] == true));
    let invoices = outcome["prepaymentInvoices"].as_array().unwrap().clone();
    assert_eq!(invoices.len(), 1, "{outcome}");
    let issued = invoice(&app, &fixture, &invoices[0]).await;
    assert_eq!(issued["status"], "ISSUED");
    assert_eq!(issued["month"], Value::Null, "a prepayment, not a month");
    assert_eq!(issued["totalCents"], 780);
    assert_eq!(issued["lines"].as_array().unwrap().len(), 2);
    assert_eq!(issued["lines"][0]["reason"], "BOOKED");
    // Held, not booked yet, nor an agent's to approve: its payment's.
    assert_eq!(
        states(&app, &fixture, unit, &days).await,
        ["AWAITING_PAYMENT", "AWAITING_PAYMENT"]
    );
    let cancel = app
        .request_cancellation(&fixture, &outcome["lines"][0]["reservationId"])
        .await;
    assert_eq!(cancel.error_code(), "PAYMENT_IN_PROGRESS");

    let opened = app
        .gql(Some(&fixture.parent()), PAY, json!({ "ids": invoices }))
        .await;
    let opened = opened.data("payInvoices").clone();
    assert_eq!(opened["amountCents"], 780);
    decide(opened["paymentUrl"].as_str().unwrap(), "payer").await;
    eventually("the bookings are confirmed", || async {
        states(&app, &fixture, unit, &days).await == ["BOOKED", "BOOKED"]
    })
    .await;
    assert_eq!(invoice(&app, &fixture, &invoices[0]).await["status"], "PAID");
    let confirmed: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'PrepaymentReceived'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(confirmed, 2);
    // A basket retried answers with the same invoice.
    let twice = app
        .gql(Some(&fixture.parent()), PAY, json!({ "ids": invoices }))
        .await;
    assert_eq!(twice.error_code(), "INVOICE_NOT_PAYABLE");
}

#[tokio::test]
async fn an_unpaid_prepayment_lapses_its_bookings_are_released_and_their_places_go_back() {
    let app = spawn_app_with(|s| {
        s.payment.secret = SECRET.into();
        s.payment.prepaid_for = Duration::from_secs(1);
        s.payment.reconcile_after = Duration::from_millis(500);
        s.payment.reconcile_every = Duration::from_millis(200);
        s.payment.builtin.notify = true;
    })
    .await;
    let days = future_canteen_days(1);
    let fixture = setup_commune(&app, &days).await;
    let unit = prepaid_unit(&app, &fixture, days[0], Some(1)).await;
    let outcome = book(&app, &fixture, unit, &days).await;
    let invoice_id = outcome["prepaymentInvoices"][0].clone();
    // A payment in progress holds the bookings past the delay...
    let opened = app
        .gql(Some(&fixture.parent()), PAY, json!({ "ids": [invoice_id] }))
        .await;
    let url = opened.data("payInvoices")["paymentUrl"]
        .as_str()
        .unwrap()
        .to_string();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(states(&app, &fixture, unit, &days).await, ["AWAITING_PAYMENT"]);
    assert_eq!(invoice(&app, &fixture, &invoice_id).await["status"], "ISSUED");
    // ...until it ends without paying: then they lapse.
    decide(&url, "abandonner").await;
    eventually("the booking is released", || async {
        states(&app, &fixture, unit, &days).await == ["BOOKABLE"]
    })
    .await;
    let lapsed = invoice(&app, &fixture, &invoice_id).await;
    assert_eq!(lapsed["status"], "CANCELLED");
    // The one place went back: booked again, it is held again, not put
    // on a waiting list.
    let again = book(&app, &fixture, unit, &days).await;
    assert_eq!(again["lines"][0]["awaitingPayment"], true, "{again}");
    assert_eq!(again["lines"][0]["waitingPosition"], Value::Null, "{again}");
    assert_ne!(again["prepaymentInvoices"][0], invoice_id);
}

#[tokio::test]
async fn a_prepaid_day_without_a_tariff_is_refused_with_its_reason() {
    let app = spawn_app().await;
    let days = future_canteen_days(1);
    let fixture = setup_commune(&app, &days).await;
    // The tariff starts after the day.
    let unit = prepaid_unit(&app, &fixture, days[0] + chrono::Duration::days(1), None).await;
    let refused = app
        .gql(
            Some(&fixture.parent()),
            BASKET,
            json!({ "input": { "basketId": Uuid::new_v4(), "familyId": fixture.family,
                               "lines": [{ "action": "BOOK", "childId": fixture.child, "unitId": unit, "date": days[0] }] } }),
        )
        .await;
    let outcome = refused.data("submitBasket");
    assert_eq!(outcome["status"], "REJECTED");
    assert_eq!(outcome["lines"][0]["refusal"]["code"], "PREPAID_NOT_AVAILABLE");
    assert_eq!(outcome["prepaymentInvoices"], json!([]));
}

#[tokio::test]
async fn a_basket_whose_server_stopped_before_its_invoice_still_gets_it_from_the_process_manager() {
    use espace_famille_api::services::basket::{self, Basket, BasketAction, BasketLine};
    let app = spawn_app().await;
    let days = future_canteen_days(2);
    let fixture = setup_commune(&app, &days).await;
    let unit = prepaid_unit(&app, &fixture, days[0], None).await;
    // The basket committed by the write path alone, as if its server had
    // stopped before answering: nobody issued its invoice.
    let commands = espace_famille_api::commands::Commands::new(app.pool.clone(), Duration::from_secs(5));
    let basket_id = Uuid::new_v4();
    let basket = Basket {
        id: basket_id,
        family_id: fixture.family,
        lines: days
            .iter()
            .map(|&date| BasketLine {
                action: BasketAction::Book,
                child_id: fixture.child,
                unit_id: unit,
                date,
                origin: espace_famille_domain::reservation::Origin::Calendar,
            })
            .collect(),
        keep_valid_lines: false,
    };
    let metadata = espace_famille_api::commands::metadata(
        espace_famille_api::auth::identity::Actor {
            account_id: Uuid::new_v4(),
            role: "parent",
        },
        Some(basket_id),
    );
    let outcome = basket::submit(&commands, basket, &metadata).await.unwrap();
    assert!(outcome.lines.iter().all(|l| l.awaiting_payment));
    let id = espace_famille_domain::invoice::prepayment_invoice_id(basket_id, fixture.collectivity);
    eventually("the process manager issues the invoice", || async {
        app.events_in("Invoice", &id.to_string()).await == 1
    })
    .await;
    assert_eq!(invoice(&app, &fixture, &json!(id)).await["totalCents"], 780);
}

#[tokio::test]
async fn a_paid_day_cancelled_becomes_a_credit_on_the_next_monthly_invoice_once() {
    let app = spawn_app_with(|s| s.payment.secret = SECRET.into()).await;
    let days = future_canteen_days(1);
    let fixture = setup_commune(&app, &days).await;
    let prepaid = prepaid_unit(&app, &fixture, days[0], None).await;
    // The monthly canteen at 4.85 €, booked the same day.
    flat_tariff(&app, &fixture, fixture.meal, days[0], 485).await;
    assert_eq!(
        app.book(&fixture, &days).await.data("submitBasket")["status"],
        "ACCEPTED"
    );
    let outcome = book(&app, &fixture, prepaid, &days).await;
    let prepayment = outcome["prepaymentInvoices"][0].clone();
    let opened = app
        .gql(Some(&fixture.parent()), PAY, json!({ "ids": [prepayment] }))
        .await;
    decide(
        opened.data("payInvoices")["paymentUrl"].as_str().unwrap(),
        "payer",
    )
    .await;
    eventually("the prepaid day is confirmed", || async {
        states(&app, &fixture, prepaid, &days).await == ["BOOKED"]
    })
    .await;
    // Cancelled within its deadline after it was paid.
    let cancelled = app
        .request_cancellation(&fixture, &outcome["lines"][0]["reservationId"])
        .await;
    assert_eq!(cancelled.data("requestCancellation")["status"], "CANCELLED");

    let month = days[0].format("%Y-%m").to_string();
    let bill =
        "mutation($c: UUID!, $m: String!) { billMonth(collectivityId: $c, month: $m) { issued totalCents } }";
    let billed = app
        .gql(
            Some(&fixture.agent()),
            bill,
            json!({ "c": fixture.collectivity, "m": month }),
        )
        .await;
    assert_eq!(
        billed.data("billMonth"),
        &json!({ "issued": 1, "totalCents": 485 - 390 })
    );
    let monthly =
        espace_famille_domain::invoice::monthly_invoice_id(fixture.collectivity, fixture.family, &month);
    let monthly = invoice(&app, &fixture, &json!(monthly)).await;
    let reasons: Vec<(&str, i64)> = monthly["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| (l["reason"].as_str().unwrap(), l["amountCents"].as_i64().unwrap()))
        .collect();
    assert_eq!(reasons, [("BOOKED", 485), ("CREDIT", -390)]);
    assert_eq!(monthly["totalCents"], 95, "the lines add up to the cent");
    let credited = app
        .gql(
            Some(&fixture.parent()),
            "query($f: UUID!) { familyInvoices(familyId: $f) { id creditedCents } }",
            json!({ "f": fixture.family }),
        )
        .await;
    let credited: Vec<i64> = credited
        .data("familyInvoices")
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["id"] == prepayment)
        .map(|i| i["creditedCents"].as_i64().unwrap())
        .collect();
    assert_eq!(credited, [-390]);
    // Billed again, or the next month: credited once.
    let again = app
        .gql(
            Some(&fixture.agent()),
            bill,
            json!({ "c": fixture.collectivity, "m": month }),
        )
        .await;
    assert_eq!(again.data("billMonth")["issued"], 0);
    let next = (days[0] + chrono::Months::new(1)).format("%Y-%m").to_string();
    let next = app
        .gql(
            Some(&fixture.agent()),
            bill,
            json!({ "c": fixture.collectivity, "m": next }),
        )
        .await;
    assert_eq!(next.data("billMonth")["issued"], 0);
    let notes: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'CreditNoteIssued'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(notes, 1);
}

const CORRELATION: &str = "query($id: UUID!, $after: String, $first: Int!) {
  correlation(id: $id, after: $after, first: $first) {
    events { aggregateType aggregateId position event { eventType correlationId actorRole } }
    nextAfter
  }
}";

/// Every page of a correlation, as `token` reads it.
async fn correlation(app: &TestApp, token: &str, id: Uuid, first: i64) -> Vec<Value> {
    app.every_page(
        token,
        CORRELATION,
        "correlation",
        json!({ "id": id, "first": first }),
    )
    .await
}

#[tokio::test]
async fn a_prepaid_baskets_correlation_follows_it_through_its_invoice_payment_and_confirmations() {
    let app = spawn_app_with(|s| s.payment.secret = SECRET.into()).await;
    let days = future_canteen_days(2);
    let fixture = setup_commune(&app, &days).await;
    let unit = prepaid_unit(&app, &fixture, days[0], None).await;
    let basket = Uuid::new_v4();
    let outcome = book_as(&app, &fixture, basket, unit, &days).await;
    let invoices = outcome["prepaymentInvoices"].as_array().unwrap().clone();
    let opened = app
        .gql(Some(&fixture.parent()), PAY, json!({ "ids": invoices }))
        .await;
    decide(
        opened.data("payInvoices")["paymentUrl"].as_str().unwrap(),
        "payer",
    )
    .await;
    eventually("the bookings are confirmed", || async {
        states(&app, &fixture, unit, &days).await == ["BOOKED", "BOOKED"]
    })
    .await;

    let events = correlation(&app, &fixture.agent(), basket, 500).await;
    let kinds: Vec<String> = events
        .iter()
        .map(|e| {
            format!(
                "{}:{}",
                e["aggregateType"].as_str().unwrap(),
                e["event"]["eventType"].as_str().unwrap()
            )
        })
        .collect();
    let at = |wanted: &str| {
        kinds
            .iter()
            .position(|k| k == wanted)
            .unwrap_or_else(|| panic!("no {wanted} in {kinds:?}"))
    };
    // What the basket did, then what followed from it, in commit order.
    assert!(at("Reservation:ReservationRequested") < at("Invoice:InvoiceIssued"));
    assert!(at("Invoice:InvoiceIssued") < at("Payment:PaymentStarted"));
    assert!(at("Payment:PaymentStarted") < at("Payment:PaymentSucceeded"));
    assert!(at("Payment:PaymentSucceeded") <= at("Invoice:InvoicePaid"));
    assert!(at("Invoice:InvoicePaid") < at("Reservation:PrepaymentReceived"));
    assert_eq!(
        kinds
            .iter()
            .filter(|k| *k == "Reservation:PrepaymentReceived")
            .count(),
        2
    );
    assert!(events
        .iter()
        .all(|e| e["event"]["correlationId"] == json!(basket)));
    assert!(in_commit_order(&events), "commit order: {events:?}");
    // Paged, the same events.
    assert_eq!(correlation(&app, &fixture.agent(), basket, 3).await, events);
    // The invoice numbers' stream is an auditor of everything's.
    assert!(!kinds.iter().any(|k| k.starts_with("InvoiceNumbers")));
    let everything = correlation(&app, &auditor(&app).await, basket, 500).await;
    assert!(everything.len() >= events.len());

    // Another commune's agent and another family's parent read nothing of it.
    let other = setup_commune(&app, &days).await;
    assert!(correlation(&app, &other.agent(), basket, 500).await.is_empty());
    assert!(correlation(&app, &other.parent(), basket, 500).await.is_empty());
    let bad = app
        .gql(
            Some(&fixture.agent()),
            CORRELATION,
            json!({ "id": basket, "after": "12/x", "first": 10 }),
        )
        .await;
    assert_eq!(bad.error_code(), "VALIDATION");
}
