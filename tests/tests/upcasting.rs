//! A booking stored before `ReservationRequested` recorded its origin
//! (version 1) reads as version 2 everywhere: the aggregate a command
//! loads, the history, the state as of an instant, the live read models
//! and their replay, the export; the stored event itself is untouched.

use std::time::Duration;

use espace_famille_api::app::Settings;
use espace_famille_api::cli::audit::{export, Format};
use espace_famille_domain::reservation::reservation_id;
use espace_famille_tests::*;
use serde_json::{json, Value};
use uuid::Uuid;

const HISTORY: &str = "query($id: UUID!) {
  history(aggregate: RESERVATION, id: $id, first: 10) { events { eventType eventVersion payload } }
}";

/// Writes a reservation's request and confirmation as version 1 stored
/// them: the slot alone.
async fn store_as_version_1(app: &TestApp, fixture: &Fixture, day: chrono::NaiveDate) -> Uuid {
    let slot = slot_of(fixture, fixture.child, fixture.family, day);
    let id = reservation_id(fixture.child, fixture.meal, day);
    let command = Uuid::new_v4();
    let metadata = json!({
        "actor_id": "parent@example.fr", "actor_role": "parent", "command_id": command,
        "causation_id": command, "correlation_id": command, "requested_at": chrono::Utc::now(),
    });
    let mut tx = app.pool.begin().await.unwrap();
    for (sequence, event_type, payload) in [
        (
            1,
            "ReservationRequested",
            json!({ "ReservationRequested": { "slot": slot } }),
        ),
        (2, "ReservationConfirmed", json!("ReservationConfirmed")),
    ] {
        sqlx::query(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
             VALUES ('Reservation', $1, $2, $3, '1', $4::json, $5::json)",
        )
        .bind(id.to_string())
        .bind(sequence)
        .bind(event_type)
        // As text: compact, as the store writes it.
        .bind(payload.to_string())
        .bind(metadata.to_string())
        .execute(&mut *tx)
        .await
        .unwrap();
    }
    tx.commit().await.unwrap();
    id
}

async fn calendar_status(app: &TestApp, id: Uuid, expected: &str) {
    for _ in 0..100 {
        let status: Option<String> =
            sqlx::query_scalar("SELECT status FROM calendar_reservations WHERE reservation_id = $1")
                .bind(id)
                .fetch_optional(&app.pool)
                .await
                .unwrap();
        if status.as_deref() == Some(expected) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the calendar never showed {id} {expected}");
}

#[tokio::test]
async fn a_request_stored_at_version_1_reads_as_version_2_everywhere_and_replays_equal() {
    let app = spawn_app().await;
    let days = future_canteen_days(2);
    let fixture = setup_commune(&app, &days).await;
    let old = store_as_version_1(&app, &fixture, days[0]).await;
    let booked = app.book(&fixture, &days[1..]).await;
    let new = booked.data("submitBasket")["lines"][0]["reservationId"].clone();

    // The live calendar applied it.
    calendar_status(&app, old, "confirmed").await;
    // The history shows the current version, the origin unrecorded; the
    // booking made today says where it came from.
    let history = app
        .gql(Some(&fixture.agent()), HISTORY, json!({ "id": old }))
        .await;
    let first = &history.data("history")["events"][0];
    assert_eq!(first["eventType"], "ReservationRequested");
    assert_eq!(first["eventVersion"], "2");
    assert_eq!(first["payload"]["ReservationRequested"]["origin"], "Unrecorded");
    assert_eq!(
        first["payload"]["ReservationRequested"]["slot"]["date"],
        json!(days[0])
    );
    let today = app
        .gql(Some(&fixture.agent()), HISTORY, json!({ "id": new }))
        .await;
    let today = &today.data("history")["events"][0];
    assert_eq!(
        (
            today["eventVersion"].as_str(),
            &today["payload"]["ReservationRequested"]["origin"]
        ),
        (Some("2"), &json!("Calendar"))
    );
    // Its state, now and as of an instant.
    let read = "query($id: UUID!, $at: DateTime) { reservation(id: $id, asOf: $at) { status } }";
    let now = app
        .gql(
            Some(&fixture.parent()),
            read,
            json!({ "id": old, "at": chrono::Utc::now() }),
        )
        .await;
    assert_eq!(now.data("reservation")["status"], "CONFIRMED");

    // The export gives it as the history does.
    let settings = Settings::new(&app.database_url);
    let mut out = Vec::new();
    export(
        &settings,
        fixture.collectivity,
        Default::default(),
        Format::Jsonl,
        &mut out,
    )
    .await
    .unwrap();
    let exported: Vec<Value> = String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .filter(|line: &Value| line["aggregate_id"] == json!(old) && line["sequence"] == 1)
        .collect();
    assert_eq!(exported.len(), 1);
    assert_eq!(exported[0]["event_version"], "2");
    assert_eq!(exported[0]["payload"], first["payload"]);

    // A command loads it: the parent asks to cancel the booking (this
    // commune's agents approve cancellations).
    let cancelled = app.request_cancellation(&fixture, &json!(old)).await;
    assert_eq!(
        cancelled.data("requestCancellation")["status"],
        "CANCELLATION_REQUESTED"
    );
    calendar_status(&app, old, "cancellation_requested").await;
    // Replayed from the first event, every read model equals the live one.
    app.rebuild_all_read_models().await;
    // The store holds what was written: version 1, its chain intact.
    let stored: (String, Value) = sqlx::query_as(
        "SELECT event_version, payload::jsonb FROM events WHERE aggregate_id = $1 AND sequence = 1",
    )
    .bind(old.to_string())
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(stored.0, "1");
    assert!(stored.1["ReservationRequested"].get("origin").is_none());
    let verified = espace_famille_projections::store::integrity::verify(&app.pool, &[], |_| {})
        .await
        .unwrap();
    assert!(verified.clean(), "{:#?}", verified.findings);
}
