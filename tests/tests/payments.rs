//! Paying invoices online through the built-in provider (PayFiP's shape):
//! several invoices in one payment, paid only once the provider confirmed
//! it to the server; forged, altered and replayed notifications that pay
//! nothing; a lost notification caught by the reconciliation; refusals,
//! abandons and expiries that free the invoices; an amount that does not
//! match, an anomaly that pays nothing.

use std::time::Duration;

use chrono::{Datelike, NaiveDate, Utc};
use espace_famille_api::payment::sign;
use espace_famille_tests::*;
use serde_json::{json, Value};
use uuid::Uuid;

const SECRET: &str = "un-secret-partage-pour-les-tests";

/// A server whose provider notifies (or not), and reconciles quickly.
async fn spawn_payments(notify: bool, notify_delay: Duration) -> TestApp {
    spawn_app_with(move |s| {
        s.payment.secret = SECRET.into();
        s.payment.builtin.notify = notify;
        s.payment.builtin.notify_delay = notify_delay;
        s.payment.reconcile_after = Duration::from_secs(3600);
        s.payment.reconcile_every = Duration::from_millis(200);
    })
    .await
}

/// The two latest months with canteen days before today, a day of each.
fn two_past_months() -> [NaiveDate; 2] {
    let today = Utc::now().date_naive();
    let mut found: Vec<NaiveDate> = Vec::new();
    for back in 1..200 {
        let day = today - chrono::Duration::days(back);
        if is_canteen_day(day) && found.last().is_none_or(|f| f.month() != day.month()) {
            found.push(day);
            if found.len() == 2 {
                return [found[1], found[0]];
            }
        }
    }
    panic!("no two months of canteen days in the last 200 days");
}

/// A family with an invoice for each of two months: their ids and totals.
async fn two_invoices(app: &TestApp) -> (Fixture, Vec<(Uuid, i64)>) {
    let days = two_past_months();
    let fixture = setup_commune(app, &days).await;
    flat_tariff(app, &fixture, fixture.meal, days[0], 485).await;
    seed_confirmed(app, &fixture, &days).await;
    until_in_calendar(app, fixture.meal, 2).await;
    let mut invoices = Vec::new();
    for day in days {
        let month = day.format("%Y-%m").to_string();
        app.gql(
            Some(&fixture.agent()),
            "mutation($c: UUID!, $m: String!) { billMonth(collectivityId: $c, month: $m) { issued } }",
            json!({ "c": fixture.collectivity, "m": month }),
        )
        .await
        .data("billMonth");
        let id =
            espace_famille_domain::invoice::monthly_invoice_id(fixture.collectivity, fixture.family, &month);
        invoices.push((id, 485));
    }
    (fixture, invoices)
}

const PAY: &str =
    "mutation($ids: [UUID!]!) { payInvoices(invoiceIds: $ids) { paymentId amountCents paymentUrl } }";

async fn pay(app: &TestApp, fixture: &Fixture, ids: &[Uuid]) -> Value {
    app.gql(Some(&fixture.parent()), PAY, json!({ "ids": ids }))
        .await
        .data("payInvoices")
        .clone()
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The payer clicks `action` (payer, refuser, abandonner) on the hosted
/// page: where the provider sends the browser back.
async fn decide_on_page(payment_url: &str, action: &str) -> String {
    let page = browser().get(payment_url).send().await.unwrap();
    assert!(page.status().is_success());
    let page = page.text().await.unwrap();
    assert!(page.contains(&format!("value=\"{action}\"")), "{page}");
    let decided = browser()
        .post(payment_url)
        .form(&[("action", action)])
        .send()
        .await
        .unwrap();
    assert_eq!(decided.status(), 303);
    decided.headers()["location"].to_str().unwrap().to_string()
}

fn operation_of(payment_url: &str) -> String {
    payment_url.rsplit('/').next().unwrap().to_string()
}

async fn payment(app: &TestApp, fixture: &Fixture, id: &Value) -> Value {
    app.gql(
        Some(&fixture.parent()),
        "query($id: UUID!) { payment(id: $id) { status amountCents invoices { number amountCents }
           operationId history { status authorisation amountCents } } }",
        json!({ "id": id }),
    )
    .await
    .data("payment")
    .clone()
}

