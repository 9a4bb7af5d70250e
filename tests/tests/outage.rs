//! A database outage as clients and load balancers see it: readiness says
//! no within a second, requests are told `UNAVAILABLE` at once, and all is
//! served again once the database is back.

use std::time::{Duration, Instant};

use espace_famille_tests::*;
use serde_json::json;

const ME: &str = "{ me { accountId } }";

#[tokio::test]
async fn during_an_outage_readiness_and_requests_answer_at_once_and_service_resumes_after() {
    let proxy = TcpProxy::to_database().await;
    let app = spawn_app_through(&proxy).await;
    let token = admin(&app).await;
    app.gql(Some(&token), ME, json!({})).await.data("me");
    let http = reqwest::Client::new();
    let ready = |http: reqwest::Client, address: String| async move {
        let started = Instant::now();
        let status = http
            .get(format!("{address}/health/ready"))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0);
        (status, started.elapsed())
    };
    assert_eq!(ready(http.clone(), app.address.clone()).await.0, 200);

    proxy.cut();
    // The watcher notices within its ping and a half.
    tokio::time::sleep(Duration::from_millis(1_600)).await;
    let (status, took) = ready(http.clone(), app.address.clone()).await;
    assert_eq!(status, 503);
    assert!(took < Duration::from_secs(1), "readiness took {took:?}");
    let started = Instant::now();
    let answer = http
        .post(format!("{}/graphql", app.address))
        .bearer_auth(&token)
        .json(&json!({ "query": ME }))
        .timeout(Duration::from_secs(15))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 503);
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAVAILABLE", "{body}");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );

    proxy.restore();
    let back = Instant::now();
    loop {
        if ready(http.clone(), app.address.clone()).await.0 == 200 {
            break;
        }
        assert!(back.elapsed() < Duration::from_secs(15), "never ready again");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The pool's connections died with the outage; new ones serve again.
    let mut served = false;
    for _ in 0..20 {
        let response = app.gql(Some(&token), ME, json!({})).await;
        if response.0.get("errors").is_none() {
            served = true;
            break;
        }
        assert_eq!(response.error_code(), "UNAVAILABLE", "{}", response.0);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(served, "requests were not served again");
    app.stop().await;
}

/// A database that freezes (connections open, nothing answered) while a
/// request waits on it: the request is told `UNAVAILABLE` once the watch
/// sees the database gone, not after the pool's timeout or never.
#[tokio::test]
async fn a_request_caught_by_a_frozen_database_is_told_unavailable_within_seconds() {
    let proxy = TcpProxy::to_database().await;
    let app = spawn_app_through(&proxy).await;
    admin(&app).await;
    let http = reqwest::Client::new();
    proxy.stall();
    // A login always reads the database (the account, its limits).
    let started = Instant::now();
    let answer = http
        .post(format!("{}/graphql", app.address))
        .json(&json!({
            "query": "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
            "variables": { "e": "personne@example.fr", "p": "pas-le-bon" },
        }))
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .expect("an answer, not a hang");
    let took = started.elapsed();
    assert_eq!(answer.status(), 503);
    assert_eq!(answer.headers()["retry-after"], "2");
    let body: serde_json::Value = answer.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAVAILABLE", "{body}");
    // The watch pings every half second, each ping given one second.
    assert!(took < Duration::from_secs(3), "answered after {took:?}");

    proxy.restore();
    let back = Instant::now();
    loop {
        let body: serde_json::Value = http
            .post(format!("{}/graphql", app.address))
            .json(&json!({
                "query": "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
                "variables": { "e": "personne@example.fr", "p": "pas-le-bon" },
            }))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let code = &body["errors"][0]["extensions"]["code"];
        if code != "UNAVAILABLE" {
            assert_eq!(code, "INVALID_CREDENTIALS", "{body}");
            break;
        }
        assert!(back.elapsed() < Duration::from_secs(15), "not served again");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    app.stop().await;
}
