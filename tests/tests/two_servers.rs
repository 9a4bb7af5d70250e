//! Two server processes on one database, as behind a load balancer: one
//! active projection runner per group of projections between them, and a booking made
//! through one is visible through the other when the mutation returns.

use std::time::Duration;

use serde_json::json;
use uuid::Uuid;

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
    assert!(projections >= 6, "read models and process managers");
    // The read models' groups (the directory, bookings, which the
    // decisions' e-mails join, the invoices and the requests), the
    // invitations' and the promotions'.
    let groups = espace_famille_projections::read_model_groups().len() + 2;
    assert_eq!(groups, 6);
    assert_eq!(
        runner_locks(&first).await,
        groups as i64,
        "one active runner per group between both servers"
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

/// Communes and families are kept in memory by each server: a change made
/// through one server must show through the other at once.
#[tokio::test]
async fn a_change_made_through_one_server_shows_at_once_through_the_other() {
    let first = spawn_app().await;
    let second = spawn_beside(&first).await;
    let days = future_canteen_days(2);
    let fixture = setup_commune(&first, &days).await;
    let token = fixture.parent();
    let calendar = |app, child, unit| one_day(app, &token, child, unit, days[0]);
    // The second server reads (and keeps) the commune and the family.
    let shown = calendar(&second, fixture.child, fixture.meal).await;
    assert_eq!(shown.data("calendar")[0]["canBook"], true);

    // A unit added through the first server is known to the second.
    let snack = Uuid::new_v4();
    first
        .gql(
            Some(&fixture.agent_token),
            "mutation($c: UUID!, $s: UUID!, $u: UUID!) {
               addUnit(input: {
                 collectivityId: $c, id: $u, serviceId: $s, name: \"Goûter\",
                 weekdays: [MON, TUE, THU, FRI], openDuring: SCHOOL_TERMS, billing: MONTHLY,
                 bookingDeadline: { daysBefore: { days: 1, at: \"18:00\", skipWeekends: false } },
                 cancellationDeadline: { daysBefore: { days: 1, at: \"18:00\", skipWeekends: false } },
                 cancellationNeedsApproval: false
               }) { id }
             }",
            json!({ "c": fixture.collectivity, "s": fixture.canteen, "u": snack }),
        )
        .await
        .data("addUnit");
    let shown = calendar(&second, fixture.child, snack).await;
    assert_eq!(shown.data("calendar")[0]["canBook"], true, "{shown:?}");

    // A child registered through the first server, not enrolled yet: the
    // second server says so, then sees the enrolment.
    let brother = Uuid::new_v4();
    first
        .gql(
            Some(&fixture.parent()),
            "mutation($f: UUID!, $k: UUID!) {
               registerChild(input: {
                 familyId: $f, id: $k, firstName: \"Paul\", lastName: \"Martin\", birthDate: \"2016-09-12\"
               }) { id }
             }",
            json!({ "f": fixture.family, "k": brother }),
        )
        .await
        .data("registerChild");
    // A basket through the second server checks against the family it
    // keeps, brought up to date: the brother is known, not enrolled.
    let outcome = book_child(&second, &fixture, brother, days[0]).await;
    assert_eq!(
        outcome["lines"][0]["refusal"]["code"], "NOT_ENROLLED",
        "{outcome}"
    );
    let shown = calendar(&second, brother, fixture.meal).await;
    assert_eq!(shown.data("calendar")[0]["canBook"], false);
    assert_eq!(
        shown.data("calendar")[0]["bookRefusal"]["code"],
        "NOT_ENROLLED",
        "{shown:?}"
    );
    for year in school_years(&days) {
        first
            .gql(
                Some(&fixture.agent_token),
                "mutation($f: UUID!, $k: UUID!, $c: UUID!, $s: UUID!, $y: Int!) {
                   enrolChild(input: { familyId: $f, childId: $k, collectivityId: $c, serviceId: $s, schoolYear: $y }) { id }
                 }",
                json!({ "f": fixture.family, "k": brother, "c": fixture.collectivity, "s": fixture.canteen, "y": year }),
            )
            .await
            .data("enrolChild");
    }
    let outcome = book_child(&second, &fixture, brother, days[0]).await;
    assert_eq!(outcome["status"], "ACCEPTED", "{outcome}");
    let shown = calendar(&second, brother, fixture.meal).await;
    assert_eq!(shown.data("calendar")[0]["status"], "CONFIRMED", "{shown:?}");
    first.stop().await;
    second.stop().await;
}

/// The parent books one day for one child; the basket's outcome.
async fn book_child(
    app: &TestApp,
    fixture: &Fixture,
    child: Uuid,
    day: chrono::NaiveDate,
) -> serde_json::Value {
    let lines = json!([{ "action": "BOOK", "childId": child, "unitId": fixture.meal, "date": day }]);
    let input = json!({ "basketId": Uuid::new_v4(), "familyId": fixture.family, "lines": lines });
    let outcome = app
        .gql(Some(&fixture.parent()), SUBMIT_BASKET, json!({ "input": input }))
        .await;
    outcome.data("submitBasket").clone()
}

/// One child's calendar for one day in one unit.
async fn one_day(app: &TestApp, token: &str, child: Uuid, unit: Uuid, day: chrono::NaiveDate) -> Response {
    app.gql(
        Some(token),
        CALENDAR,
        json!({ "child": child, "unit": unit, "from": day, "to": day }),
    )
    .await
}
