//! `GET /metrics`: what happened, counted, in the Prometheus text format.
//! One test in this binary: the counters are the process's.

use espace_famille_tests::*;
use serde_json::json;
use uuid::Uuid;

/// The value of the series `name` with exactly these labels.
fn value(page: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    page.lines().filter(|l| !l.starts_with('#')).find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        let (series_name, found) = match series.split_once('{') {
            Some((n, rest)) => (n, rest.strip_suffix('}')?),
            None => (series, ""),
        };
        if series_name != name {
            return None;
        }
        let mut pairs: Vec<(String, String)> = found
            .split("\",")
            .filter(|p| !p.is_empty())
            .filter_map(|p| {
                let (k, v) = p.split_once("=\"")?;
                Some((k.to_string(), v.trim_end_matches('"').to_string()))
            })
            .collect();
        let mut wanted: Vec<(String, String)> = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        pairs.sort();
        wanted.sort();
        (pairs == wanted).then(|| value.parse().ok()).flatten()
    })
}

#[tokio::test]
async fn the_metrics_page_counts_requests_baskets_logins_notifications_and_reads_the_projections() {
    let app = spawn_app().await;
    let days = future_canteen_days(3);
    let fixture = setup_commune(&app, &days).await;

    let basket = json!({ "input": { "basketId": Uuid::new_v4(), "familyId": fixture.family, "lines": book_lines(&fixture, &days) } });
    for _ in 0..2 {
        let outcome = app
            .gql(Some(&fixture.parent()), SUBMIT_BASKET, basket.clone())
            .await;
        assert_eq!(outcome.data("submitBasket")["status"], "ACCEPTED");
    }
    let refused = app
        .gql(
            None,
            "mutation { login(email: \"personne@example.fr\", password: \"pas le bon\") { token } }",
            json!({}),
        )
        .await;
    assert_eq!(refused.error_code(), "INVALID_CREDENTIALS");
    let unknown = app.gql(None, "{ aFieldNoSchemaHas }", json!({})).await;
    assert_eq!(unknown.error_code(), "GRAPHQL_VALIDATION_FAILED");
    let client = reqwest::Client::new();
    let forged = client
        .post(format!("{}/paiement/notification", app.address))
        .body("operation=inconnue")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 401);

    let page = client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    let page = page.text().await.unwrap();
    let series = |name: &str, labels: &[(&str, &str)]| {
        value(&page, name, labels).unwrap_or_else(|| panic!("no {name} {labels:?} in\n{page}"))
    };

    // The basket once written, once answered again from its receipt.
    assert_eq!(
        series("espace_famille_baskets_total", &[("status", "accepted")]),
        1.0
    );
    assert_eq!(
        series("espace_famille_baskets_total", &[("status", "replayed")]),
        1.0
    );
    assert_eq!(
        series("espace_famille_basket_lines_written_total", &[]),
        days.len() as f64
    );
    // Requests by kind, operation and outcome; a field the schema does not
    // have names nothing.
    let submitted = [
        ("kind", "mutation"),
        ("operation", "submitBasket"),
        ("code", "OK"),
    ];
    assert_eq!(series("espace_famille_graphql_requests_total", &submitted), 2.0);
    let failed_login = [
        ("kind", "mutation"),
        ("operation", "login"),
        ("code", "INVALID_CREDENTIALS"),
    ];
    assert_eq!(
        series("espace_famille_graphql_requests_total", &failed_login),
        1.0
    );
    let invalid = [
        ("kind", "invalid"),
        ("operation", "invalid"),
        ("code", "GRAPHQL_VALIDATION_FAILED"),
    ];
    assert_eq!(series("espace_famille_graphql_requests_total", &invalid), 1.0);
    assert!(!page.contains("aFieldNoSchemaHas"), "{page}");
    let latency = [("kind", "mutation"), ("operation", "submitBasket")];
    assert_eq!(
        series("espace_famille_graphql_request_duration_seconds_count", &latency),
        2.0
    );
    assert_eq!(
        series(
            "espace_famille_payment_notifications_total",
            &[("result", "forged")]
        ),
        1.0
    );

    // What the database knows, read for the page: the calendar applied
    // the basket (the write waited for it), nothing stopped.
    let head: i64 = sqlx::query_scalar("SELECT max(global_position) FROM events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let calendar = series(
        "espace_famille_projection_position",
        &[("projection", "calendar")],
    );
    assert!(calendar > 0.0 && calendar <= head as f64, "{calendar} of {head}");
    let lag = series(
        "espace_famille_projection_lag_events",
        &[("projection", "calendar")],
    );
    assert!(lag >= 0.0 && lag <= head as f64 - calendar, "{lag}");
    let behind = series(
        "espace_famille_projection_lag_seconds",
        &[("projection", "calendar")],
    );
    assert!((0.0..60.0).contains(&behind), "{behind}");
    assert_eq!(
        series("espace_famille_projection_stopped", &[("projection", "calendar")]),
        0.0
    );
    assert!(series("espace_famille_outbox_unsent", &[("state", "waiting")]) >= 0.0);
    assert_eq!(
        series("espace_famille_outbox_unsent", &[("state", "given_up")]),
        0.0
    );
    // A message the delivery gave up on, and a read model stopped at an
    // event, count as such.
    sqlx::query("INSERT INTO outbox (id, subject, attempts) VALUES ($1, 'Objet', 10)")
        .bind(Uuid::new_v4())
        .execute(&app.pool)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO projection_failures (projection, transaction_id, global_position, event_id, error, next_attempt_at)
         VALUES ('requests', '1', 1, $1, 'an error', now() + interval '1 hour')",
    )
    .bind(Uuid::new_v4())
    .execute(&app.pool)
    .await
    .unwrap();
    let again = client
        .get(format!("{}/metrics", app.address))
        .send()
        .await
        .unwrap();
    let again = again.text().await.unwrap();
    assert_eq!(
        value(&again, "espace_famille_outbox_unsent", &[("state", "given_up")]),
        Some(1.0)
    );
    assert_eq!(
        value(
            &again,
            "espace_famille_projection_stopped",
            &[("projection", "requests")]
        ),
        Some(1.0)
    );
    assert_eq!(
        value(
            &again,
            "espace_famille_projection_stopped",
            &[("projection", "calendar")]
        ),
        Some(0.0)
    );
    assert_eq!(
        series("espace_famille_db_pool_connections", &[("state", "max")]),
        16.0
    );
    let in_use = series("espace_famille_db_pool_connections", &[("state", "in_use")]);
    assert!((0.0..=16.0).contains(&in_use), "{in_use}");
    app.stop().await;
}
