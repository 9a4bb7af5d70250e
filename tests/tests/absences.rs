//! Absences over HTTP: a guardian reports one with one of the commune's
//! reasons, the calendar shows it, an agent of the commune judges it; no one
//! else may do either.

use espace_famille_tests::*;
use serde_json::json;

const REPORT: &str =
    "mutation($id: UUID!, $r: String!) { reportAbsence(reservationId: $id, reason: $r) { status } }";
const JUDGE: &str = "mutation($id: UUID!, $j: Boolean!, $n: String) {
  judgeAbsence(reservationId: $id, justified: $j, note: $n) { status history { eventType actorRole payload } }
}";

#[tokio::test]
async fn an_absence_is_reported_by_its_family_and_judged_by_its_commune() {
    let app = spawn_app().await;
    let days = future_canteen_days(1);
    let fixture = setup_commune(&app, &days).await;
    app.book(&fixture, &days).await.data("submitBasket");
    let day = app.calendar(&fixture, days[0], days[0]).await;
    let reservation = day.data("calendar")[0]["reservationId"].clone();

    // A reason the commune does not list, then another family's guardian.
    let unknown = app
        .gql(
            Some(&fixture.parent()),
            REPORT,
            json!({ "id": reservation, "r": "Ski" }),
        )
        .await;
    assert_eq!(unknown.error_code(), "UNKNOWN_ABSENCE_REASON");
    let other = setup_commune(&app, &days).await;
    let stranger = app
        .gql(
            Some(&other.parent()),
            REPORT,
            json!({ "id": reservation, "r": "Maladie" }),
        )
        .await;
    assert_eq!(
        stranger.error_code(),
        "NOT_FOUND",
        "another family's booking reads as missing"
    );

    // The commune adds a reason; the guardian reports with it.
    app.gql(
        Some(&fixture.agent()),
        "mutation($c: UUID!) {
           setAbsenceRules(collectivityId: $c, reasons: [\"Maladie\", \"Rendez-vous médical\"], reportDaysAfter: 2) {
             absenceReasons absenceReportDaysAfter
           }
         }",
        json!({ "c": fixture.collectivity }),
    )
    .await
    .data("setAbsenceRules");
    let reported = app
        .gql(
            Some(&fixture.parent()),
            REPORT,
            json!({ "id": reservation, "r": "rendez-vous médical" }),
        )
        .await;
    assert_eq!(reported.data("reportAbsence")["status"], "ABSENCE_REPORTED");
    let shown = app.calendar(&fixture, days[0], days[0]).await;
    assert_eq!(shown.data("calendar")[0]["status"], "ABSENCE_REPORTED");
    let twice = app
        .gql(
            Some(&fixture.parent()),
            REPORT,
            json!({ "id": reservation, "r": "Maladie" }),
        )
        .await;
    assert_eq!(twice.error_code(), "ABSENCE_ALREADY_REPORTED");

    // Only the commune's agents judge it: not the guardian, not another
    // commune's agent.
    let by_parent = app
        .gql(
            Some(&fixture.parent()),
            JUDGE,
            json!({ "id": reservation, "j": true }),
        )
        .await;
    assert_eq!(by_parent.error_code(), "FORBIDDEN");
    let by_stranger = app
        .gql(
            Some(&other.agent()),
            JUDGE,
            json!({ "id": reservation, "j": true }),
        )
        .await;
    assert_eq!(by_stranger.error_code(), "NOT_FOUND");
    let judged = app
        .gql(
            Some(&fixture.agent()),
            JUDGE,
            json!({ "id": reservation, "j": true, "n": "Certificat reçu" }),
        )
        .await;
    let judged = judged.data("judgeAbsence");
    assert_eq!(judged["status"], "ABSENT_JUSTIFIED");
    let history = judged["history"].as_array().unwrap();
    let last = &history[history.len() - 1];
    assert_eq!(last["eventType"], "AbsenceJustified");
    assert_eq!(last["actorRole"], "agent");
    let reason = &history[history.len() - 2];
    assert_eq!(
        reason["payload"]["AbsenceReported"]["reason"],
        "Rendez-vous médical"
    );
    let shown = app.calendar(&fixture, days[0], days[0]).await;
    assert_eq!(shown.data("calendar")[0]["status"], "ABSENT_JUSTIFIED");
    app.stop().await;
}

#[tokio::test]
async fn an_absence_is_reported_on_the_day_itself_past_the_cancellation_deadline_then_justified() {
    let app = spawn_app().await;
    // The commune's day, not UTC's: they differ an hour or two around midnight.
    let today = espace_famille_domain::calendar::paris_today(chrono::Utc::now());
    let fixture = setup_commune(&app, &[today]).await;
    // Booked weeks ago (the booking is in the store as it was written).
    seed_confirmed(&app, &fixture, &[today]).await;
    let reservation = espace_famille_domain::reservation::reservation_id(fixture.child, fixture.meal, today);
    // Too late to cancel: the deadline was two days ago.
    let cancel = app.request_cancellation(&fixture, &json!(reservation)).await;
    assert_eq!(cancel.error_code(), "DEADLINE_PASSED");
    // The child is ill this morning: reported, then justified by the commune.
    let reported = app
        .gql(
            Some(&fixture.parent()),
            REPORT,
            json!({ "id": reservation, "r": "Maladie" }),
        )
        .await;
    assert_eq!(reported.data("reportAbsence")["status"], "ABSENCE_REPORTED");
    let judged = app
        .gql(
            Some(&fixture.agent()),
            JUDGE,
            json!({ "id": reservation, "j": true, "n": "certificat médical" }),
        )
        .await;
    let judged = judged.data("judgeAbsence");
    assert_eq!(judged["status"], "ABSENT_JUSTIFIED");
    let types: Vec<&str> = judged["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["eventType"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "ReservationRequested",
            "ReservationConfirmed",
            "AbsenceReported",
            "AbsenceJustified"
        ]
    );
    app.stop().await;
}
