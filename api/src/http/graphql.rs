//! GraphQL over HTTP, as its specification (graphql.github.io/graphql-over-http)
//! has it, and no more: what another site can send from a visitor's browser
//! without a preflight never runs.
//!
//! - `POST /graphql` takes `application/json`; a form, `text/plain` or
//!   multipart body (which a page on any site can post) gets 415, but for
//!   the GraphQL multipart request (files) sent with the
//!   `GraphQL-Require-Preflight` header, which no other site's page can
//!   send without a preflight.
//! - `GET /graphql` runs queries from the URL (never a mutation: 405); a
//!   browser asking for HTML gets GraphiQL.
//! - The answer is in a type the client accepts: `application/json` when it
//!   names none or `*/*`, `application/graphql-response+json` when it asks
//!   for it, 406 when it accepts neither. With the latter, a request that
//!   cannot run (JSON, parse or validation failure) answers 400 without
//!   `data`; with `application/json` every GraphQL answer is 200, as the
//!   specification requires.
//! - Every error carries an `extensions.code`.

use std::collections::HashMap;

use async_graphql::{Request, Response, Variables};
use axum::body::Body;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::auth::identity::Caller;
use crate::error::ErrorCode;
use crate::graphql::limits;
use crate::http::AppState;
mod answer;
mod multipart;

use answer::{not_acceptable, rate_limited, respond, unavailable, Refused};
pub(crate) use answer::{try_again, Answer};

/// The longest GraphQL document taken, in bytes (the standard
/// introspection query takes under 2 kB).
pub const MAX_DOCUMENT_BYTES: usize = 32 * 1024;
/// The longest string a variable may hold, in characters: every field has
/// its own bound, checked by the domain; this one keeps what no field
/// takes out of the server's memory.
pub const MAX_STRING_CHARS: usize = 16 * 1024;

const GRAPHQL_RESPONSE: &str = "application/graphql-response+json";
const JSON: &str = "application/json";
const MULTIPART: &str = "multipart/form-data";
/// The header a multipart request must carry (a form posted by another
/// site's page cannot).
pub const PREFLIGHT: &str = "graphql-require-preflight";

/// A request's body, as the specification names its members.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct JsonBody {
    query: Option<Value>,
    operation_name: Option<Value>,
    variables: Option<Value>,
    extensions: Option<Value>,
}

