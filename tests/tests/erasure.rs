//! GDPR erasure: the family's key is destroyed; its events stay and still
//! replay, but no personal value can be read anywhere.

use espace_famille_tests::*;
use serde_json::json;

/// Every row of every table of the database, as text, that contains `value`
/// (case-sensitive: the commune "Dammartin" is not the family "Martin").
async fn rows_containing(app: &TestApp, value: &str) -> Vec<String> {
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' AND tablename <> '_sqlx_migrations'",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert!(tables.len() > 10, "{tables:?}");
    let mut found = Vec::new();
    for table in tables {
        let rows: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT t::text FROM {table} t WHERE position($1 IN t::text) > 0"
        ))
        .bind(value)
        .fetch_all(&app.pool)
        .await
        .unwrap();
        found.extend(rows.into_iter().map(|r| format!("{table}: {r}")));
    }
    found
}

#[tokio::test]
async fn after_erasure_the_history_replays_but_no_personal_value_can_be_read() {
    let app = spawn_app().await;
    let days = future_canteen_days(2);
    let a = setup_commune(&app, &days).await;
    let b = setup_commune(&app, &days).await;
    app.book(&a, &days).await.data("submitBasket");
    let reservation = espace_famille_domain::reservation::reservation_id(a.child, a.meal, days[0]);
    app.request_cancellation(&a, &json!(reservation))
        .await
        .data("requestCancellation");
    let family = "query($f: UUID!) { family(id: $f) {
        erased guardianEmail guardians { firstName lastName } children { id firstName lastName birthDate }
      } }";

    // Personal values are encrypted at rest from the start: the events
    // never hold them in clear.
    let personal = [a.guardian_email.as_str(), "Louise", "Claire", "2018-04-02"];
    let events_before: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    for value in personal {
        let in_events: i64 =
            sqlx::query_scalar("SELECT count(*) FROM events WHERE payload::text ILIKE '%' || $1 || '%'")
                .bind(value)
                .fetch_one(&app.pool)
                .await
                .unwrap();
        assert_eq!(in_events, 0, "{value} is stored in clear");
    }
    let before = app.gql(Some(&a.parent()), family, json!({ "f": a.family })).await;
    assert_eq!(before.data("family")["children"][0]["firstName"], "Louise");
    assert_eq!(before.data("family")["guardians"][0]["firstName"], "Claire");

    // Only an agent of one of the family's communes may erase it; to
    // another commune's agent it is a family that does not exist.
    let erase = "mutation($f: UUID!) { eraseFamily(familyId: $f) }";
    assert_eq!(
        app.gql(Some(&b.agent()), erase, json!({ "f": a.family }))
            .await
            .error_code(),
        "NOT_FOUND"
    );
    assert_eq!(
        app.gql(Some(&a.parent()), erase, json!({ "f": a.family }))
            .await
            .error_code(),
        "FORBIDDEN"
    );
    assert_eq!(
        app.gql(Some(&a.agent()), erase, json!({ "f": a.family }))
            .await
            .data("eraseFamily"),
        true
    );

    // The events are all still there, one more saying what happened.
    let events_after: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(events_after, events_before + 1);
    let last: String = sqlx::query_scalar(
        "SELECT event_type FROM events WHERE aggregate_type = 'Family' AND aggregate_id = $1 ORDER BY sequence DESC LIMIT 1",
    )
    .bind(a.family.to_string())
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(last, "FamilyErased");

    // The history replays: the family, its reservations, every read model.
    let after = app.gql(Some(&a.agent()), family, json!({ "f": a.family })).await;
    let after = after.data("family");
    assert_eq!(after["erased"], true);
    assert!(after["guardianEmail"].is_null());
    assert_eq!(after["children"][0]["id"], a.child.to_string());
    assert!(after["children"][0]["firstName"].is_null() && after["children"][0]["birthDate"].is_null());
    assert!(after["guardians"][0]["firstName"].is_null());
    let history = app
        .gql(
            Some(&a.agent()),
            "query($id: UUID!) { reservation(id: $id) { status history { eventType } } }",
            json!({ "id": reservation }),
        )
        .await;
    assert_eq!(history.data("reservation")["status"], "CANCELLATION_REQUESTED");
    app.rebuild_all_read_models().await;

    // No personal value anywhere: events, read models, accounts, outbox.
    for value in personal.iter().chain(&["Martin"]) {
        let found = rows_containing(&app, value).await;
        assert!(found.is_empty(), "{value} is still readable: {found:?}");
    }

    // The guardian's account is gone with its sessions; the family takes no
    // new personal data.
    assert_eq!(
        app.gql(Some(&a.parent()), "{ me { email } }", json!({}))
            .await
            .error_code(),
        "UNAUTHENTICATED"
    );
    let login = app
        .gql(
            None,
            "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
            json!({ "e": a.guardian_email, "p": PASSWORD }),
        )
        .await;
    assert_eq!(login.error_code(), "INVALID_CREDENTIALS");
    let register = app
        .gql(
            Some(&a.agent()),
            "mutation($f: UUID!) { registerChild(input: { familyId: $f, firstName: \"Jules\", lastName: \"Durand\", birthDate: \"2019-01-01\" }) { id } }",
            json!({ "f": a.family }),
        )
        .await;
    assert_eq!(register.error_code(), "FAMILY_ERASED");

    // The other family is untouched.
    let other = app.gql(Some(&b.parent()), family, json!({ "f": b.family })).await;
    assert_eq!(other.data("family")["children"][0]["firstName"], "Louise");
    app.stop().await;
}
