//! Two server processes on one database, as behind a load balancer: one
//! active projection runner per group of projections between them, and a booking made
//! through one is visible through the other when the mutation returns.

use std::time::Duration;

use espace_famille_tests::*;

async fn runner_locks(app: &TestApp) -> i64 {
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_locks
         WHERE locktype = 'advisory' AND classid = 4242 AND granted
           AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

#[tokio::test]
async fn two_servers_share_the_work_and_each_sees_the_others_bookings() {
    let first = spawn_app().await;
    let second = spawn_beside(&first).await;
    let days = future_canteen_days(6);
    let fixture = setup_commune(&first, &days).await;

    // Give the second server's standby runners time to try for the locks.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let projections: i64 = sqlx::query_scalar("SELECT count(*) FROM projection_checkpoints")
        .fetch_one(&first.pool)
        .await
        .unwrap();
    assert!(projections >= 4, "read models and process managers");
    assert_eq!(
        runner_locks(&first).await,
        2,
        "one active runner per group (the read models, the invitations) between both servers"
    );

    for (i, day) in days.iter().enumerate() {
        let (writer, reader) = if i % 2 == 0 {
            (&first, &second)
        } else {
            (&second, &first)
        };
        let outcome = writer.book(&fixture, &[*day]).await;
        assert_eq!(outcome.data("submitBasket")["status"], "ACCEPTED");
        let shown = reader.calendar(&fixture, *day, *day).await;
        assert_eq!(
            shown.data("calendar")[0]["status"],
            "CONFIRMED",
            "{day} through the other server"
        );
    }

    // The first server stops; the second takes over its runners.
    first.stop().await;
    let last = future_canteen_days(7)[6];
    let outcome = second.book(&fixture, &[last]).await;
    assert_eq!(outcome.data("submitBasket")["status"], "ACCEPTED");
    let shown = second.calendar(&fixture, last, last).await;
    assert_eq!(shown.data("calendar")[0]["status"], "CONFIRMED");
    second.stop().await;
}
