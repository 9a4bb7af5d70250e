//! What a parent and a newcomer meet first, in a real browser (headless
//! Chromium) that reaches nothing but the server: the link of the
//! activation e-mail, the forgotten-password page and its link, GraphiQL.

use espace_famille_tests::browser::{fill, submit, text_of, Chromium};
use espace_famille_tests::*;
use serde_json::json;
use uuid::Uuid;

/// A server whose links name its own address, as `PUBLIC_URL` does.
async fn server_with_links() -> TestApp {
    let port = free_port();
    spawn_app_with(|settings| {
        settings.listen = ([127, 0, 0, 1], port).into();
        settings.auth.mail.public_url = format!("http://127.0.0.1:{port}");
    })
    .await
}

fn only_the_server(browser: &Chromium, app: &TestApp) {
    let requested = browser.requested();
    assert!(!requested.is_empty(), "the browser recorded no request");
    for url in requested {
        assert!(
            url.starts_with(&app.address) || url == "about:blank" || url.starts_with("data:"),
            "the page requested {url}, outside the server"
        );
    }
}

#[tokio::test]
async fn a_parent_activates_the_account_from_the_emailed_link_in_a_browser_then_logs_in() {
    let app = server_with_links().await;
    let guardian = format!("paul.durand.{}@example.fr", Uuid::new_v4().simple());
    let (_, family) = family_opened_for(&app, &guardian).await;
    // The link as the .eml file holds it, whole.
    let mail = app.next_raw_mail_to(&guardian).await;
    let link = mail_link(&mail);
    assert!(
        link.starts_with(&format!("{}/activation?token=", app.address)),
        "{link}"
    );
    let browser = Chromium::launch().await;
    let page = browser.open(&link).await;
    let shown = text_of(&page).await;
    assert!(shown.contains("Activer votre compte"), "{shown}");
    assert!(shown.contains(&guardian), "the page names the account: {shown}");

    // A password too short: the error stands beside its field, what was
    // typed stays (but the password).
    fill(&page, "#first_name", "Paul").await;
    fill(&page, "#last_name", "Durand").await;
    fill(&page, "#phone", "appelez-moi").await;
    fill(&page, "#password", "trop court").await;
    fill(&page, "#password_confirmation", "trop court").await;
    submit(&page, "button[type=submit]").await;
    let error = page
        .find_element("#password-erreur")
        .await
        .expect("the password's error beside its field")
        .inner_text()
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(error.contains("au moins 12 caractères"), "{error}");
    let phone = page
        .find_element("#phone-erreur")
        .await
        .expect("the phone's error beside its field")
        .inner_text()
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(phone.contains("numéro de téléphone"), "{phone}");
    let kept: String = page
        .evaluate("document.getElementById('first_name').value")
        .await
        .unwrap()
        .into_value()
        .unwrap();
    assert_eq!(kept, "Paul");
    let invalid: Option<String> = page
        .find_element("#password")
        .await
        .unwrap()
        .attribute("aria-invalid")
        .await
        .unwrap();
    assert_eq!(invalid.as_deref(), Some("true"));

    page.evaluate("document.getElementById('phone').value = ''")
        .await
        .unwrap();
    fill(&page, "#phone", "06 12 34 56 78").await;
    fill(&page, "#password", PASSWORD).await;
    fill(&page, "#password_confirmation", PASSWORD).await;
    submit(&page, "button[type=submit]").await;
    let shown = text_of(&page).await;
    assert!(shown.contains("Votre compte est activé"), "{shown}");

    // The parent logs in with the password chosen in the page, and the
    // family has the profile given there.
    let token = app.login(&guardian, PASSWORD).await;
    let me = app
        .gql(
            Some(&token),
            "{ me { families { id guardians { firstName lastName phone } } } }",
            json!({}),
        )
        .await;
    let families = &me.data("me")["families"];
    assert_eq!(families[0]["id"], json!(family));
    assert_eq!(
        families[0]["guardians"][0],
        json!({ "firstName": "Paul", "lastName": "Durand", "phone": "06 12 34 56 78" })
    );

    // The link served once.
    let again = browser.open(&link).await;
    let shown = text_of(&again).await;
    assert!(shown.contains("Ce lien n'est pas valide"), "{shown}");
    assert!(shown.contains("saisissez votre adresse e-mail"), "{shown}");
    only_the_server(&browser, &app);
    browser.close().await;
}

