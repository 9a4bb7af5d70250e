//! The browser-facing part over plain HTTP: the links' pages refuse forged
//! and cross-site posts, tell an expired link from a used one and lead to
//! a new link; GraphiQL's assets come from the server under a strict
//! policy; CORS answers the listed origins and no other.

use espace_famille_tests::*;
use reqwest::header::{HeaderMap, ACCESS_CONTROL_ALLOW_ORIGIN};
use reqwest::StatusCode;
use serde_json::json;
use uuid::Uuid;

/// The form's cookie (`name=value`) and its hidden CSRF value, from a page.
async fn open_form(client: &reqwest::Client, url: &str) -> (String, String) {
    let page = client.get(url).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK, "{url}");
    let cookie = page.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let html = page.text().await.unwrap();
    let start = html.find("name=\"csrf\" value=\"").expect("a CSRF field") + "name=\"csrf\" value=\"".len();
    let value = html[start..].split('"').next().unwrap().to_string();
    (cookie, value)
}

#[tokio::test]
async fn a_form_posted_without_its_cookie_or_from_another_site_changes_nothing() {
    let app = spawn_app().await;
    let guardian = format!("paul.{}@example.fr", Uuid::new_v4().simple());
    family_opened_for(&app, &guardian).await;
    let token = link_token(&app.next_mail_to(&guardian).await);
    let client = reqwest::Client::new();
    let url = format!("{}/activation?token={token}", app.address);
    let (cookie, csrf) = open_form(&client, &url).await;
    let fields = |csrf: &str| {
        vec![
            ("token", token.clone()),
            ("csrf", csrf.to_string()),
            ("first_name", "Paul".into()),
            ("last_name", "Durand".into()),
            ("password", PASSWORD.into()),
            ("password_confirmation", PASSWORD.into()),
        ]
    };
    let post = || client.post(format!("{}/activation", app.address));
    // No cookie: another site's page cannot read or set it.
    let forged = post().form(&fields(&csrf)).send().await.unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    // The cookie, but the field of another form.
    let other = post()
        .header("cookie", &cookie)
        .form(&fields("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), StatusCode::FORBIDDEN);
    // Both, from a page of another site.
    let cross = post()
        .header("cookie", &cookie)
        .header("sec-fetch-site", "cross-site")
        .form(&fields(&csrf))
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), StatusCode::FORBIDDEN);
    let refused = app
        .gql(
            None,
            "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
            json!({ "e": guardian, "p": PASSWORD }),
        )
        .await;
    assert_eq!(
        refused.error_code(),
        "INVALID_CREDENTIALS",
        "nothing was activated"
    );
    // The link still works, from its own page.
    let taken = post()
        .header("cookie", &cookie)
        .form(&fields(&csrf))
        .send()
        .await
        .unwrap();
    assert_eq!(taken.status(), StatusCode::OK);
    assert!(taken.text().await.unwrap().contains("Votre compte est activé"));
    app.login(&guardian, PASSWORD).await;
}

