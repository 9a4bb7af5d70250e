//! A transaction left open elsewhere on the PostgreSQL server — in another
//! database (a report, another application sharing the server), or here
//! without writing an event — does not hold the projections back: a
//! basket is answered at once and the calendar shows it.

use espace_famille_tests::*;
use std::time::{Duration, Instant};

async fn baskets_answer_at_once_and_show(app: &TestApp, fixture: &Fixture) {
    let days = future_canteen_days(3);
    for day in &days {
        let started = Instant::now();
        let outcome = app.book(fixture, std::slice::from_ref(day)).await;
        assert_eq!(outcome.data("submitBasket")["status"], "ACCEPTED");
        // Read-your-writes gives up after 5 s; before the fence, every
        // basket waited that long.
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "answered after {:?}",
            started.elapsed()
        );
        let calendar = app.calendar(fixture, *day, *day).await;
        assert_eq!(
            calendar.data("calendar")[0]["status"],
            "CONFIRMED",
            "{}",
            calendar.0
        );
    }
}

#[tokio::test]
async fn a_transaction_open_in_another_database_does_not_delay_the_calendar() {
    let app = spawn_app().await;
    let fixture = setup_commune(&app, &future_canteen_days(3)).await;
    let (other, _) = espace_famille_projections::testing::fresh_database().await;
    let mut open = other.begin().await.unwrap();
    sqlx::query("CREATE TABLE report (n int)")
        .execute(&mut *open)
        .await
        .unwrap();
    baskets_answer_at_once_and_show(&app, &fixture).await;
    open.rollback().await.unwrap();
}

#[tokio::test]
async fn a_transaction_open_here_that_writes_no_event_does_not_delay_the_calendar() {
    let app = spawn_app().await;
    let fixture = setup_commune(&app, &future_canteen_days(3)).await;
    let mut open = app.pool.begin().await.unwrap();
    sqlx::query("UPDATE accounts SET email = email WHERE false")
        .execute(&mut *open)
        .await
        .unwrap();
    sqlx::query("CREATE TABLE report (n int)")
        .execute(&mut *open)
        .await
        .unwrap();
    baskets_answer_at_once_and_show(&app, &fixture).await;
    open.rollback().await.unwrap();
}
