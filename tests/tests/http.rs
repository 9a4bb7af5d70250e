//! The HTTP layer as a careless or hostile client meets it: bodies too
//! large, media types another site can post, connections that send
//! nothing, documents that ask for too much, and the answers the GraphQL
//! over HTTP specification requires.

use std::time::{Duration, Instant};

use espace_famille_tests::*;
use serde_json::{json, Value};
use tokio::io::AsyncWriteExt;

async fn post(app: &TestApp, content_type: &str, accept: Option<&str>, body: Vec<u8>) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(format!("{}/graphql", app.address))
        .header("content-type", content_type)
        .body(body);
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    request.send().await.expect("the server did not answer")
}

#[tokio::test]
async fn a_body_over_the_limit_is_refused_at_once_with_413() {
    let app = spawn_app().await;
    let started = Instant::now();
    let huge = format!(
        "{{\"query\": \"{{ me {{ accountId }} }}\", \"x\": \"{}\"}}",
        "a".repeat(20 * 1024 * 1024)
    );
    let response = post(&app, "application/json", None, huge.into_bytes()).await;
    assert_eq!(response.status(), 413);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    // A document past its own limit, in a small body.
    let long = json!({ "query": format!("{{ me {{ accountId }} }} #{}", "x".repeat(40 * 1024)) });
    let response = post(&app, "application/json", None, long.to_string().into_bytes()).await;
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "DOCUMENT_TOO_LARGE");
    app.stop().await;
}

#[tokio::test]
async fn only_json_bodies_run_so_another_site_cannot_post_a_mutation() {
    let app = spawn_app().await;
    let mutation = r#"{"query": "mutation { requestPasswordReset(email: \"x@example.fr\") }"}"#;
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
    ] {
        let response = post(&app, content_type, None, mutation.as_bytes().to_vec()).await;
        assert_eq!(response.status(), 415, "{content_type}");
    }
    let counted: i64 = sqlx::query_scalar("SELECT count(*) FROM password_reset_requests")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(counted, 0, "nothing ran");
    let json = post(
        &app,
        "application/json; charset=utf-8",
        None,
        mutation.as_bytes().to_vec(),
    )
    .await;
    assert_eq!(json.status(), 200);
    // A mutation never runs from a GET.
    let get = reqwest::Client::new()
        .get(format!("{}/graphql", app.address))
        .query(&[("query", "mutation { logout }")])
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 405);
    app.stop().await;
}

#[tokio::test]
async fn the_answer_is_in_the_media_type_the_client_accepts() {
    let app = spawn_app().await;
    let query = json!({ "query": "{ __typename }" }).to_string().into_bytes();
    let broken = json!({ "query": "{ __typename" }).to_string().into_bytes();
    let invalid = json!({ "query": "{ noSuchField }" }).to_string().into_bytes();
    for (accept, expected) in [
        (None, "application/json"),
        (Some("*/*"), "application/json"),
        (Some("application/json"), "application/json"),
        (
            Some("application/graphql-response+json"),
            "application/graphql-response+json",
        ),
    ] {
        let response = post(&app, "application/json", accept, query.clone()).await;
        assert_eq!(response.status(), 200);
        let content_type = response.headers()["content-type"].to_str().unwrap().to_string();
        assert!(content_type.starts_with(expected), "{accept:?}: {content_type}");
    }
    let refused = post(&app, "application/json", Some("text/html"), query.clone()).await;
    assert_eq!(refused.status(), 406);
    for body in [broken, invalid] {
        // The specification's own type: 400 and no `data`.
        let response = post(
            &app,
            "application/json",
            Some("application/graphql-response+json"),
            body.clone(),
        )
        .await;
        assert_eq!(response.status(), 400);
        let answer: Value = response.json().await.unwrap();
        assert!(answer.get("data").is_none(), "{answer}");
        let code = answer["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(code.starts_with("GRAPHQL_"), "{answer}");
        // Plain JSON: 200, and every error has a code all the same.
        let response = post(&app, "application/json", Some("application/json"), body).await;
        assert_eq!(response.status(), 200);
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["errors"][0]["extensions"]["code"], code.as_str());
    }
    app.stop().await;
}

