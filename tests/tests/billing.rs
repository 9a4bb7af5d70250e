//! Monthly billing: a régie's month billed from the bookings and the roll
//! call, an invoice per family whose lines explain themselves; billed
//! again, nothing new; from two servers at once, or interrupted and run
//! again, every invoice once and numbers without gap or duplicate.

use std::sync::Arc;
use std::time::Duration;

use chrono::NaiveDate;
use espace_famille_api::commands::Commands;
use espace_famille_api::services::billing;
use espace_famille_domain::invoice::monthly_invoice_id;
use espace_famille_projections::store::Metadata;
use espace_famille_tests::*;
use serde_json::json;
use uuid::Uuid;

const BRACKETS: &str = "mutation($input: SetTariffInput!) { setTariff(input: $input) { id } }";

async fn tariff(app: &TestApp, fixture: &Fixture, from: NaiveDate) {
    app.gql(
        Some(&fixture.agent()),
        BRACKETS,
        json!({ "input": {
            "collectivityId": fixture.collectivity, "unitId": fixture.meal, "validFrom": from,
            "brackets": [{ "upTo": 700, "priceCents": 215 }, { "upTo": null, "priceCents": 485 }],
            "unjustifiedAbsencePercent": 50, "unexpectedPresencePenaltyCents": 200
        } }),
    )
    .await
    .data("setTariff");
}

fn metadata() -> Metadata {
    let id = Uuid::new_v4();
    Metadata {
        actor_id: "test".into(),
        actor_role: "agent".into(),
        correlation_id: id,
        causation_id: id,
        command_id: id,
        requested_at: chrono::Utc::now(),
    }
}

