//! School calendars from official data: a zone, school years published with
//! their computed public holidays and the Ministry's school holidays, local
//! closures with their reason, and days of a year not published that
//! cannot be booked.

use std::time::Duration;

use chrono::NaiveDate;
use espace_famille_api::commands::Commands;
use espace_famille_api::demo;
use espace_famille_tests::*;
use serde_json::json;
use uuid::Uuid;

const COLLECTIVITY: &str = "query($c: UUID!) {
  collectivity(id: $c) {
    schoolZone department
    schoolYears { schoolYear label zone publicHolidays { date name } schoolHolidays { first last name } }
    closures { id first last unitId reason }
  }
}";

const DAY: &str = "query($k: UUID!, $u: UUID!, $d: NaiveDate!) {
  calendar(childId: $k, unitId: $u, from: $d, to: $d) { date open closedReason canBook bookRefusal { code } }
}";

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

const CLOSURE: &str =
    "mutation($c: UUID!, $id: UUID!, $f: NaiveDate!, $l: NaiveDate!, $u: UUID, $r: String!) {
  addClosure(input: { collectivityId: $c, id: $id, first: $f, last: $l, unitId: $u, reason: $r }) {
    collectivity { closures { id reason } }
    cancelled { reservationId familyId childId unitId date }
  }
}";