pub async fn post(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    body: Body,
) -> axum::response::Response {
    let Some(answer) = Answer::negotiate(&headers) else {
        return not_acceptable();
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let media = content_type
        .split(';')
        .next()
        .map(|v| v.trim().to_ascii_lowercase());
    // Files come as the GraphQL multipart request, with a header no other
    // site's page can send without a preflight.
    if media.as_deref() == Some(MULTIPART) && headers.contains_key(PREFLIGHT) {
        return match multipart::read(&state, &content_type, body).await {
            Ok(request) => run(&state, client, &headers, request, answer, false).await,
            Err(refused) => refused.into_response(answer),
        };
    }
    if media.as_deref() != Some(JSON) {
        return Refused {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code: ErrorCode::UnsupportedMediaType,
            message: format!(
                "a GraphQL request is sent as application/json (or, with files, as multipart/form-data with the {PREFLIGHT} header)"
            ),
        }
        .into_response(answer);
    }
    // A body over the limit is refused from its Content-Length, before any
    // of it is read, or as soon as it passes the limit.
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    let too_large = || {
        (
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the body is over {} bytes", state.max_body_bytes),
        )
            .into_response()
    };
    if declared.is_some_and(|length| length > state.max_body_bytes) {
        return too_large();
    }
    let Ok(body) = axum::body::to_bytes(body, state.max_body_bytes).await else {
        return too_large();
    };
    let request = match serde_json::from_slice::<JsonBody>(&body) {
        Ok(body) => request_of(body.query, body.operation_name, body.variables, body.extensions),
        Err(error) => Err(Refused::bad_request(format!(
            "the body is not a GraphQL request: {error}"
        ))),
    };
    match request {
        Ok(request) => run(&state, client, &headers, request, answer, false).await,
        Err(refused) => refused.into_response(answer),
    }
}

pub async fn get(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<std::net::SocketAddr>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> axum::response::Response {
    // The URL's own parameters, decoded as forms and URLs encode them.
    let wants_html = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    if query.is_none() && wants_html {
        return crate::http::web::graphiql::page(&state);
    }
    let Some(answer) = Answer::negotiate(&headers) else {
        return not_acceptable();
    };
    let parameters: HashMap<String, String> = query
        .as_deref()
        .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
        .unwrap_or_default();
    let parsed = |name: &str| -> Result<Option<Value>, Refused> {
        parameters
            .get(name)
            .map(|text| {
                serde_json::from_str(text).map_err(|_| Refused::bad_request(format!("`{name}` is not JSON")))
            })
            .transpose()
    };
    let request = (|| {
        let variables = parsed("variables")?;
        let extensions = parsed("extensions")?;
        request_of(
            parameters.get("query").cloned().map(Value::String),
            parameters.get("operationName").cloned().map(Value::String),
            variables,
            extensions,
        )
    })();
    match request {
        Ok(request) => run(&state, client, &headers, request, answer, true).await,
        Err(refused) => refused.into_response(answer),
    }
}

/// The request, or why it cannot be one.
fn request_of(
    query: Option<Value>,
    operation_name: Option<Value>,
    variables: Option<Value>,
    extensions: Option<Value>,
) -> Result<Request, Refused> {
    let query = match query {
        Some(Value::String(query)) => query,
        Some(_) => return Err(Refused::bad_request("`query` must be a string")),
        None => return Err(Refused::bad_request("the request has no `query`")),
    };
    if query.len() > MAX_DOCUMENT_BYTES {
        return Err(Refused {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: ErrorCode::DocumentTooLarge,
            message: format!("a GraphQL document takes at most {MAX_DOCUMENT_BYTES} bytes"),
        });
    }
    let mut request = Request::new(query);
    match operation_name {
        None | Some(Value::Null) => {}
        Some(Value::String(name)) => request = request.operation_name(name),
        Some(_) => return Err(Refused::bad_request("`operationName` must be a string")),
    }
    match variables {
        None | Some(Value::Null) => {}
        Some(variables @ Value::Object(_)) => {
            if longest_string(&variables) > MAX_STRING_CHARS {
                return Err(Refused::graphql(
                    ErrorCode::Validation,
                    format!("a variable holds a string longer than {MAX_STRING_CHARS} characters"),
                ));
            }
            request = request.variables(Variables::from_json(variables));
        }
        Some(_) => return Err(Refused::bad_request("`variables` must be an object")),
    }
    match extensions {
        None | Some(Value::Null) | Some(Value::Object(_)) => {}
        Some(_) => return Err(Refused::bad_request("`extensions` must be an object")),
    }
    Ok(request)
}

/// The length, in characters, of the longest string anywhere in `value`.
fn longest_string(value: &Value) -> usize {
    match value {
        Value::String(text) => text.chars().count(),
        Value::Array(items) => items.iter().map(longest_string).max().unwrap_or(0),
        Value::Object(members) => members
            .iter()
            .map(|(name, value)| name.chars().count().max(longest_string(value)))
            .max()
            .unwrap_or(0),
        _ => 0,
    }
}

/// Parses (through the cache), checks the document's limits, authenticates
/// and executes.
async fn run(
    state: &AppState,
    client: std::net::SocketAddr,
    headers: &HeaderMap,
    request: Request,
    answer: Answer,
    from_get: bool,
) -> axum::response::Response {
    let document = match state.documents.document(&request.query) {
        Ok(document) => document,
        Err(error) => {
            return Refused::graphql(ErrorCode::GraphqlParseFailed, error.to_string()).into_response(answer);
        }
    };
    if let Err(error) = limits::check(&document) {
        return Refused::graphql(ErrorCode::GraphqlValidationFailed, error.to_string()).into_response(answer);
    }
    if from_get && is_mutation(&document, request.operation_name.as_deref()) {
        return (
            StatusCode::METHOD_NOT_ALLOWED,
            [(header::ALLOW, HeaderValue::from_static("POST")), (header::CONTENT_TYPE, answer.content_type())],
            json!({ "errors": [{ "message": "a mutation is sent with POST", "extensions": { "code": ErrorCode::MethodNotAllowed.as_str() } }] })
                .to_string(),
        )
            .into_response();
    }
    // Refusals and closed reasons read in the language the request prefers.
    let locale = crate::i18n::Locale::from_accept_language(
        headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()),
    );
    if !state.database.is_up() {
        return unavailable(locale, answer).await;
    }
    let operation = operation_of(&document, request.operation_name.as_deref());
    let started = std::time::Instant::now();
    // The database lost while this runs: what waits for it (the session,
    // the read models, the fields) would wait for the pool's timeout.
    // Dropped, a write is rolled back or was committed whole; the caller
    // retries it with its id.
    tokio::select! {
        response = authenticate_and_execute(state, client, headers, request, document, operation.clone(), answer, locale) => response,
        () = state.database.lost() => {
            crate::metrics::graphql_request(operation.0, &operation.1, ErrorCode::Unavailable.as_str(), started.elapsed());
            unavailable(locale, answer).await
        }
    }
}

/// `run`'s second half, once the document passed its checks and the
/// database is up.
#[allow(clippy::too_many_arguments)]
async fn authenticate_and_execute(
    state: &AppState,
    client: std::net::SocketAddr,
    headers: &HeaderMap,
    mut request: Request,
    document: async_graphql::parser::types::ExecutableDocument,
    operation: (&'static str, String),
    answer: Answer,
    locale: crate::i18n::Locale,
) -> axum::response::Response {
    let reads_only = !is_mutation(&document, request.operation_name.as_deref());
    let mutated = if reads_only {
        Vec::new()
    } else {
        root_fields(&document, request.operation_name.as_deref())
    };
    request.set_parsed_query(document);
    let bearer = crate::http::bearer(headers);
    let identity = match &bearer {
        Some(token) => match state.sessions.identity(token).await {
            Ok(identity) => identity,
            Err(error) => {
                let error =
                    async_graphql::Error::from(error).into_server_error(async_graphql::Pos::default());
                return respond(Response::from_errors(vec![error]), answer, false);
            }
        },
        None => None,
    };
    if let Some(identity) = &identity {
        crate::logs::record_account(identity.account_id);
    }
    // A query first waits for what its caller's writes, or writes about
    // its family or commune, left unseen (see `crate::unseen`).
    if let (true, Some(identity)) = (reads_only, &identity) {
        state
            .commands
            .wait_for_unseen(&crate::unseen::Reader::of(identity))
            .await;
    }
    if !reads_only {
        if let Some(wait) = throttled(state, &mutated, identity.as_deref(), client.ip()) {
            return rate_limited(locale, wait, answer).await;
        }
    }
    let caller = Caller {
        identity,
        client_address: client.ip().to_string(),
        bearer,
    };
    let started = std::time::Instant::now();
    let response = crate::i18n::within(locale, state.schema.execute(request.data(caller))).await;
    // Errors with no path came before any field ran: the request was
    // refused as a whole (validation, a limit).
    let refused = response.data == async_graphql::Value::Null
        && !response.errors.is_empty()
        && response.errors.iter().all(|e| e.path.is_empty());
    // A field the schema does not have never names a metric's label.
    let (kind, operation) = if refused {
        ("invalid", "invalid".to_string())
    } else {
        operation
    };
    let code = match response.errors.first() {
        None => "OK".to_string(),
        Some(_) if refused => ErrorCode::GraphqlValidationFailed.as_str().to_string(),
        Some(error) => match error.extensions.as_ref().and_then(|e| e.get("code")) {
            Some(async_graphql::Value::String(code)) => code.clone(),
            _ => ErrorCode::Validation.as_str().to_string(),
        },
    };
    crate::metrics::graphql_request(kind, &operation, &code, started.elapsed());
    respond(response, answer, refused)
}

type Operation = async_graphql::Positioned<async_graphql::parser::types::OperationDefinition>;

/// The operations of `document` that may run: the one named, the only
/// one, or, with no name among several, each of them (whichever would
/// run, it is counted, and none may write from a GET).
fn may_run<'d>(
    document: &'d async_graphql::parser::types::ExecutableDocument,
    name: Option<&str>,
) -> Vec<&'d Operation> {
    use async_graphql::parser::types::DocumentOperations;
    match (&document.operations, name) {
        (DocumentOperations::Single(operation), _) => vec![operation],
        (DocumentOperations::Multiple(operations), Some(name)) => operations.get(name).into_iter().collect(),
        (DocumentOperations::Multiple(operations), None) => operations.values().collect(),
    }
}

