//! Requests' files beyond the request itself: kept in the database
//! instead of the folder, a phone's HEIC photo, the agents' queue by date
//! and by page, the folder swept of contents no request holds, and the
//! bounds of each part of a multipart request.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use espace_famille_api::files::{Files, Storage};
use espace_famille_tests::requests::*;
use espace_famille_tests::*;
use serde_json::{json, Value};
use uuid::Uuid;

/// A 32×32 gradient encoded by libheif's `heif-enc` (HEVC in a HEIF box,
/// brand `heic`): a phone's photo as the server receives it.
const HEIC: &[u8] = include_bytes!("../fixtures/gradient.heic");

async fn contents_in_database(app: &TestApp) -> Vec<Vec<u8>> {
    sqlx::query_scalar("SELECT content FROM stored_file_contents")
        .fetch_all(&app.pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn files_kept_in_the_database_are_stored_read_and_erased_as_in_the_folder() {
    let app = spawn_app_with(|settings| settings.files.storage = Storage::Table).await;
    let fixture = setup_commune(&app, &future_canteen_days(1)).await;
    let category = pickup_category(&app, &fixture).await;
    let path = attachment(0);
    let sent = submitted(
        &app,
        &fixture,
        input(&fixture, category, &["identity"]),
        &[(&path, "IMG_0412.HEIC", HEIC)],
    )
    .await;
    let file = sent.data("submitRequest")["attachments"][0]["file"].clone();
    assert_eq!(file["kind"], "HEIC");
    assert_eq!(file["size"], HEIC.len());
    // In the table, not in any folder.
    assert_eq!(contents_in_database(&app).await, vec![HEIC.to_vec()]);
    assert!(files_on_disk(&app).is_empty());
    let got = download(
        &app,
        Some(&fixture.parent()),
        file["downloadUrl"].as_str().unwrap(),
    )
    .await;
    assert_eq!(got.status(), 200);
    assert_eq!(got.headers()["content-type"], "image/heic");
    assert!(got.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment;"));
    assert_eq!(got.bytes().await.unwrap().as_ref(), HEIC);
    // The same content sent again by the family: stored once.
    let again = submitted(
        &app,
        &fixture,
        input(&fixture, category, &["identity"]),
        &[(&path, "copie.heic", HEIC)],
    )
    .await;
    assert_eq!(again.data("submitRequest")["status"], "SUBMITTED");
    assert_eq!(contents_in_database(&app).await.len(), 1);
    // Erased: the content goes with the family's key.
    let url = first_attachment_link(&app, &fixture.agent(), &sent.data("submitRequest")["id"]).await;
    assert_eq!(download(&app, Some(&fixture.agent()), &url).await.status(), 200);
    erase_family(&app, &fixture).await;
    assert_eq!(download(&app, Some(&fixture.agent()), &url).await.status(), 404);
    assert!(contents_in_database(&app).await.is_empty());
    assert_eq!(stored_files(&app).await, 0);
    app.stop().await;
}

#[tokio::test]
async fn the_queue_takes_a_range_of_dates_and_pages_in_order() {
    let app = spawn_app().await;
    let fixture = setup_commune(&app, &future_canteen_days(1)).await;
    let category = pickup_category(&app, &fixture).await;
    let mut sent = Vec::new();
    for _ in 0..5 {
        sent.push(sent_with_a_pdf(&app, &fixture, category).await["id"].clone());
    }
    let queue = "query($c: UUID!, $from: DateTime, $to: DateTime, $after: String, $first: Int!) {
        requests(collectivityId: $c, from: $from, to: $to, after: $after, first: $first) {
            requests { id submittedAt } nextAfter } }";
    let agent = fixture.agent();
    let all = app
        .every_page_of(
            &agent,
            queue,
            "requests",
            "requests",
            json!({ "c": fixture.collectivity, "first": 2 }),
        )
        .await;
    let ids: Vec<&Value> = all.iter().map(|r| &r["id"]).collect();
    assert_eq!(
        ids,
        sent.iter().collect::<Vec<_>>(),
        "the oldest first, each once"
    );
    // From the second request's instant, to (excluded) the fifth's.
    let at = |n: usize| all[n]["submittedAt"].clone();
    let range = app
        .every_page_of(
            &agent,
            queue,
            "requests",
            "requests",
            json!({ "c": fixture.collectivity, "from": at(1), "to": at(4), "first": 1 }),
        )
        .await;
    let ids: Vec<&Value> = range.iter().map(|r| &r["id"]).collect();
    assert_eq!(ids, vec![&sent[1], &sent[2], &sent[3]]);
    // A page size out of bounds, a cursor that is not one.
    for (first, after) in [(0, Value::Null), (501, Value::Null), (2, json!("nonsense"))] {
        let refused = app
            .gql(
                Some(&agent),
                queue,
                json!({ "c": fixture.collectivity, "first": first, "after": after }),
            )
            .await;
        assert_eq!(refused.error_code(), "VALIDATION", "{}", refused.0);
    }
    app.stop().await;
}

/// Makes a file look `age` old.
fn aged(path: &PathBuf, age: Duration) {
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(SystemTime::now() - age).unwrap();
}

#[tokio::test]
async fn the_sweep_removes_from_the_folder_only_what_no_stored_file_holds() {
    let app = spawn_app().await;
    let fixture = setup_commune(&app, &future_canteen_days(1)).await;
    let category = pickup_category(&app, &fixture).await;
    let request = sent_with_a_pdf(&app, &fixture, category).await;
    let Storage::Folder(folder) = &app.files.storage else {
        unreachable!("the tests keep files in a folder")
    };
    let family = folder.join(fixture.family.to_string());
    let held = family.join(request["attachments"][0]["file"]["sha256"].as_str().unwrap());
    // What a server stopped before removing: a content whose write did not
    // commit, an erased family's folder, partial writes old and new; and a
    // content whose write is under way (its lock held).
    let uncommitted = family.join("a".repeat(64));
    let erased = folder.join(Uuid::new_v4().to_string()).join("b".repeat(64));
    let old_partial = family.join(".0123.part");
    let new_partial = family.join(".4567.part");
    let in_flight = family.join("c".repeat(64));
    std::fs::create_dir_all(erased.parent().unwrap()).unwrap();
    for path in [&uncommitted, &erased, &old_partial, &new_partial, &in_flight] {
        std::fs::write(path, PDF).unwrap();
    }
    aged(&old_partial, Duration::from_secs(2 * 3600));
    let mut writing = app.pool.begin().await.unwrap();
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 4245))")
        .bind(format!("{}/{}", fixture.family, "c".repeat(64)))
        .execute(&mut *writing)
        .await
        .unwrap();

    let files = Files::open(&app.pool, app.files.clone()).await.unwrap();
    let swept = files.sweep(&app.pool).await.unwrap();
    assert_eq!(swept.removed, 3);
    let mut left = files_on_disk(&app);
    left.sort();
    let mut kept = vec![held.clone(), new_partial, in_flight.clone()];
    kept.sort();
    assert_eq!(left, kept);
    // Once the write is over (it did not commit), its content goes too;
    // the request's file stays, and is served.
    writing.rollback().await.unwrap();
    assert_eq!(files.sweep(&app.pool).await.unwrap().removed, 1);
    assert!(!in_flight.exists() && held.exists());
    let url = request["attachments"][0]["file"]["downloadUrl"].as_str().unwrap();
    let got = download(&app, Some(&fixture.parent()), url).await;
    assert_eq!(got.bytes().await.unwrap().as_ref(), PDF);
    app.stop().await;
}

