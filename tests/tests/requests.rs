//! Requests with attachments over HTTP, as the GraphQL multipart request
//! sends them: a category defined by an agent, a request sent with its
//! files, listed, answered and closed; files refused for their content, size
//! or number with nothing stored; downloads for the family and its commune
//! only, through links that expire; nothing readable after an erasure; an
//! accepted justification justifying its absence.

use espace_famille_tests::requests::*;
use espace_famille_tests::*;
use serde_json::{json, Value};
use uuid::Uuid;

#[tokio::test]
async fn a_request_goes_with_its_file_and_is_listed_answered_and_closed() {
    let app = spawn_app().await;
    let fixture = setup_commune(&app, &future_canteen_days(1)).await;
    let category = pickup_category(&app, &fixture).await;
    // A PDF named as a photo: taken for what its content is.
    let path = attachment(0);
    let first_input = input(&fixture, category, &["identity"]);
    let sent = submitted(
        &app,
        &fixture,
        first_input.clone(),
        &[(&path, "carte-identité.jpg", PDF)],
    )
    .await;
    let request = sent.data("submitRequest").clone();
    assert_eq!(request["status"], "SUBMITTED");
    assert_eq!(
        request["categoryName"],
        "Autorisation de récupération d'un enfant"
    );
    assert_eq!(
        request["fields"],
        json!([{ "name": "person", "value": "Jeanne Martin" }, { "name": "from", "value": "2027-03-01" }])
    );
    let file = &request["attachments"][0]["file"];
    assert_eq!(file["kind"], "PDF");
    assert_eq!(file["fileName"], "carte-identité.jpg");
    assert_eq!(file["size"], PDF.len());
    let id = request["id"].clone();
    // Stored by family and content hash, outside the events.
    let sha = file["sha256"].as_str().unwrap().to_string();
    assert_eq!(
        files_on_disk(&app),
        vec![match &app.files.storage {
            espace_famille_api::files::Storage::Folder(folder) =>
                folder.join(fixture.family.to_string()).join(&sha),
            _ => unreachable!(),
        }]
    );
    let payloads: Vec<String> =
        sqlx::query_scalar("SELECT payload::text FROM events WHERE aggregate_type = 'Request'")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert!(
        payloads[0].contains(&sha) && !payloads[0].contains("Jeanne Martin"),
        "{}",
        payloads[0]
    );

    // The family downloads it: an attachment typed as stored.
    let got = download(
        &app,
        Some(&fixture.parent()),
        file["downloadUrl"].as_str().unwrap(),
    )
    .await;
    assert_eq!(got.status(), 200);
    assert_eq!(got.headers()["content-type"], "application/pdf");
    assert!(got.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment;"));
    assert_eq!(got.headers()["x-content-type-options"], "nosniff");
    assert_eq!(got.bytes().await.unwrap().as_ref(), PDF);

    // The commune's queue, by category and status.
    let queue = "query($c: UUID!, $k: UUID, $s: RequestStatus) {
        requests(collectivityId: $c, categoryId: $k, status: $s) { requests { id status categoryName } nextAfter } }";
    let listed = app
        .gql(
            Some(&fixture.agent()),
            queue,
            json!({ "c": fixture.collectivity, "k": category, "s": "SUBMITTED" }),
        )
        .await;
    assert_eq!(listed.data("requests")["requests"][0]["id"], id);
    let none = app
        .gql(
            Some(&fixture.agent()),
            queue,
            json!({ "c": fixture.collectivity, "s": "CLOSED" }),
        )
        .await;
    assert_eq!(none.data("requests")["requests"], json!([]));

    // Answered with a file, then closed: the family is told each time.
    let answer = "mutation($id: UUID!, $m: String!, $f: Upload) {
        answerRequest(requestId: $id, message: $m, file: $f) { status answers { message file { kind downloadUrl } } } }";
    let answered = multipart(
        &app,
        Some(&fixture.agent()),
        answer,
        json!({ "id": id, "m": "Bien reçu : voici l'attestation signée.", "f": null }),
        &[("variables.f", "attestation.png", PNG)],
    )
    .await;
    let answered = Response(answered.json().await.unwrap());
    let answered = answered.data("answerRequest");
    assert_eq!(answered["status"], "ANSWERED");
    assert_eq!(answered["answers"][0]["file"]["kind"], "PNG");
    let mail = app.next_mail_to(&fixture.guardian_email).await;
    assert!(mail.contains("Bien reçu : voici l'attestation signée."), "{mail}");
    let close = "mutation($id: UUID!) { closeRequest(requestId: $id, accepted: true, message: \"Autorisation enregistrée.\") { status accepted } }";
    let closed = app.gql(Some(&fixture.agent()), close, json!({ "id": id })).await;
    assert_eq!(
        closed.data("closeRequest"),
        &json!({ "status": "CLOSED", "accepted": true })
    );
    let mail = app.next_mail_to(&fixture.guardian_email).await;
    assert!(mail.contains("accept"), "{mail}");
    let late = app
        .gql(
            Some(&fixture.agent()),
            "mutation($id: UUID!) { answerRequest(requestId: $id, message: \"Encore\") { status } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(late.error_code(), "REQUEST_CLOSED");

    // The family reads it all back, and its history.
    let read = app
        .gql(Some(&fixture.parent()), REQUEST, json!({ "id": id }))
        .await;
    let read = read.data("request");
    assert_eq!(read["message"], "Sa grand-mère viendra la chercher le mercredi.");
    assert_eq!(read["closingMessage"], "Autorisation enregistrée.");
    let history = app
        .gql(
            Some(&fixture.parent()),
            "query($id: UUID!) { history(aggregate: REQUEST, id: $id) { events { eventType } } }",
            json!({ "id": id }),
        )
        .await;
    let types: Vec<&str> = history.data("history")["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["eventType"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["RequestSubmitted", "RequestAnswered", "RequestClosed"]);
    // Sent again with its id: as stored, nothing more.
    let again = submitted(&app, &fixture, first_input, &[(&path, "carte-identité.jpg", PDF)]).await;
    assert_eq!(again.data("submitRequest")["status"], "CLOSED");
    assert_eq!(app.events_in("Request", id.as_str().unwrap()).await, 3);
    app.stop().await;
}

#[tokio::test]
async fn a_refused_file_names_itself_and_the_rule_and_nothing_of_the_request_is_stored() {
    let app = spawn_app_with(|settings| {
        settings.files.max_file_bytes = 1024;
        settings.files.max_files = 2;
        settings.files.max_request_bytes = 64 * 1024;
    })
    .await;
    let fixture = setup_commune(&app, &future_canteen_days(1)).await;
    let category = pickup_category(&app, &fixture).await;
    let path = attachment(0);
    let refused = |response: &Response, code: &str, contains: &str| {
        assert_eq!(response.error_code(), code, "{}", response.0);
        let message = response.0["errors"][0]["message"].as_str().unwrap().to_string();
        assert!(message.contains(contains), "{message}");
    };
    // An HTML page named as a PDF.
    let html = submitted(
        &app,
        &fixture,
        input(&fixture, category, &["identity"]),
        &[(&path, "justificatif.pdf", HTML)],
    )
    .await;
    refused(&html, "FILE_REFUSED", "justificatif.pdf");
    // A PNG where only PDF, JPEG or HEIC is taken.
    let png = submitted(
        &app,
        &fixture,
        input(&fixture, category, &["identity"]),
        &[(&path, "photo.png", PNG)],
    )
    .await;
    refused(&png, "FILE_REFUSED", "PDF, JPEG, HEIC");
    // Over the size of a file.
    let big = [PDF, &vec![b' '; 2048]].concat();
    let heavy = submitted(
        &app,
        &fixture,
        input(&fixture, category, &["identity"]),
        &[(&path, "scan.pdf", &big)],
    )
    .await;
    refused(&heavy, "FILE_REFUSED", "scan.pdf");
    // Too many files.
    let three: Vec<String> = (0..3).map(attachment).collect();
    let files: Vec<(&str, &str, &[u8])> = three.iter().map(|p| (p.as_str(), "carte.pdf", PDF)).collect();
    let many = submitted(
        &app,
        &fixture,
        input(&fixture, category, &["identity", "identity", "identity"]),
        &files,
    )
    .await;
    refused(&many, "FILE_REFUSED", "2");
    // The required attachment missing.
    let none = submitted(&app, &fixture, input(&fixture, category, &[]), &[]).await;
    refused(&none, "VALIDATION", "identity");
    // A request over the whole limit: refused before it is read.
    let huge = vec![b'x'; 128 * 1024];
    let over = multipart(
        &app,
        Some(&fixture.parent()),
        SUBMIT,
        json!({ "input": input(&fixture, category, &["identity"]) }),
        &[(&path, "scan.pdf", &huge)],
    )
    .await;
    assert_eq!(over.status(), 413);
    // A multipart post without the header another site cannot send.
    let form = reqwest::multipart::Form::new()
        .text("operations", "{}")
        .text("map", "{}");
    let forged = reqwest::Client::new()
        .post(format!("{}/graphql", app.address))
        .bearer_auth(fixture.parent())
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 415);
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_type = 'Request'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!((events, stored_files(&app).await), (0, 0));
    assert!(files_on_disk(&app).is_empty(), "{:?}", files_on_disk(&app));
    app.stop().await;
}