/// The root fields of the operations that may run, by name (an alias
/// counts as its field; a fragment at the root, as an unnamed field):
/// what the rate limits count.
fn root_fields(
    document: &async_graphql::parser::types::ExecutableDocument,
    name: Option<&str>,
) -> Vec<String> {
    use async_graphql::parser::types::Selection;
    may_run(document, name)
        .into_iter()
        .flat_map(|operation| &operation.node.selection_set.node.items)
        .map(|selection| match &selection.node {
            Selection::Field(field) => field.node.name.node.to_string(),
            _ => String::new(),
        })
        .collect()
}

/// How long the caller must wait, when one of the mutation's root fields
/// is over its class's limit for the caller's account or address.
fn throttled(
    state: &AppState,
    fields: &[String],
    identity: Option<&crate::auth::identity::Identity>,
    address: std::net::IpAddr,
) -> Option<std::time::Duration> {
    use crate::auth::throttle::Class;
    let mut counts: Vec<(Class, u32)> = Vec::new();
    for class in fields.iter().filter_map(|f| Class::of(f)) {
        match counts.iter_mut().find(|(c, _)| *c == class) {
            Some((_, n)) => *n += 1,
            None => counts.push((class, 1)),
        }
    }
    let account = identity.map(|i| i.account_id);
    counts
        .into_iter()
        .find_map(|(class, n)| state.throttle.check(class, account, address, n).err())
}