#[tokio::test]
async fn a_published_year_carries_the_zones_holidays_and_the_computed_public_holidays() {
    let app = spawn_app().await;
    let days = future_canteen_days(2);
    let fixture = setup_commune(&app, &days).await;
    let agent = fixture.agent();
    app.gql(
        Some(&agent),
        "mutation($c: UUID!) { publishSchoolYear(collectivityId: $c, schoolYear: 2026) { id } }",
        json!({ "c": fixture.collectivity }),
    )
    .await
    .data("publishSchoolYear");
    let commune = app
        .gql(None, COLLECTIVITY, json!({ "c": fixture.collectivity }))
        .await;
    let commune = commune.data("collectivity");
    assert_eq!(commune["schoolZone"], "C");
    assert_eq!(commune["department"], "77");
    let year = commune["schoolYears"]
        .as_array()
        .unwrap()
        .iter()
        .find(|y| y["schoolYear"] == 2026)
        .expect("2026-2027 is published");
    assert_eq!(year["label"], "2026-2027");
    let winter = year["schoolHolidays"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "Vacances d'hiver")
        .unwrap();
    assert_eq!(
        (winter["first"].as_str(), winter["last"].as_str()),
        (Some("2027-02-06"), Some("2027-02-21"))
    );
    assert!(year["publicHolidays"]
        .as_array()
        .unwrap()
        .contains(&json!({ "date": "2027-05-06", "name": "Ascension" })));

    // Sent again: nothing changes.
    let events = |pool: sqlx::PgPool| async move {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM events WHERE aggregate_type = 'Collectivity'")
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    let before = events(app.pool.clone()).await;
    app.gql(
        Some(&agent),
        "mutation($c: UUID!) { publishSchoolYear(collectivityId: $c, schoolYear: 2026) { id } }",
        json!({ "c": fixture.collectivity }),
    )
    .await
    .data("publishSchoolYear");
    assert_eq!(events(app.pool.clone()).await, before);

    // A day of zone C's winter holidays, and Ascension, say why they are closed.
    for (day, reason) in [
        (date(2027, 2, 8), "vacances scolaires"),
        (date(2027, 5, 6), "jour férié"),
    ] {
        let answer = app
            .gql(
                Some(&fixture.parent()),
                DAY,
                json!({ "k": fixture.child, "u": fixture.meal, "d": day }),
            )
            .await;
        let slot = &answer.data("calendar")[0];
        assert_eq!(slot["open"], false, "{day}");
        assert_eq!(slot["closedReason"], reason, "{day}");
        assert_eq!(slot["bookRefusal"]["code"], "UNIT_CLOSED");
    }

    // A year the data does not cover, a département that does not exist,
    // a parent: refused, nothing written.
    let refused = app
        .gql(
            Some(&agent),
            "mutation($c: UUID!) { publishSchoolYear(collectivityId: $c, schoolYear: 2031) { id } }",
            json!({ "c": fixture.collectivity }),
        )
        .await;
    assert_eq!(refused.error_code(), "VALIDATION");
    let refused = app
        .gql(
            Some(&agent),
            "mutation($c: UUID!) { setSchoolZone(collectivityId: $c, zone: B, department: \"20\") { id } }",
            json!({ "c": fixture.collectivity }),
        )
        .await;
    assert_eq!(refused.error_code(), "VALIDATION");
    let refused = app
        .gql(
            Some(&fixture.parent()),
            "mutation($c: UUID!) { publishSchoolYear(collectivityId: $c, schoolYear: 2027) { id } }",
            json!({ "c": fixture.collectivity }),
        )
        .await;
    assert_eq!(refused.error_code(), "FORBIDDEN");
    assert_eq!(events(app.pool.clone()).await, before);
    app.stop().await;
}

#[tokio::test]
async fn a_day_of_a_year_not_published_cannot_be_booked_and_says_so() {
    let app = spawn_app().await;
    let days = future_canteen_days(1);
    let fixture = setup_commune(&app, &days).await;
    // A Monday of 2028-2029, a year nobody published.
    let unpublished = date(2028, 9, 11);
    let answer = app
        .gql(
            Some(&fixture.parent()),
            DAY,
            json!({ "k": fixture.child, "u": fixture.meal, "d": unpublished }),
        )
        .await;
    let slot = &answer.data("calendar")[0];
    assert_eq!(slot["open"], false);
    assert!(
        slot["closedReason"].as_str().unwrap().contains("2028-2029"),
        "{slot}"
    );
    let outcome = app.book(&fixture, &[unpublished]).await;
    let line = &outcome.data("submitBasket")["lines"][0];
    assert_eq!(line["refusal"]["code"], "UNIT_CLOSED");
    app.stop().await;
}

#[tokio::test]
async fn a_closure_closes_its_days_with_its_reason_and_only_for_its_commune() {
    let app = spawn_app().await;
    let days = future_canteen_days(3);
    let fixture = setup_commune(&app, &days).await;
    let closure = Uuid::new_v4();
    let reason = "Grève du personnel de restauration";
    let variables = json!({
        "c": fixture.collectivity, "id": closure, "f": days[1], "l": days[1], "u": fixture.meal, "r": reason
    });
    let added = app.gql(Some(&fixture.agent()), CLOSURE, variables.clone()).await;
    assert_eq!(
        added.data("addClosure")["collectivity"]["closures"][0]["reason"],
        reason
    );
    // Sent again, the same closure is one.
    let again = app.gql(Some(&fixture.agent()), CLOSURE, variables.clone()).await;
    assert_eq!(
        again.data("addClosure")["collectivity"]["closures"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let answer = app
        .gql(
            Some(&fixture.parent()),
            DAY,
            json!({ "k": fixture.child, "u": fixture.meal, "d": days[1] }),
        )
        .await;
    let slot = &answer.data("calendar")[0];
    assert_eq!(slot["open"], false);
    assert!(slot["closedReason"].as_str().unwrap().contains(reason), "{slot}");
    let outcome = app.book(&fixture, &days).await;
    let lines = outcome.data("submitBasket")["lines"].as_array().unwrap();
    assert_eq!(lines[1]["refusal"]["code"], "UNIT_CLOSED");
    assert!(lines[1]["refusal"]["closedReason"]
        .as_str()
        .unwrap()
        .contains(reason));
    assert!(lines[0]["refusal"].is_null() && lines[2]["refusal"].is_null());

    // Another commune's agent may not close this commune's days, nor name
    // this commune's unit in its own closure; reversed days are refused.
    let other = setup_commune(&app, &days).await;
    let mut foreign = variables.clone();
    foreign["id"] = json!(Uuid::new_v4());
    let refused = app.gql(Some(&other.agent()), CLOSURE, foreign.clone()).await;
    assert_eq!(refused.error_code(), "FORBIDDEN");
    foreign["c"] = json!(other.collectivity);
    let refused = app.gql(Some(&other.agent()), CLOSURE, foreign.clone()).await;
    assert_eq!(refused.error_code(), "NOT_FOUND");
    foreign["u"] = json!(other.meal);
    foreign["f"] = json!(days[2]);
    foreign["l"] = json!(days[0]);
    let refused = app.gql(Some(&other.agent()), CLOSURE, foreign).await;
    assert_eq!(refused.error_code(), "VALIDATION");
    // The same id with other days is a conflict.
    let mut moved = variables;
    moved["f"] = json!(days[0]);
    let refused = app.gql(Some(&fixture.agent()), CLOSURE, moved).await;
    assert_eq!(refused.error_code(), "CONFLICT");
    app.stop().await;
}

#[tokio::test]
async fn the_demo_commune_follows_zone_c_and_a_second_load_keeps_what_an_agent_added() {
    let app = spawn_app().await;
    let commands = Commands::new(app.pool.clone(), Duration::from_secs(5));
    demo::seed(&commands).await.map_err(|e| e.message()).unwrap();
    let agent = app
        .login("agent@dammartin-sur-tigeaux.fr", "demo-agent-2026!")
        .await;
    let commune = demo::COMMUNE;
    let closure = json!({
        "c": commune, "id": Uuid::new_v4(), "f": "2027-03-09", "l": "2027-03-09", "u": null, "r": "Pont communal"
    });
    app.gql(Some(&agent), CLOSURE, closure).await.data("addClosure");
    demo::seed(&commands).await.map_err(|e| e.message()).unwrap();

    let answer = app.gql(None, COLLECTIVITY, json!({ "c": commune })).await;
    let answer = answer.data("collectivity");
    assert_eq!(answer["schoolZone"], "C");
    assert_eq!(
        answer["closures"][0]["reason"], "Pont communal",
        "the agent's closure stays"
    );
    let years: Vec<i64> = answer["schoolYears"]
        .as_array()
        .unwrap()
        .iter()
        .map(|y| y["schoolYear"].as_i64().unwrap())
        .collect();
    assert_eq!(years, [2026, 2027]);
    // Zone C's spring holidays 2027, not another zone's.
    let spring = answer["schoolYears"][0]["schoolHolidays"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "Vacances de printemps")
        .unwrap()
        .clone();
    assert_eq!(spring["first"], "2027-04-03");

    // Armistice day of the next school year cannot be booked.
    let parent = app.login("claire.martin@example.fr", "demo-parent-2026!").await;
    let answer = app
        .gql(
            Some(&parent),
            DAY,
            json!({ "k": demo::LOUISE, "u": demo::MEAL, "d": "2027-11-11" }),
        )
        .await;
    let slot = &answer.data("calendar")[0];
    assert_eq!(slot["closedReason"], "jour férié");
    app.stop().await;
}

#[tokio::test]
async fn closing_booked_days_cancels_their_bookings_free_of_charge_and_tells_the_family() {
    let app = spawn_app().await;
    let days = future_canteen_days(3);
    let fixture = setup_commune(&app, &days).await;
    let booked = app.book(&fixture, &days).await;
    assert_eq!(booked.data("submitBasket")["status"], "ACCEPTED");
    // The parent asks to cancel the last day: pending in the agent's queue.
    let calendar = app.calendar(&fixture, days[2], days[2]).await;
    let last = calendar.data("calendar")[0]["reservationId"].clone();
    app.request_cancellation(&fixture, &last)
        .await
        .data("requestCancellation");

    let reason = "Travaux dans la cuisine";
    let variables = json!({
        "c": fixture.collectivity, "id": Uuid::new_v4(), "f": days[1], "l": days[2], "u": null, "r": reason
    });
    let closed = app.gql(Some(&fixture.agent()), CLOSURE, variables.clone()).await;
    let cancelled = closed.data("addClosure")["cancelled"].as_array().unwrap().clone();
    let dates: Vec<&str> = cancelled.iter().map(|c| c["date"].as_str().unwrap()).collect();
    assert_eq!(dates, [days[1].to_string(), days[2].to_string()]);
    assert!(cancelled.iter().all(|c| c["familyId"] == json!(fixture.family)));

    let statuses: Vec<String> = app
        .calendar(&fixture, days[0], days[2])
        .await
        .data("calendar")
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| days.iter().any(|day| d["date"] == json!(day)))
        .map(|d| d["status"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(statuses, ["CONFIRMED", "CANCELLED", "CANCELLED"]);
    let mail = app.next_mail_to(&fixture.guardian_email).await;
    assert!(mail.contains("Vos réservations sont annulées"), "{mail}");
    assert!(
        mail.contains(reason) && mail.contains("ne vous seront pas facturées"),
        "{mail}"
    );
    assert!(
        mail.contains(&espace_famille_api::mail::french_date(days[1])),
        "{mail}"
    );
    let history = app
        .gql(
            Some(&fixture.agent()),
            "query($id: UUID!) { reservation(id: $id) { status history { eventType actorRole payload } } }",
            json!({ "id": cancelled[0]["reservationId"] }),
        )
        .await;
    let last_event = history.data("reservation")["history"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last_event["eventType"], "ReservationCancelledByCommune");
    assert_eq!(last_event["actorRole"], "agent");
    // The pending cancellation left the agent's queue: decided by the closure.
    let queue = app
        .gql(
            Some(&fixture.agent()),
            "query($c: UUID!) { agentWorkQueue(collectivityId: $c) { reservationId } }",
            json!({ "c": fixture.collectivity }),
        )
        .await;
    assert_eq!(
        queue.data("agentWorkQueue").as_array().unwrap().len(),
        0,
        "{}",
        queue.0
    );

    // Sent again: nothing more is cancelled, no other message.
    let again = app.gql(Some(&fixture.agent()), CLOSURE, variables).await;
    assert_eq!(again.data("addClosure")["cancelled"].as_array().unwrap().len(), 0);
    let messages: i64 =
        sqlx::query_scalar("SELECT count(*) FROM outbox WHERE subject LIKE 'Réservations annulées%'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(messages, 1);
    app.stop().await;
}
