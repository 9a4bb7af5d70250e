//! The log as JSON lines: each line of a request carries its id (the
//! client's, when it is a plain token), the calling account and the
//! correlation id of what it wrote; the id comes back in the response.

use std::io::Write;
use std::sync::{Arc, Mutex};

use espace_famille_api::logs::{subscriber, LogFormat};
use espace_famille_tests::*;
use serde_json::{json, Value};
use uuid::Uuid;

/// The log's lines, kept in memory.
#[derive(Clone, Default)]
struct Kept(Arc<Mutex<Vec<u8>>>);

impl Write for Kept {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'w> tracing_subscriber::fmt::MakeWriter<'w> for Kept {
    type Writer = Kept;

    fn make_writer(&'w self) -> Kept {
        self.clone()
    }
}

/// Posts a GraphQL request with these headers; the response's request id
/// and its body.
async fn post(app: &TestApp, headers: &[(&str, &str)], query: &str, variables: Value) -> (String, Value) {
    let mut request = reqwest::Client::new()
        .post(format!("{}/graphql", app.address))
        .json(&json!({ "query": query, "variables": variables }));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let id = response.headers()["x-request-id"].to_str().unwrap().to_string();
    (id, response.json().await.unwrap())
}

// One thread: the server's tasks log where the test set its logger.
#[tokio::test(flavor = "current_thread")]
async fn each_line_of_a_request_names_its_id_account_and_correlation_and_the_id_comes_back() {
    let kept = Kept::default();
    let filter = tracing_subscriber::EnvFilter::new("info,espace_famille_api=debug");
    let _logging = tracing::subscriber::set_default(subscriber(LogFormat::Json, filter, kept.clone()));
    let app = spawn_app().await;
    let days = future_canteen_days(2);
    let fixture = setup_commune(&app, &days).await;
    let parent = fixture.parent();
    let bearer = format!("Bearer {parent}");
    let (_, me) = post(
        &app,
        &[("authorization", &bearer)],
        "{ me { accountId } }",
        json!({}),
    )
    .await;
    let account = me["data"]["me"]["accountId"].as_str().unwrap().to_string();

    let basket = Uuid::new_v4();
    let (id, answer) = post(
        &app,
        &[("authorization", &bearer), ("x-request-id", "essai-journal.1")],
        SUBMIT_BASKET,
        json!({ "input": { "basketId": basket, "familyId": fixture.family, "lines": book_lines(&fixture, &days) } }),
    )
    .await;
    assert_eq!(answer["data"]["submitBasket"]["status"], "ACCEPTED", "{answer}");
    assert_eq!(id, "essai-journal.1", "the client's id comes back");
    // An id that is not a plain token, or too long, is replaced.
    let long = "a".repeat(65);
    for given in ["deux mots", "a;b", long.as_str(), ""] {
        let (id, _) = post(&app, &[("x-request-id", given)], "{ __typename }", json!({})).await;
        assert!(
            Uuid::parse_str(&id).is_ok() && id != given,
            "{given:?} gave {id:?}"
        );
    }
    let (id, _) = post(&app, &[], "{ __typename }", json!({})).await;
    assert!(Uuid::parse_str(&id).is_ok(), "{id}");

    let text = String::from_utf8(kept.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect();
    let answered = lines
        .iter()
        .find(|l| l["span"]["request_id"] == "essai-journal.1" && l["fields"]["message"] == "answered")
        .unwrap_or_else(|| panic!("no line of the basket's request in\n{text}"));
    assert_eq!(answered["span"]["account_id"], account.as_str(), "{answered}");
    assert_eq!(
        answered["span"]["correlation_id"],
        basket.to_string(),
        "{answered}"
    );
    assert_eq!(answered["fields"]["status"], 200);
    assert_eq!(answered["fields"]["path"], "/graphql");
    // Neither the session's token nor a password is ever written.
    assert!(!text.contains(&parent), "the token is in the log");
    assert!(!text.contains(PASSWORD), "a password is in the log");
    app.stop().await;
}
