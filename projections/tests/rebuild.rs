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
         VALUES ('Reservation', $1, $2, $3, $4, $5::json, '{}')",
    )
    .bind(stream.to_string())
    .bind(sequence)
    .bind(event.event_type())
    .bind(event.event_version())
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
        origin: espace_famille_domain::reservation::Origin::Calendar,
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
        assert_eq!(indexes, 3, "the key and the two indexes are built");
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

/// The calendar's rows in the shadow schema of a rebuild, as text.
async fn shadow_calendar(conn: &mut sqlx::PgConnection) -> Vec<String> {
    sqlx::query_scalar("SELECT c::text FROM calendar_reservations c ORDER BY reservation_id")
        .fetch_all(conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_shadow_is_filled_to_a_position_or_an_instant_compared_and_dropped_without_touching_the_live_calendar(
) {
    let (pool, _) = fresh_database().await;
    engine::register(&pool, &[Arc::new(CalendarProjection) as Arc<dyn Projection>])
        .await
        .unwrap();
    let ids: Vec<Uuid> = (0..4).map(|_| Uuid::new_v4()).collect();
    for (day, id) in (4..).zip(&ids[..2]) {
        record(&pool, *id, 1, requested(day)).await;
    }
    wait_below_horizon(&pool).await;
    let (first_two, between): (i64, chrono::DateTime<chrono::Utc>) =
        sqlx::query_as("SELECT max(global_position), max(recorded_at) FROM events")
            .fetch_one(&pool)
            .await
            .unwrap();
    // Later events, recorded later.
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    for (day, id) in (6..).zip(&ids[2..]) {
        record(&pool, *id, 1, requested(day)).await;
    }
    record(&pool, ids[0], 2, ReservationEvent::ReservationConfirmed).await;
    wait_below_horizon(&pool).await;
    assert_eq!(
        engine::catch_up(&pool, &CalendarProjection, 100).await.unwrap(),
        5
    );
    let live = calendar(&pool).await;
    let checkpoint = |pool: PgPool| async move {
        sqlx::query_scalar::<_, i64>(
            "SELECT last_position FROM projection_checkpoints WHERE name = 'calendar'",
        )
        .fetch_one(&pool)
        .await
        .unwrap()
    };
    let live_checkpoint = checkpoint(pool.clone()).await;
    let position: engine::Until = {
        let transaction: i64 =
            sqlx::query_scalar("SELECT transaction_id::text::bigint FROM events WHERE global_position = $1")
                .bind(first_two)
                .fetch_one(&pool)
                .await
                .unwrap();
        engine::Until::Position(espace_famille_projections::store::Position {
            transaction_id: transaction,
            global_position: first_two,
        })
    };

    // Up to a position: the first two days, nothing after; it differs
    // from the live calendar, which is not touched.
    let projections: [&dyn Projection; 1] = [&CalendarProjection];
    let mut shadow = engine::Shadow::prepare(&pool, &projections, 2).await.unwrap();
    shadow.fill(position).await.unwrap();
    assert_eq!(shadow.events_read(), 2);
    assert_eq!(shadow_calendar(shadow.read().await.unwrap()).await.len(), 2);
    let comparison = shadow.compare(0).await.unwrap();
    // Two reservations requested later, one confirmed later.
    assert_eq!(comparison.differing_rows, 3);
    let only_live = comparison
        .differences
        .iter()
        .filter(|d| d.live.is_some() && d.rebuilt.is_none())
        .count();
    assert_eq!(only_live, 2, "{:#?}", comparison.differences);
    let changed: Vec<_> = comparison
        .differences
        .iter()
        .filter(|d| d.live.is_some() && d.rebuilt.is_some())
        .collect();
    assert_eq!(changed.len(), 1);
    assert_eq!(changed[0].table, "calendar_reservations");
    assert_eq!(
        changed[0].key.as_ref().unwrap()[0],
        ("reservation_id".to_string(), ids[0].to_string())
    );
    let columns: Vec<&str> = changed[0].columns().iter().map(|c| c.0).collect();
    assert!(columns.contains(&"status"), "{columns:?}");
    // Then to the end: it matches.
    shadow.fill(engine::Until::End).await.unwrap();
    assert_eq!(shadow.events_read(), 5);
    assert_eq!(shadow_calendar(shadow.read().await.unwrap()).await, live);
    assert_eq!(shadow.compare(0).await.unwrap(), engine::Comparison::default());
    shadow.discard().await.unwrap();
    assert_eq!(calendar(&pool).await, live);
    assert_eq!(checkpoint(pool.clone()).await, live_checkpoint);

    // As of an instant: the two days recorded by then, neither confirmed;
    // such a shadow cannot replace the live calendar.
    let mut shadow = engine::Shadow::prepare(&pool, &projections, 2).await.unwrap();
    shadow.fill(engine::Until::Recorded(between)).await.unwrap();
    assert_eq!(shadow.events_read(), 5, "every event read");
    let rows = shadow_calendar(shadow.read().await.unwrap()).await;
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|row| row.contains("requested")), "{rows:?}");
    assert!(shadow.swap().await.is_err());
    assert_eq!(calendar(&pool).await, live);
    // The refused swap let the checkpoints go: a live batch takes them at
    // once, and so does a new shadow.
    record(&pool, ids[1], 2, ReservationEvent::ReservationConfirmed).await;
    wait_below_horizon(&pool).await;
    let caught_up = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        engine::catch_up(&pool, &CalendarProjection, 100),
    )
    .await
    .expect("the checkpoints were let go");
    assert_eq!(caught_up.unwrap(), 1);
    engine::Shadow::prepare(&pool, &projections, 2)
        .await
        .unwrap()
        .discard()
        .await
        .unwrap();
}