#[tokio::test]
async fn hostile_documents_are_refused_before_they_run() {
    let app = spawn_app().await;
    let days = future_canteen_days(1);
    let a = setup_commune(&app, &days).await;
    // A hundred calendars in one document.
    let aliases: String = (0..100)
        .map(|i| {
            format!(
                "c{i}: calendar(childId: \"{}\", unitId: \"{}\", from: \"{}\", to: \"{}\") {{ date }} ",
                a.child, a.meal, days[0], days[0]
            )
        })
        .collect();
    let many = app
        .gql(Some(&a.parent()), &format!("{{ {aliases} }}"), json!({}))
        .await;
    assert_eq!(many.error_code(), "GRAPHQL_VALIDATION_FAILED", "{}", many.0);
    // A few calendars of many days each cost what they read.
    let from = days[0];
    let to = from + chrono::Duration::days(90);
    let wide: String = (0..3)
        .map(|i| {
            format!(
                "c{i}: calendar(childId: \"{}\", unitId: \"{}\", from: \"{from}\", to: \"{to}\") {{ date status open canBook canCancel bookingDeadline cancellationDeadline }} ",
                a.child, a.meal
            )
        })
        .collect();
    let costly = app
        .gql(Some(&a.parent()), &format!("{{ {wide} }}"), json!({}))
        .await;
    assert_eq!(costly.error_code(), "GRAPHQL_VALIDATION_FAILED", "{}", costly.0);
    // One of them runs.
    let one = app
        .gql(
            Some(&a.parent()),
            &format!("{{ {} }}", wide.split(" c1:").next().unwrap()),
            json!({}),
        )
        .await;
    assert_eq!(one.data("c0").as_array().unwrap().len(), 91);
    // Deep nesting outside introspection.
    let deep = format!(
        "{{ me {{ families {{ {} }} }} }}",
        "children { ".repeat(12) + "firstName" + &" }".repeat(12)
    );
    let deep = app.gql(Some(&a.parent()), &deep, json!({})).await;
    assert_eq!(
        deep.0["errors"][0]["extensions"]["code"],
        "GRAPHQL_VALIDATION_FAILED"
    );
    app.stop().await;
}

#[tokio::test]
async fn connections_that_send_nothing_are_closed_and_do_not_lock_anyone_out() {
    let app = spawn_app_with_limits(espace_famille_api::http::server::ServerLimits {
        max_connections: 50,
        header_read_timeout: Duration::from_secs(1),
        ..Default::default()
    })
    .await;
    let address = app.address.trim_start_matches("http://").to_string();
    let mut silent = Vec::new();
    for _ in 0..120 {
        let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
        // Half a request line, then nothing.
        let _ = stream.write_all(b"GET /health/live HT").await;
        silent.push(stream);
    }
    let started = Instant::now();
    let live = reqwest::Client::new()
        .get(format!("{}/health/live", app.address))
        .timeout(Duration::from_secs(15))
        .send()
        .await
        .expect("/health/live answered");
    assert_eq!(live.status(), 200);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    // And the server closed the silent ones.
    let mut closed = 0;
    for stream in silent.iter_mut().take(10) {
        let mut buffer = [0u8; 512];
        use tokio::io::AsyncReadExt;
        match tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buffer)).await {
            Ok(Ok(_)) | Ok(Err(_)) => closed += 1,
            Err(_) => {}
        }
    }
    assert_eq!(closed, 10, "silent connections left open");
    drop(silent);
    app.stop().await;
}

