//! Requests with attachments, as the tests send them: a category with an
//! attachment, a request's input, the GraphQL multipart request, the
//! downloads, and what the storage holds.

use serde_json::{json, Value};
use uuid::Uuid;

use crate::{Fixture, Response, TestApp};

pub const DEFINE: &str =
    "mutation($input: RequestCategoryInput!) { defineRequestCategory(input: $input) { id name } }";

pub const SUBMIT: &str = "mutation($input: SubmitRequestInput!) {
  submitRequest(input: $input) {
    id status categoryName message fields { name value }
    attachments { name file { fileName kind size sha256 downloadUrl } }
  }
}";

pub const REQUEST: &str = "query($id: UUID!) {
  request(id: $id) {
    id status accepted message closingMessage
    attachments { name file { fileName kind downloadUrl } }
    answers { message file { fileName kind downloadUrl } }
  }
}";

/// A PDF as far as its content goes.
pub const PDF: &[u8] =
    b"%PDF-1.4\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n<< /Root 1 0 R >>\n%%EOF\n";
/// A PNG's signature and header chunk.
pub const PNG: &[u8] = &[
    0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, b'I', b'H', b'D', b'R', 0, 0, 0, 1, 0, 0, 0,
    1, 8, 2, 0, 0, 0,
];
pub const HTML: &[u8] =
    b"<!DOCTYPE html><html><body><script>document.location='https://evil.example'</script></body></html>";

/// "Autorisation de récupération d'un enfant": who, from when, and the
/// authorised person's identity document (PDF, JPEG or a phone's photo).
pub async fn pickup_category(app: &TestApp, fixture: &Fixture) -> Uuid {
    let id = Uuid::new_v4();
    app.gql(
        Some(&fixture.agent()),
        DEFINE,
        json!({ "input": {
            "collectivityId": fixture.collectivity, "id": id,
            "name": "Autorisation de récupération d'un enfant",
            "fields": [
                { "name": "person", "label": "Personne autorisée", "kind": "TEXT", "required": true },
                { "name": "from", "label": "À partir du", "kind": "DATE", "required": true }
            ],
            "attachments": [
                { "name": "identity", "label": "Pièce d'identité de la personne autorisée", "required": true,
                  "accepts": ["PDF", "JPEG", "HEIC"] }
            ]
        } }),
    )
    .await
    .data("defineRequestCategory");
    id
}

pub fn input(fixture: &Fixture, category: Uuid, attachments: &[&str]) -> Value {
    json!({
        "requestId": Uuid::new_v4(), "familyId": fixture.family, "collectivityId": fixture.collectivity,
        "categoryId": category, "message": "Sa grand-mère viendra la chercher le mercredi.",
        "fields": [{ "name": "person", "value": "Jeanne Martin" }, { "name": "from", "value": "2027-03-01" }],
        "attachments": attachments.iter().map(|name| json!({ "name": name, "file": null })).collect::<Vec<_>>()
    })
}

/// Posts `query` as a GraphQL multipart request, each file the upload of
/// `variables.input.attachments.N.file` (or of `path` when given).
pub async fn multipart(
    app: &TestApp,
    token: Option<&str>,
    query: &str,
    variables: Value,
    files: &[(&str, &str, &[u8])],
) -> reqwest::Response {
    let operations = json!({ "query": query, "variables": variables });
    let map: serde_json::Map<String, Value> = files
        .iter()
        .enumerate()
        .map(|(n, (path, _, _))| (n.to_string(), json!([path])))
        .collect();
    let mut form = reqwest::multipart::Form::new()
        .text("operations", operations.to_string())
        .text("map", Value::Object(map).to_string());
    for (n, (_, name, bytes)) in files.iter().enumerate() {
        form = form.part(
            n.to_string(),
            reqwest::multipart::Part::bytes(bytes.to_vec()).file_name(name.to_string()),
        );
    }
    let mut request = reqwest::Client::new()
        .post(format!("{}/graphql", app.address))
        .header("GraphQL-Require-Preflight", "1")
        .multipart(form);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.expect("the server answers")
}

pub async fn submitted(
    app: &TestApp,
    fixture: &Fixture,
    input: Value,
    files: &[(&str, &str, &[u8])],
) -> Response {
    let response = multipart(
        app,
        Some(&fixture.parent()),
        SUBMIT,
        json!({ "input": input }),
        files,
    )
    .await;
    assert!(response.status().is_success(), "HTTP {}", response.status());
    Response(response.json().await.unwrap())
}

/// A pickup request sent with a PDF of the identity document: as sent.
pub async fn sent_with_a_pdf(app: &TestApp, fixture: &Fixture, category: Uuid) -> Value {
    let path = attachment(0);
    let input = input(fixture, category, &["identity"]);
    let sent = submitted(app, fixture, input, &[(&path, "carte.pdf", PDF)]).await;
    sent.data("submitRequest").clone()
}

pub fn attachment(n: usize) -> String {
    format!("variables.input.attachments.{n}.file")
}

pub async fn download(app: &TestApp, token: Option<&str>, url: &str) -> reqwest::Response {
    let mut request = reqwest::Client::new().get(format!("{}{url}", app.address));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await.unwrap()
}

pub async fn stored_files(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM stored_files")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

/// Every file under the server's files folder.
pub fn files_on_disk(app: &TestApp) -> Vec<std::path::PathBuf> {
    let espace_famille_api::files::Storage::Folder(folder) = &app.files.storage else {
        return vec![];
    };
    let mut found = vec![];
    for family in std::fs::read_dir(folder).into_iter().flatten().flatten() {
        for file in std::fs::read_dir(family.path()).into_iter().flatten().flatten() {
            found.push(file.path());
        }
    }
    found
}

/// The link to request `id`'s first attachment, as `token` reads the
/// request (each reader gets a link of its own).
pub async fn first_attachment_link(app: &TestApp, token: &str, id: &Value) -> String {
    let read = app.gql(Some(token), REQUEST, json!({ "id": id })).await;
    read.data("request")["attachments"][0]["file"]["downloadUrl"]
        .as_str()
        .expect("the request has an attachment")
        .to_string()
}

/// Erases the fixture's family, as its commune's agent.
pub async fn erase_family(app: &TestApp, fixture: &Fixture) {
    let erased = app
        .gql(
            Some(&fixture.agent()),
            "mutation($f: UUID!) { eraseFamily(familyId: $f) }",
            json!({ "f": fixture.family }),
        )
        .await;
    assert_eq!(erased.data("eraseFamily"), true);
}