#[tokio::test]
async fn each_part_of_a_multipart_request_has_its_bound() {
    let app = spawn_app().await;
    let fixture = setup_commune(&app, &future_canteen_days(1)).await;
    let category = pickup_category(&app, &fixture).await;
    let post = |form: reqwest::multipart::Form| {
        reqwest::Client::new()
            .post(format!("{}/graphql", app.address))
            .header("GraphQL-Require-Preflight", "1")
            .bearer_auth(fixture.parent())
            .multipart(form)
            .send()
    };
    let operations =
        json!({ "query": SUBMIT, "variables": { "input": input(&fixture, category, &["identity"]) } });
    let map = json!({ "0": [attachment(0)] }).to_string();
    let pdf = || reqwest::multipart::Part::bytes(PDF.to_vec()).file_name("carte.pdf");
    let answer = |response: reqwest::Response| async move {
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap();
        (
            status,
            body["errors"][0]["message"]
                .as_str()
                .unwrap_or_default()
                .to_string(),
        )
    };
    // `operations` over a JSON body's limit (1 MiB), though far under the
    // request's (25 MiB): refused before it is held whole.
    let mut padded = operations.clone();
    padded["extensions"] = json!({ "padding": "x".repeat(1024 * 1024) });
    let form = reqwest::multipart::Form::new()
        .text("operations", padded.to_string())
        .text("map", map.clone())
        .part("0", pdf());
    let (status, message) = answer(post(form).await.unwrap()).await;
    assert_eq!(status, 413);
    assert!(message.contains("`operations`"), "{message}");
    // A `map` of more than a few kilobytes.
    let long_map = json!({ "0": vec![attachment(0); 1000] }).to_string();
    let form = reqwest::multipart::Form::new()
        .text("operations", operations.to_string())
        .text("map", long_map)
        .part("0", pdf());
    let (status, message) = answer(post(form).await.unwrap()).await;
    assert_eq!(status, 413);
    assert!(message.contains("`map`"), "{message}");
    // A part that is no file, a file the map does not name, a map naming
    // a file not sent, no operations: each a bad request.
    let cases = [
        reqwest::multipart::Form::new()
            .text("operations", operations.to_string())
            .text("map", map.clone())
            .text("0", "not a file"),
        reqwest::multipart::Form::new()
            .text("operations", operations.to_string())
            .text("map", "{}")
            .part("0", pdf()),
        reqwest::multipart::Form::new()
            .text("operations", operations.to_string())
            .text("map", map.clone()),
        reqwest::multipart::Form::new()
            .text("map", map.clone())
            .part("0", pdf()),
    ];
    for form in cases {
        let (status, message) = answer(post(form).await.unwrap()).await;
        assert_eq!(status, 400, "{message}");
    }
    // None of it stored anything; the well-formed request goes through.
    assert_eq!(stored_files(&app).await, 0);
    let form = reqwest::multipart::Form::new()
        .text("operations", operations.to_string())
        .text("map", map)
        .part("0", pdf());
    let response = post(form).await.unwrap();
    let sent = Response(response.json().await.unwrap());
    assert_eq!(sent.data("submitRequest")["status"], "SUBMITTED");
    app.stop().await;
}
