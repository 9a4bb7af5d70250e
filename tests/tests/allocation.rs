//! An allocated booking window: requests collected while it is open, the
//! places given when it closes by the commune's priorities and a lottery
//! whose seed was committed to beforehand, every family e-mailed, and the
//! run recomputed from the events by an auditor.

use std::time::Duration;

use chrono::{NaiveDate, Utc};
use espace_famille_api::services::allocation;
use espace_famille_domain::allocation::run_id;
use espace_famille_tests::*;
use serde_json::{json, Value};
use uuid::Uuid;

const WINDOW: &str = "mutation($input: SetBookingWindowInput!) {
  setBookingWindow(input: $input) { bookingWindows { id allocation { closesAt criteria seedCommitment } } }
}";

const DAY: &str = "query($k: UUID!, $u: UUID!, $d: NaiveDate!) {
  calendar(childId: $k, unitId: $u, from: $d, to: $d) { status state label allocationAt waitingPosition }
}";

/// A family of the fixture's commune, opened by its agent, its guardian
/// active, with `children` enrolled for the year of `day`: the family, the
/// guardian's token and address, the children.
async fn another_family(
    app: &TestApp,
    fixture: &Fixture,
    day: NaiveDate,
    children: usize,
) -> (Uuid, String, String, Vec<Uuid>) {
    let family = Uuid::new_v4();
    let guardian = format!("famille.{}@example.fr", Uuid::new_v4().simple());
    app.gql(
        Some(&fixture.agent()),
        "mutation($c: UUID!, $f: UUID!, $e: String!) {
           openFamilyAccount(input: { collectivityId: $c, id: $f, familyRef: \"F-0002\", guardianEmail: $e }) { id }
         }",
        json!({ "c": fixture.collectivity, "f": family, "e": guardian }),
    )
    .await
    .data("openFamilyAccount");
    let token = app.activate_from_mail(&guardian, PASSWORD).await;
    let ids = register_children(app, fixture, &token, family, day, children).await;
    (family, token, guardian, ids)
}

async fn register_children(
    app: &TestApp,
    fixture: &Fixture,
    token: &str,
    family: Uuid,
    day: NaiveDate,
    count: usize,
) -> Vec<Uuid> {
    let mut ids = Vec::new();
    for n in 0..count {
        let child = Uuid::new_v4();
        app.gql(
            Some(token),
            "mutation($f: UUID!, $k: UUID!, $n: String!) {
               registerChild(input: { familyId: $f, id: $k, firstName: $n, lastName: \"Petit\", birthDate: \"2017-03-02\" }) { id }
             }",
            json!({ "f": family, "k": child, "n": format!("Enfant {n}") }),
        )
        .await
        .data("registerChild");
        for year in school_years(&[day]) {
            app.gql(
                Some(&fixture.agent()),
                "mutation($f: UUID!, $k: UUID!, $c: UUID!, $s: UUID!, $y: Int!) {
                   enrolChild(input: { familyId: $f, childId: $k, collectivityId: $c, serviceId: $s, schoolYear: $y }) { id }
                 }",
                json!({ "f": family, "k": child, "c": fixture.collectivity, "s": fixture.canteen, "y": year }),
            )
            .await
            .data("enrolChild");
        }
        ids.push(child);
    }
    ids
}

async fn request(app: &TestApp, token: &str, family: Uuid, child: Uuid, unit: Uuid, day: NaiveDate) -> Value {
    let outcome = app
        .gql(
            Some(token),
            "mutation($input: SubmitBasketInput!) { submitBasket(input: $input) { status lines { waitingPosition refusal { code } } } }",
            json!({ "input": { "basketId": Uuid::new_v4(), "familyId": family, "lines": [
                { "action": "BOOK", "childId": child, "unitId": unit, "date": day }
            ] } }),
        )
        .await;
    outcome.data("submitBasket").clone()
}

async fn day_of(app: &TestApp, token: &str, child: Uuid, unit: Uuid, day: NaiveDate) -> Value {
    app.gql(Some(token), DAY, json!({ "k": child, "u": unit, "d": day }))
        .await
        .data("calendar")[0]
        .clone()
}

#[tokio::test]
async fn an_allocated_window_gives_its_places_by_priority_then_lottery_and_an_auditor_recomputes_it() {
    let app = spawn_app().await;
    let day = future_canteen_days(1)[0];
    let fixture = setup_commune(&app, &[day]).await;
    let agent = fixture.agent();
    app.gql(
        Some(&agent),
        "mutation($c: UUID!, $u: UUID!) { setPlaces(collectivityId: $c, unitId: $u, places: 2) { id } }",
        json!({ "c": fixture.collectivity, "u": fixture.meal }),
    )
    .await
    .data("setPlaces");
    // The Martins live in the commune; the Petits do not, both work.
    let mut martins = vec![fixture.child];
    martins.extend(register_children(&app, &fixture, &fixture.parent(), fixture.family, day, 1).await);
    let (petits, petit_token, petit_guardian, petit_children) = another_family(&app, &fixture, day, 2).await;
    app.gql(
        Some(&agent),
        "mutation($f: UUID!, $c: UUID!) { setResidence(familyId: $f, collectivityId: $c, resident: true) { id } }",
        json!({ "f": fixture.family, "c": fixture.collectivity }),
    )
    .await
    .data("setResidence");
    let working = app
        .gql(
            Some(&agent),
            "mutation($f: UUID!, $c: UUID!) {
               setWorkingParents(familyId: $f, collectivityId: $c, bothWorking: true) { workingParents }
             }",
            json!({ "f": petits, "c": fixture.collectivity }),
        )
        .await;
    assert_eq!(
        working.data("setWorkingParents")["workingParents"],
        json!([fixture.collectivity])
    );

    // Open since a minute, closing in three seconds: residents first.
    let window_id = Uuid::new_v4();
    let closes_at = Utc::now() + chrono::Duration::seconds(3);
    let set = app
        .gql(
            Some(&agent),
            WINDOW,
            json!({ "input": {
                "collectivityId": fixture.collectivity, "id": window_id, "unitId": fixture.meal,
                "first": day, "last": day, "opensAt": Utc::now() - chrono::Duration::minutes(1),
                "allocation": { "closesAt": closes_at, "criteria": ["RESIDENT", "BOTH_PARENTS_WORKING"] }
            } }),
        )
        .await;
    let published = set.data("setBookingWindow")["bookingWindows"][0]["allocation"].clone();
    let commitment = published["seedCommitment"].as_str().unwrap().to_string();
    assert_eq!(commitment.len(), 64, "{published}");
    assert_eq!(published["criteria"], json!(["RESIDENT", "BOTH_PARENTS_WORKING"]));

    // The Petits ask first: the order of requests does not decide.
    for &child in &petit_children {
        let asked = request(&app, &petit_token, petits, child, fixture.meal, day).await;
        assert_eq!(asked["status"], "ACCEPTED", "{asked}");
    }
    for &child in &martins {
        let asked = request(&app, &fixture.parent(), fixture.family, child, fixture.meal, day).await;
        assert_eq!(asked["status"], "ACCEPTED", "{asked}");
    }
    let pending = day_of(&app, &petit_token, petit_children[0], fixture.meal, day).await;
    assert_eq!(pending["state"], "ALLOCATION_PENDING", "{pending}");
    assert!(
        pending["label"]
            .as_str()
            .unwrap()
            .starts_with("demande enregistrée, attribution le "),
        "{pending}"
    );
    assert!(pending["allocationAt"].is_string());
    let again = request(&app, &petit_token, petits, petit_children[0], fixture.meal, day).await;
    assert_eq!(again["lines"][0]["refusal"]["code"], "ALREADY_REQUESTED");
    // Resetting the window keeps its published seed.
    let reset = app
        .gql(
            Some(&agent),
            WINDOW,
            json!({ "input": {
                "collectivityId": fixture.collectivity, "id": window_id, "unitId": fixture.meal,
                "first": day, "last": day, "opensAt": Utc::now() - chrono::Duration::minutes(1),
                "allocation": { "closesAt": closes_at, "criteria": ["RESIDENT", "BOTH_PARENTS_WORKING"] }
            } }),
        )
        .await;
    assert_eq!(
        reset.data("setBookingWindow")["bookingWindows"][0]["allocation"]["seedCommitment"],
        commitment.as_str()
    );

    // The window closes; the run gives the two places to the residents.
    let mut placed = Value::Null;
    for _ in 0..150 {
        placed = day_of(&app, &fixture.parent(), martins[0], fixture.meal, day).await;
        if placed["status"] != "ALLOCATION_PENDING" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(placed["status"], "CONFIRMED", "{placed}");
    assert_eq!(
        day_of(&app, &fixture.parent(), martins[1], fixture.meal, day).await["status"],
        "CONFIRMED"
    );
    let mut ranks = Vec::new();
    for &child in &petit_children {
        let waiting = day_of(&app, &petit_token, child, fixture.meal, day).await;
        assert_eq!(waiting["state"], "WAIT_LISTED", "{waiting}");
        ranks.push(waiting["waitingPosition"].as_i64().unwrap());
    }
    ranks.sort_unstable();
    assert_eq!(ranks, [1, 2]);
    // Every family is told.
    for _ in 0..2 {
        let mail = app.next_mail_to(&fixture.guardian_email).await;
        assert!(mail.contains("a une place le"), "{mail}");
    }
    for _ in 0..2 {
        let mail = app.next_mail_to(&petit_guardian).await;
        assert!(mail.contains("au rang"), "{mail}");
    }
    // After the run, booking is first come, first served: behind the list.
    let late = register_children(&app, &fixture, &petit_token, petits, day, 1).await[0];
    let after = request(&app, &petit_token, petits, late, fixture.meal, day).await;
    assert_eq!(after["lines"][0]["waitingPosition"], 3, "{after}");

    // The auditor recomputes the run from the events and finds it holds.
    let run = run_id(window_id, fixture.meal, day);
    let audit = allocation::audit(&app.pool, run).await.unwrap();
    assert_eq!((audit.requests, audit.placed), (4, 2));
    assert!(audit.holds(), "{audit:?}");
    assert_eq!(audit.checks.len(), 5);
    // A run whose stored order was changed no longer holds.
    sqlx::query("ALTER TABLE events DISABLE TRIGGER events_append_only")
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query(
        "UPDATE events SET payload = jsonb_set(payload::jsonb, '{AllocationRun,order}',
           jsonb_build_array(payload -> 'AllocationRun' -> 'order' -> 1, payload -> 'AllocationRun' -> 'order' -> 0,
                             payload -> 'AllocationRun' -> 'order' -> 2, payload -> 'AllocationRun' -> 'order' -> 3))::json
         WHERE aggregate_type = 'Places' AND event_type = 'AllocationRun'",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let tampered = allocation::audit(&app.pool, run).await.unwrap();
    assert!(!tampered.holds(), "{tampered:?}");
}

#[tokio::test]
async fn another_communes_window_id_is_refused_and_its_seed_never_reused() {
    let app = spawn_app().await;
    let day = future_canteen_days(1)[0];
    let first = setup_commune(&app, &[day]).await;
    let other = setup_commune(&app, &[day]).await;
    let window = Uuid::new_v4();
    let input = |fixture: &Fixture| {
        json!({ "input": {
            "collectivityId": fixture.collectivity, "id": window, "unitId": fixture.meal,
            "first": day, "last": day, "opensAt": Utc::now(),
            "allocation": { "closesAt": Utc::now() + chrono::Duration::days(1), "criteria": [] }
        } })
    };
    app.gql(Some(&first.agent()), WINDOW, input(&first))
        .await
        .data("setBookingWindow");
    let taken = app.gql(Some(&other.agent()), WINDOW, input(&other)).await;
    assert_eq!(taken.error_code(), "CONFLICT");
    let too_many = app
        .gql(
            Some(&first.agent()),
            WINDOW,
            json!({ "input": {
                "collectivityId": first.collectivity, "unitId": first.meal,
                "first": day, "last": day, "opensAt": Utc::now(),
                "allocation": { "closesAt": Utc::now() + chrono::Duration::days(1),
                                "criteria": ["RESIDENT", "SIBLING_PLACED", "BOTH_PARENTS_WORKING", "RESIDENT"] }
            } }),
        )
        .await;
    assert_eq!(too_many.error_code(), "VALIDATION");
}
