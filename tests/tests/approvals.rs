//! Bookings that wait for an agent: the calendar says so, the queue lists
//! them by kind, filtered and paged, and an agent decides on many at once,
//! all or none.

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