#[tokio::test]
async fn the_calendar_as_of_an_instant_is_kept_in_a_schema_of_its_own_without_holding_the_live_one_then_dropped(
) {
    let (pool, _) = fresh_database().await;
    engine::register(&pool, &[Arc::new(CalendarProjection) as Arc<dyn Projection>])
        .await
        .unwrap();
    let ids: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();
    for (day, id) in (4..).zip(&ids[..2]) {
        record(&pool, *id, 1, requested(day)).await;
    }
    wait_below_horizon(&pool).await;
    engine::catch_up(&pool, &CalendarProjection, 100).await.unwrap();
    let then = calendar(&pool).await;
    let until: chrono::DateTime<chrono::Utc> = sqlx::query_scalar("SELECT max(recorded_at) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    record(&pool, ids[2], 1, requested(8)).await;
    record(&pool, ids[0], 2, ReservationEvent::ReservationConfirmed).await;
    wait_below_horizon(&pool).await;

    // While a kept shadow is being filled, the live calendar goes on.
    let projections: [&dyn Projection; 1] = [&CalendarProjection];
    let shadow = engine::Shadow::prepare_kept(&pool, &projections, 2, "as_of_held")
        .await
        .unwrap();
    let caught_up = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        engine::catch_up(&pool, &CalendarProjection, 100),
    )
    .await
    .expect("a kept shadow holds no checkpoint");
    assert_eq!(caught_up.unwrap(), 2);
    assert!(
        shadow.swap().await.is_err(),
        "a kept shadow never replaces the live tables"
    );
    let now = calendar(&pool).await;
    assert_ne!(now, then);

    let mut read = 0;
    let kept = engine::keep_as_of(&pool, &projections, until, "as_of_month_end", |n| read += n)
        .await
        .unwrap();
    assert_eq!(read, 4, "every event read");
    assert_eq!(
        (kept.schema_name.as_str(), kept.until, kept.events),
        ("as_of_month_end", until, 2)
    );
    assert_eq!(kept.read_models, ["calendar"]);
    let rows: Vec<String> = sqlx::query_scalar(
        "SELECT c::text FROM as_of_month_end.calendar_reservations c ORDER BY reservation_id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(rows, then, "the calendar as it stood then");
    assert_eq!(calendar(&pool).await, now, "the live one untouched");
    assert_eq!(engine::kept(&pool).await.unwrap(), [kept]);
    // The same name again is refused; nothing but a kept schema drops.
    assert!(
        engine::keep_as_of(&pool, &projections, until, "as_of_month_end", |_| {})
            .await
            .is_err()
    );
    assert!(engine::keep_as_of(&pool, &projections, until, "public", |_| {})
        .await
        .is_err());
    assert!(!engine::drop_kept(&pool, "public").await.unwrap());
    assert!(engine::drop_kept(&pool, "as_of_month_end").await.unwrap());
    assert!(engine::kept(&pool).await.unwrap().is_empty());
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'as_of_%'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(left, 0);
}
