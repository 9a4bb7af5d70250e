//! Single commands written together: each keeps its own metadata, its own
//! position and its own optimistic check.

use espace_famille_domain::reservation::Reservation;
use espace_famille_projections::store::{Appender, StoreError, StreamAppend};
use espace_famille_projections::testing::{agent_metadata, fresh_database, requested};

fn stream(n: usize) -> StreamAppend {
    StreamAppend::new::<Reservation>(format!("stream-{n:03}"), 0, &[requested(n as u128)]).unwrap()
}

#[tokio::test]
async fn commands_arriving_together_share_statements_and_keep_their_own_metadata_and_positions() {
    let (pool, _) = fresh_database().await;
    // One writer: while it writes the first command the others queue, and
    // are then written together.
    let appender = Appender::start(pool.clone(), 1);
    let tasks: Vec<_> = (0..50)
        .map(|n| {
            let appender = appender.clone();
            tokio::spawn(async move {
                appender
                    .append(vec![stream(n)], agent_metadata(&format!("actor-{n}")))
                    .await
            })
        })
        .collect();
    let mut positions = Vec::new();
    for task in tasks {
        positions.push(task.await.unwrap().unwrap().expect("one event written"));
    }

    let rows: Vec<(String, String, i64, i64)> = sqlx::query_as(
        "SELECT aggregate_id, metadata->>'actor_id', transaction_id::text::bigint, global_position
         FROM events ORDER BY aggregate_id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 50);
    for (n, (id, actor, transaction_id, global_position)) in rows.iter().enumerate() {
        assert_eq!(id, &format!("stream-{n:03}"));
        assert_eq!(
            actor,
            &format!("actor-{n}"),
            "each row carries its own command's metadata"
        );
        assert_eq!(positions[n].transaction_id, *transaction_id);
        assert_eq!(positions[n].global_position, *global_position);
    }
    let transactions: i64 = sqlx::query_scalar("SELECT count(DISTINCT transaction_id) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(transactions < 50, "no two commands shared a transaction");
}

#[tokio::test]
async fn a_command_that_lost_its_race_fails_alone() {
    let (pool, _) = fresh_database().await;
    let appender = Appender::start(pool.clone(), 1);
    // Two commands on one stream from the same version, among others: only
    // one of the two can be written.
    let tasks: Vec<_> = (0..20)
        .map(|n| {
            let appender = appender.clone();
            let target = if n == 7 || n == 13 { stream(7) } else { stream(n) };
            tokio::spawn(async move {
                appender
                    .append(vec![target], agent_metadata(&format!("actor-{n}")))
                    .await
            })
        })
        .collect();
    let mut conflicts = 0;
    for (n, task) in tasks.into_iter().enumerate() {
        match task.await.unwrap() {
            Ok(position) => assert!(position.is_some()),
            Err(StoreError::Conflict) if n == 7 || n == 13 => conflicts += 1,
            Err(other) => panic!("command {n}: {other}"),
        }
    }
    assert_eq!(conflicts, 1);
    let written: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(written, 19, "every other command was written once");
}
