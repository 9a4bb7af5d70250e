//! An event a read model cannot apply, in a running server: that read
//! model stops at it and says so, the others go on, and requests do not
//! wait for the stopped one.

use espace_famille_projections::engine::failures;
use espace_famille_tests::*;
use serde_json::json;
use uuid::Uuid;

#[tokio::test]
async fn an_event_the_calendar_cannot_apply_stops_it_alone_and_is_reported() {
    let app = spawn_app().await;
    let days = future_canteen_days(1);
    let fixture = setup_commune(&app, &days).await;
    // An event no read model of reservations can decode, as a bug or a
    // hand-made insert would leave it.
    let bad: Uuid = sqlx::query_scalar(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         VALUES ('Reservation', $1, 1, 'ReservationMangled', '1', '{\"Mangled\": {}}', '{}')
         RETURNING event_id",
    )
    .bind(Uuid::new_v4().to_string())
    .fetch_one(&app.pool)
    .await
    .unwrap();
    // Nudge the runners rather than wait for their poll.
    sqlx::query("SELECT pg_notify('events_appended', '')")
        .execute(&app.pool)
        .await
        .unwrap();
    let mut stopped = Vec::new();
    for _ in 0..200 {
        stopped = failures::list(&app.pool).await.unwrap();
        if !stopped.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    let names: Vec<&str> = stopped.iter().map(|f| f.projection.as_str()).collect();
    // The work queue reads only the events it knows by their type.
    assert_eq!(names, ["calendar"], "{stopped:?}");
    assert!(stopped.iter().all(|f| f.event_id == bad));

    // The directory goes on, and a mutation does not wait for the stopped
    // read models (it would wait out its 5 s).
    let child = Uuid::new_v4();
    let started = std::time::Instant::now();
    app.gql(
        Some(&fixture.parent()),
        "mutation($f: UUID!, $k: UUID!) {
           registerChild(input: { familyId: $f, id: $k, firstName: \"Jules\", lastName: \"Martin\", birthDate: \"2019-01-01\" }) { id }
         }",
        json!({ "f": fixture.family, "k": child }),
    )
    .await
    .data("registerChild");
    assert!(
        started.elapsed() < std::time::Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let listed: bool =
        sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM directory_children WHERE child_id = $1)")
            .bind(child)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert!(listed, "the directory applied the events after the bad one");

    // Readiness names what stopped, and where.
    let ready = reqwest::get(format!("{}/health/ready", app.address))
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let text = ready.text().await.unwrap();
    assert!(
        text.contains("calendar stopped at event") && text.contains(&bad.to_string()),
        "{text}"
    );
    let status = failures::status(&app.pool).await.unwrap();
    let calendar = status.iter().find(|s| s.projection == "calendar").unwrap();
    assert!(calendar.behind >= 1 && calendar.failure.is_some());
    for going in ["directory", "agent_work_queue"] {
        let status = status.iter().find(|s| s.projection == going).unwrap();
        assert!(status.failure.is_none(), "{going}: {status:?}");
    }
}