/// The kind of the operation that will run and its first root field, as
/// the metrics name it.
fn operation_of(
    document: &async_graphql::parser::types::ExecutableDocument,
    name: Option<&str>,
) -> (&'static str, String) {
    use async_graphql::parser::types::{OperationType, Selection};
    let Some(operation) = may_run(document, name).first().copied() else {
        return ("invalid", "invalid".to_string());
    };
    let kind = match operation.node.ty {
        OperationType::Query => "query",
        OperationType::Mutation => "mutation",
        OperationType::Subscription => "subscription",
    };
    let field = match operation.node.selection_set.node.items.first().map(|s| &s.node) {
        Some(Selection::Field(field)) => field.node.name.node.to_string(),
        Some(_) => "fragment".to_string(),
        None => "none".to_string(),
    };
    (kind, field)
}

fn is_mutation(document: &async_graphql::parser::types::ExecutableDocument, name: Option<&str>) -> bool {
    use async_graphql::parser::types::OperationType;
    may_run(document, name)
        .iter()
        .any(|operation| operation.node.ty != OperationType::Query)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_huge_string_anywhere_in_the_variables_is_found() {
        let deep = json!({ "input": { "lines": [{ "name": "x".repeat(MAX_STRING_CHARS + 1) }] } });
        assert_eq!(longest_string(&deep), MAX_STRING_CHARS + 1);
    }
}
