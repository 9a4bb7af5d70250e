//! A rebuild of the calendar whose live read model lags behind the store:
//! compared at the live checkpoint, then filled to the last event, it must
//! end exactly where the live read model ends once caught up.

use std::sync::Arc;

use chrono::NaiveDate;
use cqrs_es::DomainEvent;
use espace_famille_domain::reservation::{ReservationEvent, Slot};
use espace_famille_projections::calendar::CalendarProjection;
use espace_famille_projections::engine::{self, Projection};
use espace_famille_projections::testing::{fresh_database, wait_below_horizon};
use sqlx::PgPool;
use uuid::Uuid;

async fn record(pool: &PgPool, stream: Uuid, sequence: i64, event: ReservationEvent) {
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         VALUES ('Reservation', $1, $2, $3, '1', $4::json, '{}')",
    )
    .bind(stream.to_string())
    .bind(sequence)
    .bind(event.event_type())
    .bind(serde_json::to_string(&event).unwrap())
    .execute(pool)
    .await
    .unwrap();
}

fn requested(day: u32) -> ReservationEvent {
    ReservationEvent::ReservationRequested {
        slot: Slot {
            family_id: Uuid::from_u128(1),
            child_id: Uuid::from_u128(7),
            collectivity_id: Uuid::from_u128(2),
            service_id: Uuid::from_u128(3),
            unit_id: Uuid::from_u128(4),
            date: NaiveDate::from_ymd_opt(2027, 1, day).unwrap(),
        },
    }
}

/// Every calendar row, whole, as text.
async fn calendar(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar("SELECT c::text FROM calendar_reservations c ORDER BY reservation_id")
        .fetch_all(pool)
        .await
        .unwrap()
}

/// Puts the live calendar back where it stood at the saved checkpoint.
async fn back_to_saved_checkpoint(pool: &PgPool) {
    for statement in [
        "DELETE FROM calendar_reservations",
        "INSERT INTO calendar_reservations SELECT * FROM calendar_at_checkpoint",
        "UPDATE projection_checkpoints p SET last_transaction_id = s.last_transaction_id,
           last_position = s.last_position FROM saved_checkpoint s WHERE p.name = 'calendar'",
    ] {
        sqlx::query(statement).execute(pool).await.unwrap();
    }
}

#[tokio::test]
async fn a_rebuild_past_a_lagging_live_calendar_compares_at_its_checkpoint_and_ends_as_live_would() {
    let (pool, _) = fresh_database().await;
    engine::register(&pool, &[Arc::new(CalendarProjection) as Arc<dyn Projection>])
        .await
        .unwrap();

    // Up to the live checkpoint: six days requested, three confirmed, one
    // of them cancelled.
    let ids: Vec<Uuid> = (0..9).map(|_| Uuid::new_v4()).collect();
    for (day, id) in (4..).zip(&ids[..6]) {
        record(&pool, *id, 1, requested(day)).await;
    }
    for id in &ids[..3] {
        record(&pool, *id, 2, ReservationEvent::ReservationConfirmed).await;
    }
    record(&pool, ids[2], 3, ReservationEvent::ReservationCancelled).await;
    wait_below_horizon(&pool).await;
    assert_eq!(
        engine::catch_up(&pool, &CalendarProjection, 100).await.unwrap(),
        10
    );
    for statement in [
        "CREATE TABLE calendar_at_checkpoint AS SELECT * FROM calendar_reservations",
        "CREATE TABLE saved_checkpoint AS SELECT * FROM projection_checkpoints WHERE name = 'calendar'",
    ] {
        sqlx::query(statement).execute(&pool).await.unwrap();
    }

    // Past it: later statuses of earlier days, the cancelled day requested
    // again, new days (one confirmed).
    record(&pool, ids[0], 3, ReservationEvent::CancellationRequested).await;
    record(&pool, ids[1], 3, ReservationEvent::CancellationRequested).await;
    record(
        &pool,
        ids[1],
        4,
        ReservationEvent::AgentApproved { comment: None },
    )
    .await;
    record(&pool, ids[2], 4, requested(6)).await;
    record(&pool, ids[3], 2, ReservationEvent::ReservationConfirmed).await;
    for (day, id) in (11..).zip(&ids[6..]) {
        record(&pool, *id, 1, requested(day)).await;
    }
    record(&pool, ids[6], 2, ReservationEvent::ReservationConfirmed).await;
    wait_below_horizon(&pool).await;
    assert_eq!(
        engine::catch_up(&pool, &CalendarProjection, 100).await.unwrap(),
        9
    );
    let caught_up = calendar(&pool).await;
    assert_eq!(caught_up.len(), 9);

    // Batches of one stage every later status; larger ones fold them.
    for batch in [1, 2, 5, 1000] {
        back_to_saved_checkpoint(&pool).await;
        assert_eq!(calendar(&pool).await.len(), 6);
        let rebuild = engine::rebuild_in_batches(&pool, &[&CalendarProjection], batch)
            .await
            .unwrap();
        assert_eq!(rebuild.events, 19);
        assert!(
            rebuild.reports[0].matched_live,
            "batches of {batch}: compared at the live checkpoint"
        );
        assert_eq!(calendar(&pool).await, caught_up, "batches of {batch}");
        let indexes: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_indexes WHERE schemaname = 'public' AND tablename = 'calendar_reservations'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(indexes, 2, "the key and the index are built");
        assert_eq!(
            engine::catch_up(&pool, &CalendarProjection, 100).await.unwrap(),
            0
        );
    }

    // A live row damaged before the checkpoint is found, and repaired.
    back_to_saved_checkpoint(&pool).await;
    sqlx::query("UPDATE calendar_reservations SET status = 'confirmed' WHERE reservation_id = $1")
        .bind(ids[4])
        .execute(&pool)
        .await
        .unwrap();
    let rebuild = engine::rebuild_in_batches(&pool, &[&CalendarProjection], 3)
        .await
        .unwrap();
    assert!(!rebuild.reports[0].matched_live);
    assert_eq!(calendar(&pool).await, caught_up);
}
