//! The auditor's reads of the store: any aggregate's history, paged, for
//! whoever may read the aggregate; states as of an instant (a reservation,
//! a commune's rules, a family across its erasure).

use std::time::Duration;

use chrono::Utc;
use espace_famille_tests::*;
use serde_json::{json, Value};

const HISTORY: &str = "query($k: AggregateKind!, $id: UUID!, $after: Int, $first: Int) {
  history(aggregate: $k, id: $id, after: $after, first: $first) {
    nextAfter events { sequence eventType eventVersion recordedAt actorRole correlationId payload }
  }
}";

async fn history(app: &TestApp, token: &str, kind: &str, id: &Value, after: i64, first: i64) -> Response {
    app.gql(
        Some(token),
        HISTORY,
        json!({ "k": kind, "id": id, "after": after, "first": first }),
    )
    .await
}

/// An instant between two writes, away from both.
async fn between() -> chrono::DateTime<Utc> {
    tokio::time::sleep(Duration::from_millis(100)).await;
    let at = Utc::now();
    tokio::time::sleep(Duration::from_millis(100)).await;
    at
}

#[tokio::test]
async fn a_reservations_history_is_paged_and_its_state_read_as_of_an_instant() {
    let app = spawn_app().await;
    let days = future_canteen_days(1);
    let fixture = setup_commune(&app, &days).await;
    let booked = app.book(&fixture, &days).await;
    let id = booked.data("submitBasket")["lines"][0]["reservationId"].clone();
    let before_cancelling = between().await;
    app.request_cancellation(&fixture, &id)
        .await
        .data("requestCancellation");

    // Page by page, oldest first.
    let first = history(&app, &fixture.parent(), "RESERVATION", &id, 0, 2).await;
    let first = first.data("history");
    let types: Vec<&str> = first["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["eventType"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["ReservationRequested", "ReservationConfirmed"]);
    assert_eq!(first["events"][0]["actorRole"], "parent");
    assert_eq!(first["events"][0]["eventVersion"], "2");
    assert!(first["events"][0]["correlationId"].is_string());
    assert_eq!(first["nextAfter"], 2);
    let rest = history(&app, &fixture.agent(), "RESERVATION", &id, 2, 2).await;
    let rest = rest.data("history");
    assert_eq!(rest["events"][0]["eventType"], "CancellationRequested");
    assert_eq!(rest["nextAfter"], Value::Null);
    // Another family, another commune: nothing to read.
    let other = setup_commune(&app, &days).await;
    for token in [other.parent(), other.agent()] {
        assert_eq!(
            history(&app, &token, "RESERVATION", &id, 0, 10)
                .await
                .error_code(),
            "NOT_FOUND"
        );
    }
    assert_eq!(
        history(&app, &fixture.parent(), "RESERVATION", &id, 0, 501)
            .await
            .error_code(),
        "VALIDATION"
    );

    // As it was before the cancellation was asked.
    let read = "query($id: UUID!, $at: DateTime) { reservation(id: $id, asOf: $at) { status history { eventType } } }";
    let then = app
        .gql(
            Some(&fixture.parent()),
            read,
            json!({ "id": id, "at": before_cancelling }),
        )
        .await;
    assert_eq!(then.data("reservation")["status"], "CONFIRMED");
    assert_eq!(then.data("reservation")["history"].as_array().unwrap().len(), 2);
    let now = app
        .gql(Some(&fixture.parent()), read, json!({ "id": id, "at": null }))
        .await;
    assert_eq!(now.data("reservation")["status"], "CANCELLATION_REQUESTED");
    // Before it existed: nothing.
    let never = app
        .gql(
            Some(&fixture.parent()),
            read,
            json!({ "id": id, "at": Utc::now() - chrono::Duration::days(365) }),
        )
        .await;
    assert_eq!(never.error_code(), "NOT_FOUND");
}

#[tokio::test]
async fn a_communes_rules_read_as_they_were_in_force_and_its_history_for_its_staff_only() {
    let app = spawn_app().await;
    let days = future_canteen_days(1);
    let fixture = setup_commune(&app, &days).await;
    let before = between().await;
    app.gql(
        Some(&fixture.agent()),
        "mutation($c: UUID!) { setPaymentRules(collectivityId: $c, minimumOnlineCents: 500) { id } }",
        json!({ "c": fixture.collectivity }),
    )
    .await
    .data("setPaymentRules");
    let read = "query($c: UUID!, $at: DateTime) { collectivity(id: $c, asOf: $at) { minimumOnlineCents units { name } } }";
    let then = app
        .gql(None, read, json!({ "c": fixture.collectivity, "at": before }))
        .await;
    assert_eq!(then.data("collectivity")["minimumOnlineCents"], 100);
    assert_eq!(then.data("collectivity")["units"][0]["name"], "Repas");
    let now = app
        .gql(None, read, json!({ "c": fixture.collectivity, "at": null }))
        .await;
    assert_eq!(now.data("collectivity")["minimumOnlineCents"], 500);

    let id = json!(fixture.collectivity);
    let page = history(&app, &fixture.agent(), "COLLECTIVITY", &id, 0, 500).await;
    let events = page.data("history")["events"].as_array().unwrap().clone();
    assert_eq!(events[0]["eventType"], "CollectivityCreated");
    assert_eq!(events.last().unwrap()["eventType"], "PaymentRulesSet");
    let auditor = auditor_of(&app, fixture.collectivity).await;
    assert!(history(&app, &auditor, "COLLECTIVITY", &id, 0, 10).await.0["errors"].is_null());
    for token in [fixture.parent(), setup_commune(&app, &days).await.agent()] {
        assert_eq!(
            history(&app, &token, "COLLECTIVITY", &id, 0, 10)
                .await
                .error_code(),
            "NOT_FOUND"
        );
    }
}

#[tokio::test]
async fn a_family_read_as_of_before_its_erasure_shows_its_personal_values_as_erased() {
    let app = spawn_app().await;
    let days = future_canteen_days(1);
    let fixture = setup_commune(&app, &days).await;
    let id = json!(fixture.family);
    let page = history(&app, &fixture.parent(), "FAMILY", &id, 0, 100).await;
    let registered = page.data("history")["events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["eventType"] == "ChildRegistered")
        .cloned()
        .expect("the child's registration");
    let before = between().await;
    let read =
        "query($f: UUID!, $at: DateTime) { family(id: $f, asOf: $at) { erased children { firstName } } }";
    let then = app
        .gql(
            Some(&fixture.agent()),
            read,
            json!({ "f": fixture.family, "at": before }),
        )
        .await;
    let name = then.data("family")["children"][0]["firstName"].clone();
    assert!(name.is_string(), "{then:?}");
    assert!(
        registered["payload"].to_string().contains(name.as_str().unwrap()),
        "the history reads the personal values: {registered}"
    );

    app.gql(
        Some(&fixture.agent()),
        "mutation($f: UUID!) { eraseFamily(familyId: $f) }",
        json!({ "f": fixture.family }),
    )
    .await
    .data("eraseFamily");
    // The same instant, read again: the names are gone from it too.
    let then = app
        .gql(
            Some(&fixture.agent()),
            read,
            json!({ "f": fixture.family, "at": before }),
        )
        .await;
    let family = then.data("family");
    assert_eq!(family["erased"], false, "not erased yet at that instant");
    assert!(family["children"][0]["firstName"].is_null(), "{family}");
    let page = history(&app, &fixture.agent(), "FAMILY", &id, 0, 100).await;
    let events = page.data("history")["events"].as_array().unwrap().clone();
    assert_eq!(events.last().unwrap()["eventType"], "FamilyErased");
    assert!(
        !events
            .iter()
            .any(|e| e["payload"].to_string().contains(name.as_str().unwrap())),
        "the erased name is in no event"
    );
}

#[tokio::test]
async fn an_agent_reads_a_shared_familys_history_without_another_communes_events() {
    let app = spawn_app().await;
    let days = future_canteen_days(1);
    let a = setup_commune(&app, &days).await;
    let b = setup_commune(&app, &days).await;
    let code = app
        .gql(
            Some(&a.parent()),
            "mutation($f: UUID!) { createFamilyJoinCode(familyId: $f) { code } }",
            json!({ "f": a.family }),
        )
        .await
        .data("createFamilyJoinCode")["code"]
        .as_str()
        .unwrap()
        .to_string();
    app.gql(
        Some(&b.agent()),
        "mutation($c: UUID!, $code: String!) { joinFamily(input: { collectivityId: $c, code: $code, familyRef: \"B-1\" }) { id } }",
        json!({ "c": b.collectivity, "code": code }),
    )
    .await
    .data("joinFamily");
    let id = json!(a.family);
    let names = |page: &Response| -> Vec<String> {
        page.data("history")["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["payload"].to_string())
            .collect()
    };
    let whole = names(&history(&app, &a.parent(), "FAMILY", &id, 0, 500).await);
    let seen_by_b = names(&history(&app, &b.agent(), "FAMILY", &id, 0, 500).await);
    let a_commune = a.collectivity.to_string();
    assert!(
        whole.iter().any(|p| p.contains(&a_commune)),
        "the guardian reads every event"
    );
    assert!(
        !seen_by_b
            .iter()
            .any(|p| p.contains(&a_commune) && !p.contains(&b.collectivity.to_string())),
        "B's agent reads none of A's own events: {seen_by_b:?}"
    );
    assert!(seen_by_b.iter().any(|p| p.contains(&b.collectivity.to_string())));
    assert!(seen_by_b.len() < whole.len());

    // B's auditor's feed holds the family's events that name B or no
    // commune, none of those naming only A.
    espace_famille_projections::testing::wait_below_horizon(&app.pool).await;
    let b_auditor = auditor_of(&app, b.collectivity).await;
    let family_events: Vec<String> = feed(
        &app,
        &b_auditor,
        b.collectivity,
        500,
        json!({ "types": ["Family"] }),
    )
    .await
    .iter()
    .filter(|e| e["aggregateId"] == json!(a.family))
    .map(|e| e["event"]["payload"].to_string())
    .collect();
    assert!(family_events
        .iter()
        .any(|p| p.contains(&b.collectivity.to_string())));
    assert!(
        !family_events.iter().any(|p| p.contains(&a_commune)),
        "A's own events in B's feed: {family_events:?}"
    );
}

/// A copy of `app`'s store, made once the server has stopped: its URL.
async fn copy_of(url: &str) -> String {
    use sqlx::{ConnectOptions, Connection};
    let options: sqlx::postgres::PgConnectOptions = url.parse().unwrap();
    let original = options.get_database().unwrap().to_string();
    let copy = format!("copy_{}", uuid::Uuid::new_v4().simple());
    let mut admin = sqlx::PgConnection::connect_with(&options.clone().database("postgres"))
        .await
        .unwrap();
    sqlx::query(&format!("CREATE DATABASE {copy} TEMPLATE {original}"))
        .execute(&mut admin)
        .await
        .unwrap();
    options.database(&copy).to_url_lossy().to_string()
}

#[tokio::test]
async fn the_command_line_seals_exports_the_seals_and_verifies_a_copy_of_the_store_tampered_with() {
    use espace_famille_api::app::Settings;
    use espace_famille_api::cli::audit;
    use std::process::ExitCode;

    let app = spawn_app().await;
    let days = future_canteen_days(2);
    let fixture = setup_commune(&app, &days).await;
    app.book(&fixture, &days).await.data("submitBasket");
    let url = app.database_url.clone();
    app.stop().await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    espace_famille_projections::testing::wait_below_horizon(&pool).await;
    let settings = Settings::new(&url);
    assert_eq!(audit::seal(&settings).await.unwrap(), ExitCode::SUCCESS);
    let sealed = espace_famille_projections::store::integrity::seals(&pool, 0)
        .await
        .unwrap();
    assert_eq!(sealed.len(), 1);
    // The copy kept elsewhere, as `audit seals` prints it.
    let kept = std::env::temp_dir().join(format!("seals-{}.jsonl", uuid::Uuid::new_v4().simple()));
    let lines: Vec<String> = sealed.iter().map(|s| serde_json::to_string(s).unwrap()).collect();
    std::fs::write(&kept, lines.join("\n")).unwrap();
    let kept_seals = audit::read_seals(&kept).unwrap();
    assert_eq!(kept_seals, sealed);
    assert_eq!(
        audit::verify(&settings, &kept_seals).await.unwrap(),
        ExitCode::SUCCESS
    );
    pool.close().await;

    // A booking's date moved by hand in a copy: the copy fails, the
    // original still verifies.
    let copy = copy_of(&url).await;
    let tampered = sqlx::PgPool::connect(&copy).await.unwrap();
    sqlx::raw_sql(
        "SET session_replication_role = replica;
         UPDATE events SET payload = replace(payload::text, '\"date\":\"', '\"date\":\"1')::json
         WHERE global_position = (SELECT min(global_position) FROM events WHERE event_type = 'ReservationRequested')",
    )
    .execute(&tampered)
    .await
    .unwrap();
    let edited = espace_famille_projections::store::integrity::verify(&tampered, &kept_seals, |_| {})
        .await
        .unwrap();
    assert_eq!(edited.findings.len(), 1, "{:#?}", edited.findings);
    assert!(edited.findings[0]
        .stream
        .as_deref()
        .unwrap()
        .starts_with("Reservation/"));
    assert_eq!(
        audit::verify(&Settings::new(&copy), &kept_seals).await.unwrap(),
        ExitCode::from(1)
    );
    assert_eq!(
        audit::verify(&settings, &kept_seals).await.unwrap(),
        ExitCode::SUCCESS
    );
    let _ = std::fs::remove_file(&kept);
}

const FEED: &str = "query($c: UUID!, $after: String, $first: Int!, $types: [String!], $events: [String!],
                          $from: DateTime, $to: DateTime) {
  auditFeed(collectivityId: $c, after: $after, first: $first, aggregateTypes: $types, eventTypes: $events,
            from: $from, to: $to) {
    events { aggregateType aggregateId position event { eventType payload } }
    nextAfter
  }
}";

/// Every page of a commune's feed, as `token` reads it.
async fn feed(app: &TestApp, token: &str, commune: uuid::Uuid, first: i64, filter: Value) -> Vec<Value> {
    let mut variables = json!({ "c": commune, "first": first });
    variables
        .as_object_mut()
        .unwrap()
        .extend(filter.as_object().unwrap().clone());
    app.every_page(token, FEED, "auditFeed", variables).await
}

#[tokio::test]
async fn a_communes_auditor_pages_through_its_events_only_filtered_and_exports_them() {
    let app = spawn_app().await;
    let days = future_canteen_days(2);
    let ours = setup_commune(&app, &days).await;
    let theirs = setup_commune(&app, &days).await;
    app.book(&ours, &days).await.data("submitBasket");
    app.book(&theirs, &days).await.data("submitBasket");
    espace_famille_projections::testing::wait_below_horizon(&app.pool).await;
    let auditor = auditor_of(&app, ours.collectivity).await;

    let events = feed(&app, &auditor, ours.collectivity, 500, json!({})).await;
    let streams: std::collections::BTreeSet<String> = events
        .iter()
        .map(|e| {
            format!(
                "{}/{}",
                e["aggregateType"].as_str().unwrap(),
                e["aggregateId"].as_str().unwrap()
            )
        })
        .collect();
    assert!(streams.contains(&format!("Collectivity/{}", ours.collectivity)));
    assert!(streams.contains(&format!("Family/{}", ours.family)));
    assert_eq!(
        events
            .iter()
            .filter(|e| e["event"]["eventType"] == "ReservationRequested")
            .count(),
        2
    );
    assert!(!streams.contains(&format!("Collectivity/{}", theirs.collectivity)));
    assert!(!streams.contains(&format!("Family/{}", theirs.family)));
    let payloads = serde_json::to_string(&events).unwrap();
    assert!(
        !payloads.contains(&theirs.collectivity.to_string()),
        "another commune's event in the feed"
    );
    assert!(in_commit_order(&events), "commit order: {events:?}");
    assert_eq!(
        feed(&app, &auditor, ours.collectivity, 4, json!({})).await,
        events,
        "paged, the same"
    );

    // Filters: by types, and by the instant recorded.
    let requested = feed(
        &app,
        &auditor,
        ours.collectivity,
        500,
        json!({ "events": ["ReservationRequested"] }),
    )
    .await;
    assert_eq!(requested.len(), 2);
    let reservations = feed(
        &app,
        &auditor,
        ours.collectivity,
        500,
        json!({ "types": ["Reservation"] }),
    )
    .await;
    assert!(reservations.len() >= 2 && reservations.iter().all(|e| e["aggregateType"] == "Reservation"));
    let before = feed(
        &app,
        &auditor,
        ours.collectivity,
        500,
        json!({ "from": "2020-01-01T00:00:00Z", "to": "2020-01-02T00:00:00Z" }),
    )
    .await;
    assert!(before.is_empty());

    // Another commune's auditor, and the commune's own agent, read none of it.
    let other = auditor_of(&app, theirs.collectivity).await;
    for token in [other, ours.agent()] {
        let refused = app
            .gql(Some(&token), FEED, json!({ "c": ours.collectivity, "first": 10 }))
            .await;
        assert_eq!(refused.error_code(), "NOT_FOUND");
    }
    let types: Vec<String> = (0..21).map(|n| format!("T{n}")).collect();
    let bounded = app
        .gql(
            Some(&auditor),
            FEED,
            json!({ "c": ours.collectivity, "first": 10, "types": types }),
        )
        .await;
    assert_eq!(bounded.error_code(), "VALIDATION");

    // The command line exports the same events.
    use espace_famille_api::cli::audit::{export, Format};
    let settings = espace_famille_api::app::Settings::new(&app.database_url);
    let mut jsonl = Vec::new();
    export(
        &settings,
        ours.collectivity,
        Default::default(),
        Format::Jsonl,
        &mut jsonl,
    )
    .await
    .unwrap();
    let lines: Vec<Value> = String::from_utf8(jsonl)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), events.len());
    for (line, event) in lines.iter().zip(&events) {
        assert_eq!(line["position"], event["position"]);
        assert_eq!(line["event_type"], event["event"]["eventType"]);
        assert_eq!(line["payload"], event["event"]["payload"]);
    }
    let mut csv = Vec::new();
    export(
        &settings,
        ours.collectivity,
        Default::default(),
        Format::Csv,
        &mut csv,
    )
    .await
    .unwrap();
    let mut reader = csv::Reader::from_reader(csv.as_slice());
    assert_eq!(reader.headers().unwrap().get(0), Some("position"));
    let rows: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(rows.len(), events.len());
    assert_eq!(rows[0].get(5), events[0]["event"]["eventType"].as_str());
}