#[tokio::test]
async fn files_are_read_by_the_family_and_its_commune_only_through_links_that_expire() {
    let app = spawn_app().await;
    let days = future_canteen_days(1);
    let fixture = setup_commune(&app, &days).await;
    let category = pickup_category(&app, &fixture).await;
    let request = sent_with_a_pdf(&app, &fixture, category).await;
    let url = request["attachments"][0]["file"]["downloadUrl"]
        .as_str()
        .unwrap()
        .to_string();
    let id = request["id"].clone();
    // The commune's agent gets a link of its own, and reads the file.
    let agents_url = first_attachment_link(&app, &fixture.agent(), &id).await;
    assert_eq!(
        download(&app, Some(&fixture.agent()), &agents_url).await.status(),
        200
    );
    // Anonymous: 401. The parent's link in the agent's hands: 404.
    assert_eq!(download(&app, None, &url).await.status(), 401);
    assert_eq!(download(&app, Some(&fixture.agent()), &url).await.status(), 404);
    // Another commune's agent, another family's guardian: nothing.
    let elsewhere = setup_commune(&app, &days).await;
    for token in [elsewhere.agent(), elsewhere.parent()] {
        let read = app.gql(Some(&token), REQUEST, json!({ "id": id })).await;
        assert_eq!(read.error_code(), "NOT_FOUND");
    }
    // A link altered (its expiry pushed back, another file named): 404.
    let (base, query) = url.split_once('?').unwrap();
    let later = query.replace("expire=", "expire=9");
    assert_eq!(
        download(&app, Some(&fixture.parent()), &format!("{base}?{later}"))
            .await
            .status(),
        404
    );
    let other = url.replace(
        request["attachments"][0]["file"]["sha256"].as_str().unwrap(),
        &"0".repeat(64),
    );
    assert_eq!(
        download(&app, Some(&fixture.parent()), &other).await.status(),
        404
    );
    // A request sent for another family, or naming another commune's
    // category: refused, nothing stored.
    let path = attachment(0);
    let pdf: &[(&str, &str, &[u8])] = &[(&path, "carte.pdf", PDF)];
    let mut foreign = input(&fixture, category, &["identity"]);
    foreign["familyId"] = json!(elsewhere.family);
    let refused = submitted(&app, &fixture, foreign, pdf).await;
    assert_eq!(refused.error_code(), "FORBIDDEN");
    let theirs = input(&elsewhere, category, &["identity"]);
    let refused = submitted(&app, &elsewhere, theirs, pdf).await;
    assert_eq!(refused.error_code(), "NOT_FOUND");
    assert_eq!(stored_files(&app).await, 1);
    app.stop().await;
}

