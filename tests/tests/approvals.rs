//! Bookings that wait for an agent: the calendar says so, the queue lists
//! them by kind, filtered and paged, and an agent decides on many at once,
//! all or none.

use espace_famille_api::auth::accounts::Grant;
use espace_famille_tests::*;
use serde_json::{json, Value};
use uuid::Uuid;

const QUEUE: &str = "query($c: UUID!, $k: PendingKind, $u: UUID, $first: Int!, $after: String) {
  agentWorkQueue(collectivityId: $c, kind: $k, unitId: $u, first: $first, after: $after) {
    kind cursor reservationId unitId date
  }
}";

const DECIDE: &str = "mutation($d: [DecisionInput!]!) { decideMany(decisions: $d) { id status } }";

#[tokio::test]
async fn bookings_wait_for_an_agent_who_decides_on_many_at_once() {
    let app = spawn_app().await;
    let days = future_canteen_days(3);
    let fixture = setup_commune(&app, &days).await;
    // A second unit of the canteen, whose bookings an agent approves.
    let approved_unit = Uuid::new_v4();
    app.gql(
        Some(&fixture.agent()),
        "mutation($c: UUID!, $s: UUID!, $u: UUID!) {
           addUnit(input: {
             collectivityId: $c, id: $u, serviceId: $s, name: \"Repas sans porc\",
             weekdays: [MON, TUE, THU, FRI], openDuring: SCHOOL_TERMS, billing: MONTHLY,
             bookingDeadline: { daysBefore: { days: 2, at: \"12:00\", skipWeekends: true } },
             cancellationDeadline: { daysBefore: { days: 2, at: \"12:00\", skipWeekends: true } },
             bookingNeedsApproval: true
           }) { units { id bookingNeedsApproval } }
         }",
        json!({ "c": fixture.collectivity, "s": fixture.canteen, "u": approved_unit }),
    )
    .await
    .data("addUnit");
    let lines: Vec<Value> = days
        .iter()
        .map(|d| json!({ "action": "BOOK", "childId": fixture.child, "unitId": approved_unit, "date": d }))
        .collect();
    let outcome = app
        .gql(
            Some(&fixture.parent()),
            SUBMIT_BASKET,
            json!({ "input": { "basketId": Uuid::new_v4(), "familyId": fixture.family, "lines": lines } }),
        )
        .await;
    assert_eq!(outcome.data("submitBasket")["status"], "ACCEPTED");
    let shown = app
        .gql(
            Some(&fixture.parent()),
            "query($k: UUID!, $u: UUID!, $f: NaiveDate!, $t: NaiveDate!) {
               calendar(childId: $k, unitId: $u, from: $f, to: $t) { date status }
             }",
            json!({ "k": fixture.child, "u": approved_unit, "f": days[0], "t": days[0] }),
        )
        .await;
    assert_eq!(shown.data("calendar")[0]["status"], "AWAITING_APPROVAL");

    // The queue, a page of two then the rest; only bookings asked.
    let page = |after: Value| json!({ "c": fixture.collectivity, "k": "BOOKING", "u": approved_unit, "first": 2, "after": after });
    let first = app.gql(Some(&fixture.agent()), QUEUE, page(Value::Null)).await;
    let first = first.data("agentWorkQueue").as_array().unwrap().clone();
    assert_eq!(first.len(), 2);
    assert!(first.iter().all(|p| p["kind"] == "BOOKING"));
    let rest = app
        .gql(Some(&fixture.agent()), QUEUE, page(first[1]["cursor"].clone()))
        .await;
    let rest = rest.data("agentWorkQueue").as_array().unwrap().clone();
    assert_eq!(rest.len(), 1);
    let ids: Vec<Value> = first
        .iter()
        .chain(&rest)
        .map(|p| p["reservationId"].clone())
        .collect();
    let cancellations = app
        .gql(
            Some(&fixture.agent()),
            QUEUE,
            json!({ "c": fixture.collectivity, "k": "CANCELLATION", "first": 10 }),
        )
        .await;
    assert_eq!(cancellations.data("agentWorkQueue").as_array().unwrap().len(), 0);

    // A refusal without its reason refuses the whole lot; another
    // commune's agent sees none of them.
    let without_reason = json!({ "d": [
        { "reservationId": ids[0], "approve": true },
        { "reservationId": ids[1], "approve": false }
    ] });
    let refused = app.gql(Some(&fixture.agent()), DECIDE, without_reason).await;
    assert_eq!(refused.error_code(), "VALIDATION");
    let other = setup_commune(&app, &days).await;
    let stranger = app
        .gql(
            Some(&other.agent()),
            DECIDE,
            json!({ "d": [{ "reservationId": ids[0], "approve": true }] }),
        )
        .await;
    assert_eq!(stranger.error_code(), "NOT_FOUND");
    let still = app.gql(Some(&fixture.agent()), QUEUE, page(Value::Null)).await;
    assert_eq!(
        still.data("agentWorkQueue").as_array().unwrap().len(),
        2,
        "nothing was decided"
    );

    let decided = app
        .gql(
            Some(&fixture.agent()),
            DECIDE,
            json!({ "d": [
                { "reservationId": ids[0], "approve": true, "note": "Validé" },
                { "reservationId": ids[1], "approve": false, "note": "Plus de place ce jour-là" },
                { "reservationId": ids[2], "approve": true }
            ] }),
        )
        .await;
    let statuses: Vec<&str> = decided
        .data("decideMany")
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["CONFIRMED", "REJECTED", "CONFIRMED"]);
    let empty = app.gql(Some(&fixture.agent()), QUEUE, page(Value::Null)).await;
    assert_eq!(empty.data("agentWorkQueue").as_array().unwrap().len(), 0);

    // The guardian is told of each decision, in French, with the child,
    // the day, the unit and the agent's words.
    let mut mails = Vec::new();
    for _ in 0..3 {
        mails.push(app.next_mail_to(&fixture.guardian_email).await);
    }
    let accepted = mails
        .iter()
        .filter(|m| m.contains("est acceptée") && m.contains("Louise") && m.contains("(Repas sans porc)"))
        .count();
    assert_eq!(accepted, 2, "{mails:?}");
    let rejected: Vec<&String> = mails.iter().filter(|m| m.contains("est refusée")).collect();
    assert_eq!(rejected.len(), 1, "{mails:?}");
    assert!(
        rejected[0].contains("Motif : Plus de place ce jour-là"),
        "{}",
        rejected[0]
    );
    assert!(
        days.iter()
            .any(|d| rejected[0].contains(&format!("le {}", espace_famille_api::mail::french_date(*d)))),
        "{}",
        rejected[0]
    );
    assert!(
        mails.iter().any(|m| m.contains("Commentaire : Validé")),
        "{mails:?}"
    );
    app.stop().await;
}

/// A decision answers with the reservation as decided, without waiting for
/// the read models; the next query of the agent, of a colleague and of the
/// family waits for them instead, and shows the decision.
#[tokio::test]
async fn a_decision_does_not_wait_for_the_read_models_but_the_next_query_of_its_readers_does() {
    // A write that waited would wait a minute: the test would fail first.
    let app = spawn_app_with(|settings| settings.read_your_writes = std::time::Duration::from_secs(60)).await;
    let days = future_canteen_days(2);
    let fixture = setup_commune(&app, &days).await;
    let booked = app.book(&fixture, &days[..1]).await;
    let reservation = booked.data("submitBasket")["lines"][0]["reservationId"].clone();
    let asked = app
        .gql(
            Some(&fixture.parent()),
            "mutation($id: UUID!) { requestCancellation(reservationId: $id) { status } }",
            json!({ "id": reservation }),
        )
        .await;
    assert_eq!(
        asked.data("requestCancellation")["status"],
        "CANCELLATION_REQUESTED"
    );
    let colleague_email = format!("collegue-{}@mairie.example.fr", Uuid::new_v4().simple());
    app.create_account(
        &colleague_email,
        "mot de passe du collègue",
        &[Grant::Agent(fixture.collectivity)],
    )
    .await;
    let colleague = app.login(&colleague_email, "mot de passe du collègue").await;
    let queue_of = |token: String| {
        let app = &app;
        let collectivity = fixture.collectivity;
        async move {
            app.gql(Some(&token), QUEUE, json!({ "c": collectivity, "first": 50 }))
                .await
                .data("agentWorkQueue")
                .as_array()
                .unwrap()
                .len()
        }
    };
    assert_eq!(queue_of(fixture.agent()).await, 1);

    // The bookings' read models stall: their checkpoints are held.
    let mut stall = app.pool.begin().await.unwrap();
    sqlx::query(
        "SELECT 1 FROM projection_checkpoints WHERE name IN ('calendar', 'agent_work_queue') FOR UPDATE",
    )
    .execute(&mut *stall)
    .await
    .unwrap();
    let approved = tokio::time::timeout(
        std::time::Duration::from_secs(20),
        app.gql(
            Some(&fixture.agent()),
            "mutation($id: UUID!) { approveCancellation(reservationId: $id) { status } }",
            json!({ "id": reservation }),
        ),
    )
    .await
    .expect("the decision waited for the read models");
    assert_eq!(approved.data("approveCancellation")["status"], "CANCELLED");
    let still: i64 =
        sqlx::query_scalar("SELECT count(*) FROM agent_work_queue WHERE reservation_id = $1::text::uuid")
            .bind(reservation.as_str().unwrap())
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(still, 1, "the read model has not applied the decision yet");

    // Their next queries wait for it, each of them: none answers before
    // the read models are let go.
    let agent = answered(async { json!(queue_of(fixture.agent()).await) });
    let colleague_queue = answered(async { json!(queue_of(colleague).await) });
    let calendar = answered(async {
        app.gql(
            Some(&fixture.parent()),
            CALENDAR,
            json!({ "child": fixture.child, "unit": fixture.meal, "from": days[0], "to": days[0] }),
        )
        .await
        .data("calendar")[0]["status"]
            .clone()
    });
    let release = async {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        let released = std::time::Instant::now();
        stall.rollback().await.unwrap();
        released
    };
    let ((agent, a), (colleague_queue, c), (calendar, p), released) =
        tokio::join!(agent, colleague_queue, calendar, release);
    assert!(
        [a, c, p].iter().all(|answered| *answered >= released),
        "a query answered before the read models could show the decision"
    );
    assert_eq!(calendar, "CANCELLED");
    assert_eq!((agent, colleague_queue), (json!(0), json!(0)));
    app.stop().await;
}

/// A query's answer, with when it came.
async fn answered(query: impl std::future::Future<Output = Value>) -> (Value, std::time::Instant) {
    let answer = query.await;
    (answer, std::time::Instant::now())
}