#[tokio::test]
async fn a_month_is_billed_from_bookings_and_roll_call_once_with_lines_that_explain_themselves() {
    let app = spawn_app().await;
    let days = last_month_days(3);
    assert_eq!(days.len(), 3, "three canteen days last month");
    let fixture = setup_commune(&app, &days).await;
    tariff(&app, &fixture, days[0]).await;
    // The family's QF: 550 €, the second bracket.
    app.gql(
        Some(&fixture.agent()),
        "mutation($f: UUID!, $c: UUID!, $d: NaiveDate!) {
           setQuotientFamilial(input: { familyId: $f, collectivityId: $c, quotient: 550, validFrom: $d }) { id }
         }",
        json!({ "f": fixture.family, "c": fixture.collectivity, "d": days[0] }),
    )
    .await
    .data("setQuotientFamilial");
    // Booked on the first two days (seeded: their deadlines passed).
    seed_confirmed(&app, &fixture, &days[..2]).await;
    until_in_calendar(&app, fixture.meal, 2).await;
    // There the first day, absent the second (no absence reported), and
    // there without a booking the third.
    for (day, present) in [(days[0], true), (days[1], false), (days[2], true)] {
        roll_call(&app, &fixture, day, present).await;
    }
    let month = days[0].format("%Y-%m").to_string();
    let bill = "mutation($c: UUID!, $m: String!) { billMonth(collectivityId: $c, month: $m) { families issued already totalCents } }";
    let billed = app
        .gql(
            Some(&fixture.agent()),
            bill,
            json!({ "c": fixture.collectivity, "m": month }),
        )
        .await;
    // 215 booked and there, 215 × 50 % absent, 215 + 200 unexpected.
    assert_eq!(
        billed.data("billMonth"),
        &json!({ "families": 1, "issued": 1, "already": 0, "totalCents": 215 + 108 + 415 })
    );
    let again = app
        .gql(
            Some(&fixture.agent()),
            bill,
            json!({ "c": fixture.collectivity, "m": month }),
        )
        .await;
    assert_eq!(again.data("billMonth")["issued"], 0, "billed twice: nothing new");
    assert_eq!(again.data("billMonth")["already"], 1);

    // The family reads its invoice, every line explained.
    let id = monthly_invoice_id(fixture.collectivity, fixture.family, &month);
    let invoice = app
        .gql(
            Some(&fixture.parent()),
            "query($id: UUID!) { invoice(id: $id) { number month status totalCents
               lines { date reason quotient bracket bracketFrom bracketUpTo unitPriceCents sharePercent penaltyCents amountCents } } }",
            json!({ "id": id }),
        )
        .await;
    let invoice = invoice.data("invoice");
    assert_eq!(invoice["status"], "ISSUED");
    assert!(
        invoice["number"].as_str().unwrap().ends_with("-000001"),
        "{invoice}"
    );
    let lines = invoice["lines"].as_array().unwrap();
    let reasons: Vec<&str> = lines.iter().map(|l| l["reason"].as_str().unwrap()).collect();
    assert_eq!(reasons, ["BOOKED", "UNJUSTIFIED_ABSENCE", "UNEXPECTED_PRESENCE"]);
    assert_eq!(lines[0]["quotient"], 550);
    assert_eq!(
        (lines[0]["bracketFrom"].clone(), lines[0]["bracketUpTo"].clone()),
        (json!(0), json!(700))
    );
    assert_eq!(lines[1]["sharePercent"], 50);
    assert_eq!(lines[2]["penaltyCents"], 200);
    let sum: i64 = lines.iter().map(|l| l["amountCents"].as_i64().unwrap()).sum();
    assert_eq!(
        sum,
        invoice["totalCents"].as_i64().unwrap(),
        "the lines add up to the cent"
    );
    // "Factures à payer" for the family, the month for the régie.
    let pending = app
        .gql(
            Some(&fixture.parent()),
            "query($f: UUID!) { familyInvoices(familyId: $f, pendingOnly: true) { id number status totalCents dueOn } }",
            json!({ "f": fixture.family }),
        )
        .await;
    let pending = pending.data("familyInvoices").as_array().unwrap().clone();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0]["id"], json!(id));
    assert_eq!(pending[0]["totalCents"], 738);
    let regie = "query($c: UUID!, $m: String!) { regieMonth(collectivityId: $c, month: $m) {
                   invoices { number familyId } totalCents unpaidCents unpaidAllMonthsCents } }";
    let month_view = app
        .gql(
            Some(&fixture.agent()),
            regie,
            json!({ "c": fixture.collectivity, "m": month }),
        )
        .await;
    let month_view = month_view.data("regieMonth");
    assert_eq!(month_view["invoices"].as_array().unwrap().len(), 1);
    assert_eq!(
        (
            month_view["totalCents"].clone(),
            month_view["unpaidCents"].clone()
        ),
        (json!(738), json!(738))
    );
    assert_eq!(month_view["unpaidAllMonthsCents"], 738);
    // The month for the accounting software: a header and a row per line.
    let csv = app
        .gql(
            Some(&fixture.agent()),
            "query($c: UUID!, $m: String!) { regieMonthCsv(collectivityId: $c, month: $m) }",
            json!({ "c": fixture.collectivity, "m": month }),
        )
        .await;
    let csv = csv.data("regieMonthCsv").as_str().unwrap().to_string();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 4, "{csv}");
    assert!(
        rows[0].starts_with("numero_facture;statut;famille;reference_famille;"),
        "{csv}"
    );
    assert!(rows[1].ends_with(";reserve;550;0-700;215;1;0;100;0;215"), "{csv}");
    assert!(
        rows[2].contains(";absence_non_justifiee;") && rows[2].ends_with(";108"),
        "{csv}"
    );
    assert!(rows[3].ends_with(";200;415"), "{csv}");
    assert!(
        rows[1].contains(";F-0001;"),
        "the commune's reference of the family: {csv}"
    );
    let parent_reads_regie = app
        .gql(
            Some(&fixture.parent()),
            regie,
            json!({ "c": fixture.collectivity, "m": month }),
        )
        .await;
    assert_eq!(parent_reads_regie.error_code(), "FORBIDDEN");
    // Another commune's agent, or family: as if it did not exist.
    let other = setup_commune(&app, &days).await;
    let hidden = app
        .gql(
            Some(&other.parent()),
            "query($id: UUID!) { invoice(id: $id) { number } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(hidden.error_code(), "NOT_FOUND");
    let stranger = app
        .gql(
            Some(&other.agent()),
            bill,
            json!({ "c": fixture.collectivity, "m": month }),
        )
        .await;
    assert_eq!(stranger.error_code(), "FORBIDDEN");
    let other_regie = app
        .gql(
            Some(&other.agent()),
            regie,
            json!({ "c": fixture.collectivity, "m": month }),
        )
        .await;
    assert_eq!(other_regie.error_code(), "FORBIDDEN");
    let other_family = app
        .gql(
            Some(&other.parent()),
            "query($f: UUID!) { familyInvoices(familyId: $f) { id } }",
            json!({ "f": fixture.family }),
        )
        .await;
    assert_eq!(other_family.error_code(), "NOT_FOUND");
}