/// Waits until the payment leaves PENDING: its view.
async fn until_decided(app: &TestApp, fixture: &Fixture, id: &Value) -> Value {
    for _ in 0..150 {
        let seen = payment(app, fixture, id).await;
        if seen["status"] != "PENDING" {
            return seen;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the payment was never decided");
}

async fn statuses(app: &TestApp, fixture: &Fixture) -> Vec<(String, bool)> {
    let listed = app
        .gql(
            Some(&fixture.parent()),
            "query($f: UUID!) { familyInvoices(familyId: $f) { status paymentInProgress } }",
            json!({ "f": fixture.family }),
        )
        .await;
    listed
        .data("familyInvoices")
        .as_array()
        .unwrap()
        .iter()
        .map(|i| {
            (
                i["status"].as_str().unwrap().to_string(),
                i["paymentInProgress"].as_bool().unwrap(),
            )
        })
        .collect()
}

/// Posts a notification as the provider would, signed with `secret`.
async fn notify(app: &TestApp, body: &str, signature: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("{}/paiement/notification", app.address))
        .header("content-type", "application/json")
        .header("signature", signature)
        .body(body.to_string())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn notification(operation: &str) -> String {
    json!({ "operation_id": operation }).to_string()
}

async fn count(app: &TestApp, event_type: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = $1")
        .bind(event_type)
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn two_invoices_paid_at_once_are_paid_only_once_the_provider_confirmed_it_to_the_server() {
    // The provider notifies a while after the payer is back on the site.
    let app = spawn_payments(true, Duration::from_millis(1500)).await;
    let (fixture, invoices) = two_invoices(&app).await;
    let ids: Vec<Uuid> = invoices.iter().map(|(id, _)| *id).collect();
    let opened = pay(&app, &fixture, &ids).await;
    assert_eq!(opened["amountCents"], 970);
    let url = opened["paymentUrl"].as_str().unwrap();
    assert!(
        url.starts_with(&format!("{}/fournisseur-paiement/payer/", app.address)),
        "{url}"
    );
    let page = browser().get(url).send().await.unwrap().text().await.unwrap();
    assert!(
        page.contains("9,70 €"),
        "the hosted page shows the amount: {page}"
    );
    assert_eq!(
        statuses(&app, &fixture).await,
        [("ISSUED".into(), true), ("ISSUED".into(), true)]
    );
    // A second payment of the same invoices meanwhile: refused.
    let again = app
        .gql(Some(&fixture.parent()), PAY, json!({ "ids": [ids[1]] }))
        .await;
    assert_eq!(again.error_code(), "PAYMENT_IN_PROGRESS");

    let back = decide_on_page(url, "payer").await;
    assert!(
        back.starts_with(&format!("{}/paiement/retour?operation=", app.address)),
        "{back}"
    );
    // Back on the site before the notification: nothing is paid yet.
    let returned = browser().get(&back).send().await.unwrap();
    assert_eq!(returned.headers()["refresh"], "3");
    let returned = returned.text().await.unwrap();
    assert!(returned.contains("en cours de vérification"), "{returned}");
    assert_eq!(
        payment(&app, &fixture, &opened["paymentId"]).await["status"],
        "PENDING"
    );
    assert_eq!(
        statuses(&app, &fixture).await,
        [("ISSUED".into(), true), ("ISSUED".into(), true)]
    );

    let decided = until_decided(&app, &fixture, &opened["paymentId"]).await;
    assert_eq!(decided["status"], "SUCCEEDED");
    let history = decided["history"].as_array().unwrap();
    assert_eq!(history.last().unwrap()["status"], "paid");
    assert_eq!(history.last().unwrap()["amountCents"], 970);
    assert_eq!(
        history.last().unwrap()["authorisation"].as_str().unwrap().len(),
        6
    );
    assert_eq!(decided["invoices"].as_array().unwrap().len(), 2);
    let mut paid = Vec::new();
    for _ in 0..50 {
        paid = statuses(&app, &fixture).await;
        if paid.iter().all(|(s, _)| s == "PAID") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(paid, [("PAID".into(), false), ("PAID".into(), false)]);
    assert_eq!(count(&app, "InvoicePaid").await, 2);
    let returned = browser().get(&back).send().await.unwrap().text().await.unwrap();
    assert!(
        returned.contains("Paiement reçu") && returned.contains("9,70 €"),
        "{returned}"
    );
    // Paid: not again.
    let twice = app.gql(Some(&fixture.parent()), PAY, json!({ "ids": ids })).await;
    assert_eq!(twice.error_code(), "INVOICE_NOT_PAYABLE");
}

#[tokio::test]
async fn forged_altered_and_replayed_notifications_pay_nothing() {
    let app = spawn_payments(false, Duration::ZERO).await;
    let (fixture, invoices) = two_invoices(&app).await;
    let opened = pay(&app, &fixture, &[invoices[0].0]).await;
    let url = opened["paymentUrl"].as_str().unwrap().to_string();
    let operation = operation_of(&url);
    let body = notification(&operation);
    // Forged: another key, no signature, a signature too old.
    assert_eq!(
        notify(&app, &body, &sign("une-autre-cle", Utc::now(), body.as_bytes())).await,
        401
    );
    assert_eq!(notify(&app, &body, "").await, 401);
    let old = Utc::now() - chrono::Duration::minutes(10);
    assert_eq!(
        notify(&app, &body, &sign(SECRET, old, body.as_bytes())).await,
        401
    );
    // Signed right, but the provider says nothing was paid: nothing is.
    assert_eq!(
        notify(&app, &body, &sign(SECRET, Utc::now(), body.as_bytes())).await,
        200
    );
    let pending = payment(&app, &fixture, &opened["paymentId"]).await;
    assert_eq!(pending["status"], "PENDING");
    assert_eq!(pending["history"][0]["status"], "pending");

    decide_on_page(&url, "payer").await;
    // Altered: a signature taken from one body, put on another.
    let signature = sign(SECRET, Utc::now(), body.as_bytes());
    let other = notification("op_autre");
    assert_eq!(notify(&app, &other, &signature).await, 401);
    assert_eq!(
        payment(&app, &fixture, &opened["paymentId"]).await["status"],
        "PENDING"
    );
    // The true one, then replayed three times: paid once.
    for _ in 0..4 {
        assert_eq!(notify(&app, &body, &signature).await, 200);
    }
    assert_eq!(
        payment(&app, &fixture, &opened["paymentId"]).await["status"],
        "SUCCEEDED"
    );
    assert_eq!(count(&app, "InvoicePaid").await, 1);
    assert_eq!(count(&app, "PaymentSucceeded").await, 1);
    // An operation nobody started.
    let unknown = notification("op_inconnue");
    assert_eq!(
        notify(&app, &unknown, &sign(SECRET, Utc::now(), unknown.as_bytes())).await,
        404
    );
}

#[tokio::test]
async fn a_lost_notification_is_caught_by_the_reconciliation() {
    let app = spawn_app_with(|s| {
        s.payment.secret = SECRET.into();
        s.payment.builtin.notify = false;
        s.payment.reconcile_after = Duration::from_secs(1);
        s.payment.reconcile_every = Duration::from_millis(200);
    })
    .await;
    let (fixture, invoices) = two_invoices(&app).await;
    let opened = pay(&app, &fixture, &[invoices[0].0, invoices[1].0]).await;
    decide_on_page(opened["paymentUrl"].as_str().unwrap(), "payer").await;
    // No notification, the payer never came back: the server asks.
    let decided = until_decided(&app, &fixture, &opened["paymentId"]).await;
    assert_eq!(decided["status"], "SUCCEEDED");
    assert_eq!(count(&app, "InvoicePaid").await, 2);
}

#[tokio::test]
async fn refused_abandoned_or_expired_payments_free_the_invoices_to_be_paid_again() {
    let app = spawn_app_with(|s| {
        s.payment.secret = SECRET.into();
        s.payment.builtin.lifetime = Duration::from_secs(1);
        s.payment.reconcile_after = Duration::from_millis(1500);
        s.payment.reconcile_every = Duration::from_millis(200);
    })
    .await;
    let (fixture, invoices) = two_invoices(&app).await;
    let ids = [invoices[0].0];
    for (action, status) in [("refuser", "REFUSED"), ("abandonner", "ABANDONED")] {
        let opened = pay(&app, &fixture, &ids).await;
        let back = decide_on_page(opened["paymentUrl"].as_str().unwrap(), action).await;
        let decided = until_decided(&app, &fixture, &opened["paymentId"]).await;
        assert_eq!(decided["status"], status);
        let page = browser().get(&back).send().await.unwrap().text().await.unwrap();
        assert!(
            page.contains("Rien n'a été débité") || page.contains("Rien n&#39;a été débité"),
            "{page}"
        );
    }
    // Left on the provider's page past its lifetime: expired, and the page
    // no longer pays.
    let opened = pay(&app, &fixture, &ids).await;
    let decided = until_decided(&app, &fixture, &opened["paymentId"]).await;
    assert_eq!(decided["status"], "EXPIRED");
    let late = browser()
        .post(opened["paymentUrl"].as_str().unwrap())
        .form(&[("action", "payer")])
        .send()
        .await
        .unwrap();
    assert_eq!(late.status(), 303);
    assert_eq!(count(&app, "InvoicePaid").await, 0);
    assert_eq!(statuses(&app, &fixture).await[0], ("ISSUED".into(), false));
    // Free again: paid this time.
    let opened = pay(&app, &fixture, &ids).await;
    decide_on_page(opened["paymentUrl"].as_str().unwrap(), "payer").await;
    assert_eq!(
        until_decided(&app, &fixture, &opened["paymentId"]).await["status"],
        "SUCCEEDED"
    );
}

#[tokio::test]
async fn an_amount_that_does_not_match_the_invoices_is_an_anomaly_that_pays_nothing() {
    let app = spawn_payments(true, Duration::ZERO).await;
    let (fixture, invoices) = two_invoices(&app).await;
    let opened = pay(&app, &fixture, &[invoices[0].0]).await;
    let operation = operation_of(opened["paymentUrl"].as_str().unwrap());
    // The provider charges another amount than it was asked.
    sqlx::query("UPDATE provider_operations SET amount_cents = 100 WHERE operation_id = $1")
        .bind(&operation)
        .execute(&app.pool)
        .await
        .unwrap();
    decide_on_page(opened["paymentUrl"].as_str().unwrap(), "payer").await;
    let decided = until_decided(&app, &fixture, &opened["paymentId"]).await;
    assert_eq!(decided["status"], "ANOMALY");
    assert_eq!(decided["history"][0]["amountCents"], 100);
    assert_eq!(count(&app, "InvoicePaid").await, 0);
    assert_eq!(count(&app, "PaymentAnomaly").await, 1);
}

#[tokio::test]
async fn a_parent_pays_only_its_familys_invoices_of_one_regie_from_the_communes_minimum() {
    let app = spawn_payments(false, Duration::ZERO).await;
    let (fixture, invoices) = two_invoices(&app).await;
    let (other, other_invoices) = two_invoices(&app).await;
    // Another family's invoice: as if it did not exist, alone or mixed in.
    for ids in [
        vec![other_invoices[0].0],
        vec![invoices[0].0, other_invoices[0].0],
    ] {
        let refused = app.gql(Some(&fixture.parent()), PAY, json!({ "ids": ids })).await;
        assert_eq!(refused.error_code(), "NOT_FOUND", "{ids:?}");
    }
    let unknown = app
        .gql(Some(&fixture.parent()), PAY, json!({ "ids": [Uuid::new_v4()] }))
        .await;
    assert_eq!(unknown.error_code(), "NOT_FOUND");
    // An agent does not pay for a family.
    let agent = app
        .gql(Some(&fixture.agent()), PAY, json!({ "ids": [invoices[0].0] }))
        .await;
    assert_eq!(agent.error_code(), "NOT_FOUND");
    for ids in [vec![], vec![invoices[0].0, invoices[0].0]] {
        let refused = app.gql(Some(&fixture.parent()), PAY, json!({ "ids": ids })).await;
        assert_eq!(refused.error_code(), "VALIDATION", "{ids:?}");
    }
    // The commune's minimum: 6 €, above one invoice, below both.
    let rules = "mutation($c: UUID!, $m: Int!) { setPaymentRules(collectivityId: $c, minimumOnlineCents: $m) { minimumOnlineCents } }";
    let set = app
        .gql(
            Some(&fixture.agent()),
            rules,
            json!({ "c": fixture.collectivity, "m": 600 }),
        )
        .await;
    assert_eq!(set.data("setPaymentRules")["minimumOnlineCents"], 600);
    let below = app
        .gql(Some(&fixture.parent()), PAY, json!({ "ids": [invoices[0].0] }))
        .await;
    assert_eq!(below.error_code(), "BELOW_MINIMUM");
    assert_eq!(below.0["errors"][0]["extensions"]["minimumCents"], 600);
    assert!(
        below.0["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("6,00 €"),
        "{}",
        below.0
    );
    let zero = app
        .gql(
            Some(&fixture.agent()),
            rules,
            json!({ "c": fixture.collectivity, "m": 0 }),
        )
        .await;
    assert_eq!(zero.error_code(), "VALIDATION");
    let other_agent = app
        .gql(
            Some(&other.agent()),
            rules,
            json!({ "c": fixture.collectivity, "m": 100 }),
        )
        .await;
    assert_eq!(other_agent.error_code(), "FORBIDDEN");
    // Nothing was started by any refusal.
    assert_eq!(count(&app, "PaymentStarted").await, 0);
    let both = pay(&app, &fixture, &[invoices[0].0, invoices[1].0]).await;
    assert_eq!(both["amountCents"], 970);
    // Read by its family only.
    let hidden = app
        .gql(
            Some(&other.parent()),
            "query($id: UUID!) { payment(id: $id) { status } }",
            json!({ "id": both["paymentId"] }),
        )
        .await;
    assert_eq!(hidden.error_code(), "NOT_FOUND");
}

#[tokio::test]
async fn in_a_browser_the_parent_pays_on_the_hosted_page_and_the_site_waits_for_the_verified_notification() {
    use espace_famille_tests::browser::{submit, text_now, text_of, Chromium};
    let app = spawn_payments(true, Duration::from_millis(2500)).await;
    let (fixture, invoices) = two_invoices(&app).await;
    let ids: Vec<Uuid> = invoices.iter().map(|(id, _)| *id).collect();
    let opened = pay(&app, &fixture, &ids).await;
    let browser = Chromium::launch().await;
    let page = browser.open(opened["paymentUrl"].as_str().unwrap()).await;
    let text = text_of(&page).await;
    assert!(text.contains("Paiement de 9,70 €"), "{text}");
    submit(&page, "#payer").await;
    // Back on the site, before the provider's notification: waiting.
    let text = text_of(&page).await;
    assert!(text.contains("Paiement en cours de vérification"), "{text}");
    assert_eq!(
        statuses(&app, &fixture).await,
        [("ISSUED".into(), true), ("ISSUED".into(), true)]
    );
    // The page looks again by itself, and says so once the server heard
    // from the provider.
    let mut text = String::new();
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        text = text_now(&page).await.unwrap_or_default();
        if text.contains("Paiement reçu") {
            break;
        }
    }
    assert!(
        text.contains("Paiement reçu") && text.contains("9,70 €"),
        "{text}"
    );
    assert_eq!(
        statuses(&app, &fixture).await,
        [("PAID".into(), false), ("PAID".into(), false)]
    );
    for url in browser.requested() {
        assert!(
            url.starts_with(&app.address) || url == "about:blank",
            "the browser went to {url}, outside the server"
        );
    }
    browser.close().await;
}

/// An invoice issued two months ago, due a month ago, as its events were
/// written then.
async fn seed_overdue_invoice(app: &TestApp, fixture: &Fixture, total_cents: i64) -> Uuid {
    use espace_famille_domain::collectivity::{Billed, Priced};
    use espace_famille_domain::invoice::{
        Invoice, InvoiceEvent, InvoiceKind, InvoiceLine, Issued, LineReason,
    };
    use espace_famille_projections::store::{self, Metadata, StreamAppend};
    let today = Utc::now().date_naive();
    let id = Uuid::new_v4();
    let issued = Issued {
        collectivity_id: fixture.collectivity,
        family_id: fixture.family,
        number: "2026-000900".into(),
        kind: InvoiceKind::Monthly {
            month: (today - chrono::Duration::days(75)).format("%Y-%m").to_string(),
        },
        lines: vec![InvoiceLine {
            child_id: fixture.child,
            unit_id: fixture.meal,
            date: today - chrono::Duration::days(75),
            reservation_id: Uuid::new_v4(),
            reason: LineReason::Billed(Billed::Booked),
            priced: Priced {
                tariff_id: Uuid::new_v4(),
                billed: Billed::Booked,
                bracket: 0,
                bracket_from: 0,
                bracket_up_to: None,
                quotient: None,
                unit_price_cents: total_cents,
                rank: 1,
                reduction_percent: 0,
                share_percent: 100,
                penalty_cents: 0,
                amount_cents: total_cents,
            },
            amount_cents: total_cents,
        }],
        total_cents,
        issued_on: today - chrono::Duration::days(60),
        payable_online_until: today + chrono::Duration::days(10),
        due_on: today - chrono::Duration::days(30),
    };
    let append =
        StreamAppend::new::<Invoice>(id.to_string(), 0, &[InvoiceEvent::InvoiceIssued { issued }]).unwrap();
    let metadata = Metadata {
        actor_id: "seed".into(),
        actor_role: "agent".into(),
        correlation_id: id,
        causation_id: id,
        command_id: id,
        requested_at: Utc::now(),
    };
    let mut conn = app.pool.acquire().await.unwrap();
    store::append(&mut conn, &[append], &metadata).await.unwrap();
    id
}

#[tokio::test]
async fn a_family_owing_past_due_above_the_communes_limit_books_again_once_it_paid() {
    let app = spawn_payments(true, Duration::ZERO).await;
    let days = future_canteen_days(1);
    let fixture = setup_commune(&app, &days).await;
    let overdue = seed_overdue_invoice(&app, &fixture, 12_050).await;
    let rules = "mutation($c: UUID!, $d: Int) { setPaymentRules(collectivityId: $c, minimumOnlineCents: 100, debtLimitCents: $d) { debtLimitCents } }";
    let set = app
        .gql(
            Some(&fixture.agent()),
            rules,
            json!({ "c": fixture.collectivity, "d": 10_000 }),
        )
        .await;
    assert_eq!(set.data("setPaymentRules")["debtLimitCents"], 10_000);
    // Once the invoices read model has it.
    for _ in 0..50 {
        if !statuses(&app, &fixture).await.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let refused = app.book(&fixture, &days).await.data("submitBasket").clone();
    let refusal = &refused["lines"][0]["refusal"];
    assert_eq!(refusal["code"], "DEBT_LIMIT", "{refused}");
    let message = refusal["message"].as_str().unwrap();
    assert!(
        message.contains("120,50 €") && message.contains("100,00 €"),
        "{message}"
    );
    // The slot says so too, with the amount.
    let slot = app
        .gql(
            Some(&fixture.parent()),
            "query($child: UUID!, $unit: UUID!, $d: NaiveDate!) {
               calendar(childId: $child, unitId: $unit, from: $d, to: $d) { canBook bookRefusal { code owedCents message } } }",
            json!({ "child": fixture.child, "unit": fixture.meal, "d": days[0] }),
        )
        .await;
    let slot = &slot.data("calendar")[0];
    assert_eq!(slot["canBook"], false);
    assert_eq!(slot["bookRefusal"]["code"], "DEBT_LIMIT");
    assert_eq!(slot["bookRefusal"]["owedCents"], 12_050);
    // Paid: booking opens again.
    let opened = pay(&app, &fixture, &[overdue]).await;
    decide_on_page(opened["paymentUrl"].as_str().unwrap(), "payer").await;
    until_decided(&app, &fixture, &opened["paymentId"]).await;
    let booked = app.book(&fixture, &days).await.data("submitBasket").clone();
    assert_eq!(booked["status"], "ACCEPTED", "{booked}");
}

/// The text of a PDF, as poppler's `pdftotext` reads it.
fn pdf_text(bytes: &[u8]) -> String {
    let path = std::env::temp_dir().join(format!("espace-famille-{}.pdf", Uuid::new_v4().simple()));
    std::fs::write(&path, bytes).unwrap();
    let out = std::process::Command::new("pdftotext")
        .args(["-layout", path.to_str().unwrap(), "-"])
        .output()
        .expect("pdftotext (Debian's poppler-utils) runs");
    let _ = std::fs::remove_file(&path);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

async fn document(app: &TestApp, token: Option<&str>, path: &str) -> (u16, Vec<u8>) {
    let mut request = reqwest::Client::new().get(format!("{}{path}", app.address));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let answer = request.send().await.unwrap();
    let status = answer.status().as_u16();
    if status == 200 {
        assert_eq!(answer.headers()["content-type"], "application/pdf");
    }
    (status, answer.bytes().await.unwrap().to_vec())
}

#[tokio::test]
async fn an_invoice_and_a_payments_receipt_read_back_from_their_pdfs() {
    let app = spawn_payments(true, Duration::ZERO).await;
    let (fixture, invoices) = two_invoices(&app).await;
    let read = app
        .gql(
            Some(&fixture.parent()),
            "query($id: UUID!) { invoice(id: $id) { number pdfUrl totalCents lines { date } } }",
            json!({ "id": invoices[0].0 }),
        )
        .await;
    let read = read.data("invoice").clone();
    let url = read["pdfUrl"].as_str().unwrap();
    let (status, pdf) = document(&app, Some(&fixture.parent()), url).await;
    assert_eq!(status, 200);
    let text = pdf_text(&pdf);
    assert!(
        text.contains(&format!("Facture n° {}", read["number"].as_str().unwrap())),
        "{text}"
    );
    assert!(
        text.contains("réservé") && text.contains("Repas"),
        "the line explains itself: {text}"
    );
    assert!(text.contains("tarif unique"), "{text}");
    assert!(text.contains("Total") && text.contains("4,85 €"), "{text}");
    assert!(text.contains("À payer : 4,85 €"), "{text}");
    // Nobody else reads it.
    let (other, _) = two_invoices(&app).await;
    assert_eq!(document(&app, Some(&other.parent()), url).await.0, 404);
    assert_eq!(document(&app, Some(&other.agent()), url).await.0, 404);
    assert_eq!(document(&app, None, url).await.0, 401);
    assert_eq!(document(&app, Some(&fixture.agent()), url).await.0, 200);

    let ids: Vec<Uuid> = invoices.iter().map(|(id, _)| *id).collect();
    let opened = pay(&app, &fixture, &ids).await;
    let receipt = format!(
        "/documents/paiements/{}.pdf",
        opened["paymentId"].as_str().unwrap()
    );
    assert_eq!(
        document(&app, Some(&fixture.parent()), &receipt).await.0,
        404,
        "not paid yet"
    );
    decide_on_page(opened["paymentUrl"].as_str().unwrap(), "payer").await;
    let decided = until_decided(&app, &fixture, &opened["paymentId"]).await;
    let authorisation = decided["history"].as_array().unwrap().last().unwrap()["authorisation"]
        .as_str()
        .unwrap()
        .to_string();
    let (status, pdf) = document(&app, Some(&fixture.parent()), &receipt).await;
    assert_eq!(status, 200);
    let text = pdf_text(&pdf);
    assert!(text.contains("Reçu de paiement en ligne"), "{text}");
    assert!(text.contains(&authorisation), "{text}");
    assert!(text.contains("Total payé") && text.contains("9,70 €"), "{text}");
    for (id, _) in &invoices {
        let number = app
            .gql(
                Some(&fixture.parent()),
                "query($id: UUID!) { invoice(id: $id) { number } }",
                json!({ "id": id }),
            )
            .await
            .data("invoice")["number"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(text.contains(&number), "{text}");
    }
    let (_, paid) = document(&app, Some(&fixture.parent()), url).await;
    assert!(pdf_text(&paid).contains("Payée."));
}