#[tokio::test]
async fn after_an_erasure_no_file_of_the_family_can_be_read() {
    let app = spawn_app().await;
    let fixture = setup_commune(&app, &future_canteen_days(1)).await;
    let category = pickup_category(&app, &fixture).await;
    let request = sent_with_a_pdf(&app, &fixture, category).await;
    let id = request["id"].clone();
    let url = first_attachment_link(&app, &fixture.agent(), &id).await;
    assert_eq!(download(&app, Some(&fixture.agent()), &url).await.status(), 200);
    erase_family(&app, &fixture).await;
    assert_eq!(download(&app, Some(&fixture.agent()), &url).await.status(), 404);
    assert_eq!(stored_files(&app).await, 0);
    assert!(files_on_disk(&app).is_empty());
    // The request stays, its personal values erased.
    let read = app
        .gql(Some(&fixture.agent()), REQUEST, json!({ "id": id }))
        .await;
    let read = read.data("request");
    assert_eq!(read["message"], Value::Null);
    assert_eq!(read["attachments"][0]["file"]["fileName"], Value::Null);
    app.stop().await;
}

#[tokio::test]
async fn an_accepted_justification_justifies_its_absence() {
    let app = spawn_app().await;
    let today = espace_famille_domain::calendar::paris_today(chrono::Utc::now());
    let fixture = setup_commune(&app, &[today]).await;
    seed_confirmed(&app, &fixture, &[today]).await;
    let reservation = espace_famille_domain::reservation::reservation_id(fixture.child, fixture.meal, today);
    let category = Uuid::new_v4();
    app.gql(
        Some(&fixture.agent()),
        DEFINE,
        json!({ "input": {
            "collectivityId": fixture.collectivity, "id": category, "name": "Justificatif d'absence",
            "justifiesAbsence": true,
            "attachments": [{ "name": "certificate", "label": "Certificat médical", "required": true, "accepts": ["PDF", "JPEG", "PNG", "HEIC"] }]
        } }),
    )
    .await
    .data("defineRequestCategory");
    let proof = |reservation: Option<Uuid>| {
        json!({
            "requestId": Uuid::new_v4(), "familyId": fixture.family, "collectivityId": fixture.collectivity,
            "categoryId": category, "message": "Certificat du médecin ci-joint.", "reservationId": reservation,
            "attachments": [{ "name": "certificate", "file": null }]
        })
    };
    let path = attachment(0);
    // No absence reported yet: refused.
    let early = submitted(
        &app,
        &fixture,
        proof(Some(reservation)),
        &[(&path, "certificat.png", PNG)],
    )
    .await;
    assert_eq!(early.error_code(), "NO_ABSENCE_REPORTED");
    let reported = app
        .gql(
            Some(&fixture.parent()),
            "mutation($id: UUID!) { reportAbsence(reservationId: $id, reason: \"Maladie\") { status } }",
            json!({ "id": reservation }),
        )
        .await;
    assert_eq!(reported.data("reportAbsence")["status"], "ABSENCE_REPORTED");
    // Another child's day: nothing to justify here.
    let stranger = espace_famille_domain::reservation::reservation_id(Uuid::new_v4(), fixture.meal, today);
    let wrong = submitted(
        &app,
        &fixture,
        proof(Some(stranger)),
        &[(&path, "certificat.png", PNG)],
    )
    .await;
    assert_eq!(wrong.error_code(), "NOT_FOUND");
    let sent = submitted(
        &app,
        &fixture,
        proof(Some(reservation)),
        &[(&path, "certificat.png", PNG)],
    )
    .await;
    let id = sent.data("submitRequest")["id"].clone();
    let closed = app
        .gql(
            Some(&fixture.agent()),
            "mutation($id: UUID!) { closeRequest(requestId: $id, accepted: true) { status accepted } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(closed.data("closeRequest")["accepted"], true);
    let status: String = sqlx::query_scalar(
        "SELECT event_type FROM events WHERE aggregate_type = 'Reservation' AND aggregate_id = $1 ORDER BY sequence DESC LIMIT 1",
    )
    .bind(reservation.to_string())
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(status, "AbsenceJustified");
    app.stop().await;
}
