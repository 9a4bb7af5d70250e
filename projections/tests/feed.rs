//! The auditor's feed reads the store a window at a time: a commune's few
//! events among many others are all found, in commit order, and the feed
//! says where the store ends.

use espace_famille_projections::store::{commune_events, Commune, FeedFilter, Position, WINDOW};
use espace_famille_projections::testing::{fresh_database, wait_below_horizon};
use uuid::Uuid;

/// `count` reservations' first events, each in a stream of its own, for
/// `commune`, their payloads as compact as the store writes them.
async fn reservations(pool: &sqlx::PgPool, commune: Uuid, count: i64) {
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         SELECT 'Reservation', gen_random_uuid()::text, 1, 'ReservationRequested', '1',
                ('{\"ReservationRequested\":{\"slot\":{\"collectivity_id\":\"' || $1::uuid
                 || '\",\"date\":\"2027-01-04\"}}}')::json,
                '{\"actor_id\": \"a\", \"correlation_id\": \"c\"}'::json
         FROM generate_series(1, $2)",
    )
    .bind(commune)
    .bind(count)
    .execute(pool)
    .await
    .unwrap();
}

#[tokio::test]
async fn a_communes_few_events_among_many_are_all_read_window_after_window() {
    let (pool, _) = fresh_database().await;
    let (ours, theirs) = (Uuid::new_v4(), Uuid::new_v4());
    reservations(&pool, theirs, WINDOW + 5).await;
    reservations(&pool, ours, 2).await;
    reservations(&pool, theirs, WINDOW * 2).await;
    reservations(&pool, ours, 1).await;
    wait_below_horizon(&pool).await;
    let commune = Commune {
        collectivity_id: ours,
        unit_ids: Vec::new(),
        numbers_ids: Vec::new(),
    };
    let mut found = Vec::new();
    let mut windows = 0;
    let mut after = Some(Position::default());
    while let Some(from) = after {
        let window = commune_events(&pool, &commune, from, 100, &FeedFilter::default())
            .await
            .unwrap();
        assert!(window
            .events
            .iter()
            .all(|e| e.payload.contains(&ours.to_string())));
        found.extend(window.events);
        after = window.next;
        windows += 1;
        assert!(windows < 10, "the feed does not end");
    }
    assert_eq!(found.len(), 3);
    assert!(found.windows(2).all(|w| w[0].position < w[1].position));
    assert!(windows >= 4, "{windows} windows for {} events", WINDOW * 3 + 8);
    // The first window holds none of them, and says where to go on; a
    // page of one event ends at it.
    let first = commune_events(&pool, &commune, Position::default(), 1, &FeedFilter::default())
        .await
        .unwrap();
    assert!(first.events.is_empty());
    let one = commune_events(&pool, &commune, first.next.unwrap(), 1, &FeedFilter::default())
        .await
        .unwrap();
    assert_eq!(one.events.len(), 1);
    assert_eq!(one.next, Some(one.events[0].position));
}