#[tokio::test]
async fn a_day_without_a_tariff_stops_the_run_before_anything_is_issued() {
    let app = spawn_app().await;
    let days = last_month_days(1);
    let fixture = setup_commune(&app, &days).await;
    seed_confirmed(&app, &fixture, &[days[0]]).await;
    until_in_calendar(&app, fixture.meal, 1).await;
    let refused = app
        .gql(
            Some(&fixture.agent()),
            "mutation($c: UUID!, $m: String!) { billMonth(collectivityId: $c, month: $m) { issued } }",
            json!({ "c": fixture.collectivity, "m": days[0].format("%Y-%m").to_string() }),
        )
        .await;
    assert_eq!(refused.error_code(), "VALIDATION");
    assert!(refused.0["errors"][0]["message"]
        .as_str()
        .unwrap()
        .starts_with("aucun tarif pour Repas"));
    assert_eq!(
        app.events_in(
            "Invoice",
            &monthly_invoice_id(
                fixture.collectivity,
                fixture.family,
                &days[0].format("%Y-%m").to_string()
            )
            .to_string()
        )
        .await,
        0
    );
}

/// `families` families, each with one day booked, seeded.
async fn many_families(app: &TestApp, fixture: &Fixture, day: NaiveDate, families: usize) -> Vec<Uuid> {
    let mut ids: Vec<Uuid> = (0..families).map(|_| Uuid::new_v4()).collect();
    ids.sort_unstable();
    let streams: Vec<_> = ids
        .iter()
        .map(|&family| confirmed(slot_of(fixture, Uuid::new_v4(), family, day)))
        .collect();
    seed_reservations(app, &streams).await;
    until_in_calendar(app, fixture.meal, families as i64).await;
    ids
}

/// Every invoice number given in the régie's stream, and each invoice's.
async fn numbers(app: &TestApp) -> (Vec<i64>, i64) {
    let given: Vec<i64> = sqlx::query_scalar(
        "SELECT (payload -> 'NumberGiven' ->> 'number')::bigint FROM events
         WHERE aggregate_type = 'InvoiceNumbers' ORDER BY 1",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    let invoices: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'InvoiceIssued'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    (given, invoices)
}

#[tokio::test]
async fn two_servers_billing_at_once_or_a_run_cut_short_give_every_invoice_once_numbered_without_gaps() {
    let first = spawn_app().await;
    let second = spawn_beside(&first).await;
    let days = last_month_days(1);
    let fixture = setup_commune(&first, &days).await;
    tariff(&first, &fixture, days[0]).await;
    let families = many_families(&first, &fixture, days[0], 12).await;
    let month = days[0].format("%Y-%m").to_string();
    let servers = [
        Commands::new(first.pool.clone(), Duration::from_secs(5)),
        Commands::new(second.pool.clone(), Duration::from_secs(5)),
    ];

    // A run cut short after its first invoices...
    let cut = {
        let (commands, month) = (servers[0].clone(), month.clone());
        let collectivity = fixture.collectivity;
        tokio::spawn(
            async move { billing::bill_month(&commands, collectivity, &month, 1, &metadata()).await },
        )
    };
    for _ in 0..200 {
        if numbers(&first).await.1 >= 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    cut.abort();
    let _ = cut.await;
    let (after_cut, _) = numbers(&first).await;
    assert!(
        !after_cut.is_empty() && after_cut.len() < 12,
        "cut after {} invoices",
        after_cut.len()
    );
    // ...then two servers billing the month at once, one invoice a
    // transaction.
    let runs = servers.iter().map(|commands: &Arc<Commands>| {
        let month = month.clone();
        async move { billing::bill_month(commands, fixture.collectivity, &month, 1, &metadata()).await }
    });
    let results = futures::future::join_all(runs).await;
    let issued: usize = results.iter().map(|r| r.as_ref().unwrap().issued).sum();
    assert_eq!(issued + after_cut.len(), 12, "{results:?}");
    let (given, invoices) = numbers(&first).await;
    assert_eq!(invoices, 12, "every invoice once");
    assert_eq!(given, (1..=12).collect::<Vec<i64>>(), "no gap, no duplicate");
    // The numbers follow the families' order, as one clean run gives them.
    for (rank, family) in families.iter().enumerate() {
        let id = monthly_invoice_id(fixture.collectivity, *family, &month);
        let number: String = sqlx::query_scalar(
            "SELECT payload -> 'InvoiceIssued' -> 'issued' ->> 'number' FROM events
             WHERE aggregate_type = 'Invoice' AND aggregate_id = $1",
        )
        .bind(id.to_string())
        .fetch_one(&first.pool)
        .await
        .unwrap();
        assert!(
            number.ends_with(&format!("{:06}", rank + 1)),
            "{number} for family {rank}"
        );
    }
    second.stop().await;
}