#[tokio::test]
async fn a_parent_who_forgot_the_password_asks_for_a_link_and_sets_a_new_one_in_a_browser() {
    let app = server_with_links().await;
    let guardian = format!("claire.{}@example.fr", Uuid::new_v4().simple());
    family_opened_for(&app, &guardian).await;
    app.activate_from_mail(&guardian, PASSWORD).await;

    let browser = Chromium::launch().await;
    let page = browser
        .open(&format!("{}/mot-de-passe-oublie", app.address))
        .await;
    fill(&page, "#email", &guardian.to_uppercase()).await;
    submit(&page, "button[type=submit]").await;
    let shown = text_of(&page).await;
    assert!(shown.contains("Vérifiez votre messagerie"), "{shown}");

    let mail = app.next_raw_mail_to(&guardian).await;
    let link = mail_link(&mail);
    assert!(link.contains("/reinitialisation?token="), "{link}");
    let page = browser.open(&link).await;
    let new_password = "ronce-violon-escalier";
    fill(&page, "#password", new_password).await;
    fill(&page, "#password_confirmation", "ronce-violon-escaliers").await;
    submit(&page, "button[type=submit]").await;
    let shown = text_of(&page).await;
    assert!(shown.contains("ne sont pas identiques"), "{shown}");
    fill(&page, "#password", new_password).await;
    fill(&page, "#password_confirmation", new_password).await;
    submit(&page, "button[type=submit]").await;
    let shown = text_of(&page).await;
    assert!(shown.contains("Mot de passe enregistré"), "{shown}");

    let refused = app
        .gql(
            None,
            "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
            json!({ "e": guardian, "p": PASSWORD }),
        )
        .await;
    assert_eq!(refused.error_code(), "INVALID_CREDENTIALS");
    app.login(&guardian, new_password).await;
    only_the_server(&browser, &app);
    browser.close().await;
}

#[tokio::test]
async fn graphiql_runs_a_query_with_nothing_but_the_server() {
    let app = server_with_links().await;
    let (commune, _) = family_opened_for(&app, &format!("g.{}@example.fr", Uuid::new_v4().simple())).await;
    let browser = Chromium::launch().await;
    let page = browser.open(&format!("{}/graphql", app.address)).await;
    // The editor is there once React and GraphiQL have run.
    let mut editor = None;
    for _ in 0..300 {
        if let Ok(found) = page.find_element(".graphiql-query-editor .CodeMirror").await {
            editor = Some(found);
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        editor.is_some(),
        "GraphiQL did not start: {}",
        text_of(&page).await
    );
    let query = format!("{{ collectivity(id: \"{commune}\") {{ name }} }}");
    page.evaluate(format!(
        "document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.setValue({})",
        serde_json::to_string(&query).unwrap()
    ))
    .await
    .expect("the editor takes no query");
    page.find_element(".graphiql-execute-button")
        .await
        .expect("no run button")
        .click()
        .await
        .unwrap();
    let mut answer = String::new();
    for _ in 0..300 {
        answer = page
            .evaluate("(document.querySelector('.result-window') || document.body).innerText")
            .await
            .unwrap()
            .into_value()
            .unwrap_or_default();
        if answer.contains("Dammartin-sur-Tigeaux") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(answer.contains("Dammartin-sur-Tigeaux"), "the answer: {answer}");
    only_the_server(&browser, &app);
    browser.close().await;
}
