//! `replay` from the command line against a running server: the read
//! models rebuilt and compared row by row, nothing live changed without
//! `--swap`; and `replay --until` keeping the read models as they stood at
//! an instant in a schema an auditor reads, then dropping it.

use std::process::ExitCode;
use std::time::Duration;

use espace_famille_api::app::Settings;
use espace_famille_api::cli::replay;
use espace_famille_tests::*;
use serde_json::json;
use uuid::Uuid;

/// Every row of a read model's table in `schema`, as text, by key.
async fn rows(app: &TestApp, schema: &str, table: &str, key: &str) -> Vec<String> {
    sqlx::query_scalar(&format!("SELECT t::text FROM {schema}.{table} t ORDER BY {key}"))
        .fetch_all(&app.pool)
        .await
        .unwrap()
}

/// The calendar, the invoices and the attendance in `schema`.
async fn read_models(app: &TestApp, schema: &str) -> [Vec<String>; 3] {
    [
        rows(app, schema, "calendar_reservations", "reservation_id").await,
        rows(app, schema, "invoices", "invoice_id").await,
        rows(app, schema, "attendance", "reservation_id").await,
    ]
}

/// Waits until the query counts `expected` rows.
async fn until_counted(app: &TestApp, sql: &str, expected: i64) {
    for _ in 0..100 {
        let counted: i64 = sqlx::query_scalar(sql).fetch_one(&app.pool).await.unwrap();
        if counted == expected {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{sql} never counted {expected}");
}

fn text(out: Vec<u8>) -> String {
    String::from_utf8(out).unwrap()
}

#[tokio::test]
async fn replay_reports_each_differing_row_changes_nothing_without_swap_and_keeps_a_past_instant_for_the_auditor(
) {
    let app = spawn_app().await;
    let days = last_month_days(2);
    let fixture = setup_commune(&app, &days).await;
    flat_tariff(&app, &fixture, fixture.meal, days[0], 350).await;
    seed_confirmed(&app, &fixture, &days).await;
    roll_call(&app, &fixture, days[0], true).await;
    let billed = app
        .gql(
            Some(&fixture.agent()),
            "mutation($c: UUID!, $m: String!) { billMonth(collectivityId: $c, month: $m) { issued } }",
            json!({ "c": fixture.collectivity, "m": days[0].format("%Y-%m").to_string() }),
        )
        .await;
    assert_eq!(billed.data("billMonth")["issued"], 1);
    until_counted(&app, "SELECT count(*) FROM invoices WHERE status = 'issued'", 1).await;
    until_counted(
        &app,
        "SELECT count(*) FROM attendance WHERE presence = 'present'",
        1,
    )
    .await;
    until_counted(&app, "SELECT count(*) FROM calendar_reservations", 2).await;
    // The month's end, as the auditor will ask for it.
    let month_end = chrono::Utc::now();
    let then = read_models(&app, "public").await;
    tokio::time::sleep(Duration::from_millis(20)).await;

    // Later: the second day's roll call.
    roll_call(&app, &fixture, days[1], false).await;
    until_counted(
        &app,
        "SELECT count(*) FROM attendance WHERE presence = 'absent'",
        1,
    )
    .await;
    let now = read_models(&app, "public").await;
    assert_ne!(now[2], then[2], "the attendance changed since");

    let settings = Settings::new(&app.database_url);
    let mut out = Vec::new();
    assert_eq!(
        replay::until(&settings, month_end, None, &mut out).await.unwrap(),
        ExitCode::SUCCESS
    );
    let schema = replay::schema_for(month_end);
    assert!(text(out).contains(&format!("in the schema {schema}")));
    assert_eq!(
        read_models(&app, &schema).await,
        then,
        "the read models as they stood then"
    );
    assert_eq!(read_models(&app, "public").await, now, "nothing live changed");
    let mut out = Vec::new();
    replay::list(&settings, &mut out).await.unwrap();
    assert!(text(out).contains(&schema));
    // Asked again under the same name, it refuses rather than replace it.
    assert!(replay::until(&settings, month_end, None, &mut Vec::new())
        .await
        .is_err());
    assert!(
        replay::until(&settings, month_end, Some("public".into()), &mut Vec::new())
            .await
            .is_err()
    );
    let mut out = Vec::new();
    assert_eq!(
        replay::drop(&settings, &schema, &mut out).await.unwrap(),
        ExitCode::SUCCESS
    );
    assert_eq!(
        replay::drop(&settings, &schema, &mut Vec::new()).await.unwrap(),
        ExitCode::FAILURE,
        "dropped once"
    );
    assert_eq!(
        replay::drop(&settings, "public", &mut Vec::new()).await.unwrap(),
        ExitCode::FAILURE,
        "only what replay --until kept"
    );

    // A row of the live attendance changed by hand: replay names it, key
    // and column, and leaves it as it is.
    let tampered: Uuid = sqlx::query_scalar(
        "UPDATE attendance SET presence = 'present' WHERE presence = 'absent' RETURNING reservation_id",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    let mut out = Vec::new();
    assert_eq!(
        replay::compare(&settings, false, &mut out).await.unwrap(),
        ExitCode::from(1)
    );
    let printed = text(out);
    assert!(
        printed.contains("attendance           applied in")
            && printed.contains("1 row DIFFERS from the live read model"),
        "{printed}"
    );
    assert!(
        printed.contains(&format!("  attendance reservation_id={tampered}\n")),
        "{printed}"
    );
    assert!(
        printed.contains("    presence: live \"present\" | rebuilt \"absent\""),
        "{printed}"
    );
    assert!(printed.contains("nothing live changed"), "{printed}");
    let presence = || async {
        sqlx::query_scalar::<_, String>("SELECT presence FROM attendance WHERE reservation_id = $1")
            .bind(tampered)
            .fetch_one(&app.pool)
            .await
            .unwrap()
    };
    assert_eq!(
        presence().await,
        "present",
        "without --swap, nothing live changes"
    );
    // With --swap, the rebuilt tables replace the live ones.
    assert_eq!(
        replay::compare(&settings, true, &mut Vec::new()).await.unwrap(),
        ExitCode::from(1)
    );
    assert_eq!(presence().await, "absent");
    let mut out = Vec::new();
    assert_eq!(
        replay::compare(&settings, false, &mut out).await.unwrap(),
        ExitCode::SUCCESS
    );
    assert!(!text(out).contains("DIFFER"), "the swap repaired it");
    // The server carries on over the swapped tables.
    roll_call(&app, &fixture, days[1], true).await;
    until_counted(
        &app,
        "SELECT count(*) FROM attendance WHERE presence = 'present'",
        2,
    )
    .await;
}