#[tokio::test]
async fn past_its_requests_in_flight_the_server_answers_overloaded_at_once_and_health_still_answers() {
    use tokio::io::AsyncReadExt;
    let app = spawn_app_with_limits(espace_famille_api::http::server::ServerLimits {
        max_in_flight: 2,
        ..Default::default()
    })
    .await;
    let address = app.address.trim_start_matches("http://").to_string();
    // Two requests in flight: their bodies arrive but for the last byte.
    let body = br#"{"query":"{ __typename }"}"#;
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
        let head = format!(
            "POST /graphql HTTP/1.1\r\nhost: {address}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(&body[..body.len() - 1]).await.unwrap();
        held.push(stream);
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    let client = reqwest::Client::new();
    let started = Instant::now();
    let refused = client
        .post(format!("{}/graphql", app.address))
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "1");
    let refused: Value = refused.json().await.unwrap();
    assert_eq!(refused["errors"][0]["extensions"]["code"], "OVERLOADED");
    assert_eq!(
        refused["errors"][0]["message"],
        "trop de demandes en même temps ; réessayez dans un instant"
    );
    // The operators' endpoints are never refused.
    for path in ["/health/live", "/health/ready", "/metrics"] {
        let answer = client.get(format!("{}{path}", app.address)).send().await.unwrap();
        assert_eq!(answer.status(), 200, "{path}");
    }

    // The held requests finish, and the server takes requests again.
    for stream in &mut held {
        stream.write_all(&body[body.len() - 1..]).await.unwrap();
        let mut answer = vec![0u8; 4096];
        let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut answer))
            .await
            .expect("the held request was answered")
            .unwrap();
        let answer = String::from_utf8_lossy(&answer[..read]).to_string();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
    drop(held);
    let again = client
        .post(format!("{}/graphql", app.address))
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn mutations_past_their_rate_limit_are_refused_per_account_and_per_address_and_say_when_to_retry() {
    use espace_famille_api::auth::throttle::MutationLimits;
    let app = spawn_app_with(|settings| {
        settings.limits.mutations = MutationLimits {
            baskets_per_account: 2,
            baskets_per_address: 3,
            tokens_per_address: 2,
            others_per_account: 1_000,
            others_per_address: 1_000,
        }
    })
    .await;
    let days = future_canteen_days(3);
    let fixture = setup_commune(&app, &days).await;
    let basket = |day: usize| json!({ "input": { "basketId": uuid::Uuid::new_v4(), "familyId": fixture.family, "lines": book_lines(&fixture, &days[day..day + 1]) } });
    let submit = |token: String, variables: Value| {
        let app = &app;
        async move {
            reqwest::Client::new()
                .post(format!("{}/graphql", app.address))
                .bearer_auth(token)
                .json(&json!({ "query": SUBMIT_BASKET, "variables": variables }))
                .send()
                .await
                .unwrap()
        }
    };
    for day in 0..2 {
        let accepted = submit(fixture.parent(), basket(day)).await;
        assert_eq!(accepted.status(), 200);
        let accepted: Value = accepted.json().await.unwrap();
        assert_eq!(
            accepted["data"]["submitBasket"]["status"], "ACCEPTED",
            "{accepted}"
        );
    }
    // The account's third basket within the minute: refused before it
    // runs, with when to try again.
    let refused = submit(fixture.parent(), basket(2)).await;
    assert_eq!(refused.status(), 429);
    let retry: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let refused: Value = refused.json().await.unwrap();
    assert_eq!(refused["errors"][0]["extensions"]["code"], "RATE_LIMITED");
    assert!(refused["errors"][0]["message"]
        .as_str()
        .unwrap()
        .starts_with("trop de demandes"));
    let written: i64 = sqlx::query_scalar("SELECT count(*) FROM baskets")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(written, 2, "the refused basket wrote nothing");

    // Aliases count each: one document of two baskets from another
    // account passes the account's limit, not the address's third.
    let other = format!("autre-{}@example.fr", uuid::Uuid::new_v4().simple());
    app.create_account(&other, PASSWORD, &[]).await;
    let other = app.login(&other, PASSWORD).await;
    let twice = reqwest::Client::new()
        .post(format!("{}/graphql", app.address))
        .bearer_auth(&other)
        .json(&json!({ "query": "mutation($a: SubmitBasketInput!, $b: SubmitBasketInput!) { a: submitBasket(input: $a) { status } b: submitBasket(input: $b) { status } }",
                       "variables": { "a": basket(2)["input"], "b": basket(2)["input"] } }))
        .send()
        .await
        .unwrap();
    assert_eq!(twice.status(), 429, "the address already sent two of its three");

    // Other mutations have their own count.
    let other_class = app
        .gql(
            Some(&fixture.parent()),
            "mutation($id: UUID!) { requestCancellation(reservationId: $id) { status } }",
            json!({ "id": uuid::Uuid::new_v4() }),
        )
        .await;
    assert_ne!(other_class.error_code(), "RATE_LIMITED");

    // A link's token: per address, signed in or not (on a server of its
    // own: opening the commune above used tokens).
    let tokens = spawn_app_with(|settings| {
        settings.limits.mutations = MutationLimits {
            tokens_per_address: 2,
            ..MutationLimits::default()
        }
    })
    .await;
    for attempt in 0..3 {
        let used = reqwest::Client::new()
            .post(format!("{}/graphql", tokens.address))
            .json(&json!({ "query": "mutation { resetPassword(token: \"pas-un-jeton\", password: \"un mot de passe assez long\") { token } }" }))
            .send()
            .await
            .unwrap();
        let expected = if attempt < 2 { 200 } else { 429 };
        assert_eq!(used.status(), expected, "attempt {attempt}");
    }
    tokens.stop().await;
    app.stop().await;
}
