//! How refusals read: stable `extensions.code`s, and nothing changed.

use espace_famille_tests::*;
use serde_json::json;
use uuid::Uuid;

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_changes_nothing() {
    let app = spawn_app().await;
    let days = future_canteen_days(1);
    let fixture = setup_commune(&app, &days).await;
    let configured: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_type = 'Collectivity'")
            .fetch_one(&app.pool)
            .await
            .unwrap();

    let bad_time = app
        .gql(
            Some(&fixture.agent()),
            "mutation($c: UUID!, $s: UUID!) {
               addUnit(input: {
                 collectivityId: $c, serviceId: $s, name: \"Goûter\", weekdays: [MON], openDuring: SCHOOL_TERMS,
                 billing: MONTHLY, bookingDeadline: { daysBefore: { days: 1, at: \"25:00\" } },
                 cancellationDeadline: { dayOfPreviousMonth: { day: 20, at: \"18:00\" } }
               }) { id }
             }",
            json!({ "c": fixture.collectivity, "s": fixture.canteen }),
        )
        .await;
    assert_eq!(bad_time.error_code(), "VALIDATION");

    let unknown_service = app
        .gql(
            Some(&fixture.agent()),
            "mutation($c: UUID!, $s: UUID!) {
               addUnit(input: {
                 collectivityId: $c, serviceId: $s, name: \"Goûter\", weekdays: [MON], openDuring: SCHOOL_TERMS,
                 billing: MONTHLY, bookingDeadline: { weekdayOfPreviousWeek: { weekday: THU, at: \"09:00\" } },
                 cancellationDeadline: { dayOfPreviousMonth: { day: 20, at: \"18:00\" } }
               }) { id }
             }",
            json!({ "c": fixture.collectivity, "s": Uuid::new_v4() }),
        )
        .await;
    assert_eq!(unknown_service.error_code(), "NOT_FOUND");

    let bad_email = app
        .gql(
            Some(&fixture.agent()),
            "mutation($c: UUID!) {
               openFamilyAccount(input: { collectivityId: $c, familyRef: \"F-2\", guardianEmail: \"not-an-email\" }) { id }
             }",
            json!({ "c": fixture.collectivity }),
        )
        .await;
    assert_eq!(bad_email.error_code(), "VALIDATION");

    let empty_basket = app
        .gql(
            Some(&fixture.parent()),
            SUBMIT_BASKET,
            json!({ "input": { "basketId": Uuid::new_v4(), "familyId": fixture.family, "lines": [] } }),
        )
        .await;
    assert_eq!(empty_basket.error_code(), "VALIDATION");

    let too_long = app
        .gql(
            Some(&fixture.parent()),
            CALENDAR,
            json!({ "child": fixture.child, "unit": fixture.meal, "from": "2026-01-01", "to": "2026-12-31" }),
        )
        .await;
    assert_eq!(too_long.error_code(), "VALIDATION");

    let unknown_child = app
        .gql(
            Some(&fixture.parent()),
            CALENDAR,
            json!({ "child": Uuid::new_v4(), "unit": fixture.meal, "from": days[0], "to": days[0] }),
        )
        .await;
    assert_eq!(unknown_child.error_code(), "NOT_FOUND");

    let duplicate_commune = app
        .gql(
            Some(&fixture.admin_token),
            "mutation($c: UUID!) { createCollectivity(input: { id: $c, name: \"Autre\" }) { id } }",
            json!({ "c": fixture.collectivity }),
        )
        .await;
    assert_eq!(duplicate_commune.error_code(), "CONFLICT");

    let collectivity_events: i64 =
        sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_type = 'Collectivity'")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(
        collectivity_events, configured,
        "the commune as configured: nothing more"
    );
    app.stop().await;
}

#[tokio::test]
async fn every_read_model_rebuilt_from_zero_equals_the_live_one() {
    let app = spawn_app().await;
    let days = future_canteen_days(5);
    let fixture = setup_commune(&app, &days).await;
    app.book(&fixture, &days).await.data("submitBasket");
    let id = espace_famille_domain::reservation::reservation_id(fixture.child, fixture.meal, days[0]);
    app.request_cancellation(&fixture, &json!(id))
        .await
        .data("requestCancellation");

    let applied = app.rebuild_all_read_models().await;
    assert!(applied > 0, "the rebuild applied no event");
    // The rebuilt tables serve the queries.
    let shown = app.calendar(&fixture, days[0], days[0]).await;
    assert_eq!(shown.data("calendar")[0]["status"], "CANCELLATION_REQUESTED");
    app.stop().await;
}