#[tokio::test]
async fn an_expired_link_says_so_and_leads_to_a_new_one() {
    let app = spawn_app().await;
    let guardian = format!("lea.{}@example.fr", Uuid::new_v4().simple());
    family_opened_for(&app, &guardian).await;
    let token = link_token(&app.next_mail_to(&guardian).await);
    sqlx::query("UPDATE account_tokens SET expires_at = now() - interval '1 minute'")
        .execute(&app.pool)
        .await
        .unwrap();
    let client = reqwest::Client::new();
    let expired = client
        .get(format!("{}/activation?token={token}", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(expired.status(), StatusCode::GONE);
    let text = expired.text().await.unwrap();
    assert!(text.contains("Ce lien a expiré"), "{text}");
    assert!(text.contains("href=\"/mot-de-passe-oublie\""), "{text}");
    let unknown = client
        .get(format!("{}/activation?token=not-a-token", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);

    // Asking again: an account never activated gets a new activation link.
    let (cookie, csrf) = open_form(&client, &format!("{}/mot-de-passe-oublie", app.address)).await;
    let asked = client
        .post(format!("{}/mot-de-passe-oublie", app.address))
        .header("cookie", cookie)
        .form(&[("csrf", csrf.as_str()), ("email", guardian.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(asked.status(), StatusCode::OK);
    let mail = app.next_mail_to(&guardian).await;
    assert!(mail.contains("Activez votre compte"), "{mail}");
    let fresh = link_token(&mail);
    let page = client
        .get(format!("{}/activation?token={fresh}", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("id=\"first_name\""),
        "the profile is still asked: {html}"
    );
}

#[tokio::test]
async fn the_pages_and_graphiql_allow_nothing_but_the_server() {
    let app = spawn_app().await;
    let client = reqwest::Client::new();
    let page = client
        .get(format!("{}/mot-de-passe-oublie", app.address))
        .send()
        .await
        .unwrap();
    let policy = page.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(policy.starts_with("default-src 'none'"), "{policy}");
    assert!(
        !policy.contains("script-src"),
        "the pages run no script: {policy}"
    );
    assert_eq!(page.headers()["referrer-policy"], "no-referrer");
    assert_eq!(page.headers()["cache-control"], "no-store");

    let graphiql = client
        .get(format!("{}/graphql", app.address))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(
        graphiql.status(),
        StatusCode::OK,
        "scripts/graphiql-assets was run"
    );
    let policy = graphiql.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(policy.contains("script-src 'self';"), "{policy}");
    let html = graphiql.text().await.unwrap();
    assert!(
        !html.contains("https://"),
        "the page loads from the server only: {html}"
    );
    assert!(!html.contains("<script>"), "no inline script: {html}");
    let licences = client
        .get(format!("{}/graphiql/LICENSES.txt", app.address))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(licences.contains("graphiql@3.9.0") && licences.contains("MIT License"));
    for outside in ["..%2FCargo.toml", "VERSIONS", "graphiql.min.js.map"] {
        let answer = client
            .get(format!("{}/graphiql/{outside}", app.address))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::NOT_FOUND, "{outside}");
    }
}

async fn preflight(app: &TestApp, origin: &str) -> HeaderMap {
    let answer = reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, format!("{}/graphql", app.address))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "authorization, content-type")
        .send()
        .await
        .unwrap();
    answer.headers().clone()
}

#[tokio::test]
async fn cors_answers_the_listed_origins_and_no_other() {
    let portal = "https://famille.mairie.example.fr";
    let app = spawn_app_with(|settings| settings.web.cors_origins = vec![portal.into()]).await;
    let allowed = preflight(&app, portal).await;
    assert_eq!(allowed[ACCESS_CONTROL_ALLOW_ORIGIN], portal);
    let headers = allowed["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(
        headers.contains("authorization") && headers.contains("content-type"),
        "{headers}"
    );
    assert!(
        allowed.get("access-control-allow-credentials").is_none(),
        "no cookies: the session is in the Authorization header"
    );
    let refused = preflight(&app, "https://evil.example").await;
    assert!(refused.get(ACCESS_CONTROL_ALLOW_ORIGIN).is_none());

    let query = reqwest::Client::new()
        .post(format!("{}/graphql", app.address))
        .header("origin", portal)
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(query.headers()[ACCESS_CONTROL_ALLOW_ORIGIN], portal);
    // The pages are for this server's own origin only.
    let pages = reqwest::Client::new()
        .get(format!("{}/mot-de-passe-oublie", app.address))
        .header("origin", portal)
        .send()
        .await
        .unwrap();
    assert!(pages.headers().get(ACCESS_CONTROL_ALLOW_ORIGIN).is_none());

    // Nothing is allowed by default.
    let default = spawn_app().await;
    assert!(preflight(&default, portal)
        .await
        .get(ACCESS_CONTROL_ALLOW_ORIGIN)
        .is_none());
}
