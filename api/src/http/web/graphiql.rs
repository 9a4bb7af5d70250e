//! GraphiQL at `GET /graphql`, from the server's own copy of its assets:
//! a commune's intranet, a locked-down network or a headless browser gets
//! the same explorer as a machine on the internet. `scripts/graphiql-assets`
//! installs the pinned production builds (with their licences) from the
//! npm registry into `.data/graphiql`; the page's own start-up script is
//! here, so the page needs no inline script and its policy allows nothing
//! but this server.

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};

use crate::http::AppState;

/// What the explorer loads, by the name it is served under: installed
/// files, and the two of its own.
const INSTALLED: &[(&str, &str)] = &[
    ("react.production.min.js", "text/javascript; charset=utf-8"),
    ("react-dom.production.min.js", "text/javascript; charset=utf-8"),
    ("graphiql.min.js", "text/javascript; charset=utf-8"),
    ("graphiql.min.css", "text/css; charset=utf-8"),
    ("LICENSES.txt", "text/plain; charset=utf-8"),
];
const START_JS: &str = include_str!("graphiql-start.js");
const START_CSS: &str = "html, body, #graphiql { height: 100%; margin: 0; }\n";

const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                      font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
                      form-action 'none'";

const PAGE: &str = r#"<!DOCTYPE html>
<html lang="fr">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>GraphiQL – Espace Famille</title>
<link rel="stylesheet" href="/graphiql/graphiql.min.css">
<link rel="stylesheet" href="/graphiql/start.css">
</head>
<body>
<div id="graphiql">Chargement de GraphiQL…</div>
<script src="/graphiql/react.production.min.js"></script>
<script src="/graphiql/react-dom.production.min.js"></script>
<script src="/graphiql/graphiql.min.js"></script>
<script src="/graphiql/start.js"></script>
</body>
</html>
"#;

/// The explorer's page, or why it cannot be shown.
pub fn page(state: &AppState) -> Response {
    let installed = INSTALLED
        .iter()
        .all(|(name, _)| state.web.graphiql_dir.join(name).is_file());
    let mut response = if installed {
        Html(PAGE).into_response()
    } else {
        let text = format!(
            "GraphiQL's files are not installed in {}: run scripts/graphiql-assets \
             (or set GRAPHIQL_DIR). The API itself answers at POST /graphql.\n",
            state.web.graphiql_dir.display()
        );
        (StatusCode::SERVICE_UNAVAILABLE, text).into_response()
    };
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(POLICY));
    super::secure(headers);
    response
}

/// `GET /graphiql/{file}`: one of the explorer's files, by its name in the
/// list above (nothing else on the disk is reachable).
pub async fn asset(State(state): State<AppState>, Path(file): Path<String>) -> Response {
    let (body, content_type): (Vec<u8>, &'static str) = match file.as_str() {
        "start.js" => (START_JS.as_bytes().to_vec(), "text/javascript; charset=utf-8"),
        "start.css" => (START_CSS.as_bytes().to_vec(), "text/css; charset=utf-8"),
        name => {
            let Some((name, content_type)) = INSTALLED.iter().find(|(known, _)| *known == name) else {
                return StatusCode::NOT_FOUND.into_response();
            };
            match tokio::fs::read(state.web.graphiql_dir.join(name)).await {
                Ok(body) => (body, content_type),
                Err(_) => return StatusCode::NOT_FOUND.into_response(),
            }
        }
    };
    let mut response = ([(header::CONTENT_TYPE, content_type)], body).into_response();
    let headers = response.headers_mut();
    super::secure(headers);
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    response
}
