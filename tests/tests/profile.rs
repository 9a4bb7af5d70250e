//! The profile a guardian keeps, a change of e-mail that takes effect only
//! from the link sent to the new address, and a second guardian with a
//! login of their own.

use espace_famille_tests::*;
use serde_json::json;
use uuid::Uuid;

const UPDATE: &str = "mutation($input: ProfileInput!) {
  updateProfile(input: $input) { email firstName lastName phone address { line1 line2 postcode city } }
}";

const REQUEST_CHANGE: &str =
    "mutation($e: String!, $p: String!) { requestEmailChange(newEmail: $e, password: $p) }";

async fn login_code(app: &TestApp, email: &str, password: &str) -> Option<String> {
    let answer = app
        .gql(
            None,
            "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
            json!({ "e": email, "p": password }),
        )
        .await;
    answer.0.get("errors").map(|_| answer.error_code().to_string())
}

#[tokio::test]
async fn a_guardian_updates_the_profile_and_every_reader_of_the_family_sees_it() {
    let app = spawn_app().await;
    let fixture = setup_commune(&app, &future_canteen_days(1)).await;
    let input = json!({
        "firstName": "Claire", "lastName": "Martin-Durand", "phone": "+33 6 12 34 56 78",
        "address": { "line1": " 12 rue des Écoles ", "postcode": "77580", "city": "Dammartin-sur-Tigeaux" }
    });
    let updated = app
        .gql(Some(&fixture.parent()), UPDATE, json!({ "input": input }))
        .await;
    assert_eq!(
        updated.data("updateProfile"),
        &json!({
            "email": fixture.guardian_email, "firstName": "Claire", "lastName": "Martin-Durand",
            "phone": "+33 6 12 34 56 78",
            "address": { "line1": "12 rue des Écoles", "line2": null, "postcode": "77580", "city": "Dammartin-sur-Tigeaux" }
        })
    );
    let me = app
        .gql(
            Some(&fixture.parent()),
            "{ me { profile { lastName address { city } } } }",
            json!({}),
        )
        .await;
    assert_eq!(me.data("me")["profile"]["lastName"], "Martin-Durand");
    // The commune's agent reads it on the family.
    let family = app
        .gql(
            Some(&fixture.agent()),
            "query($f: UUID!) { family(id: $f) { guardians { email phone address { postcode } } } }",
            json!({ "f": fixture.family }),
        )
        .await;
    assert_eq!(
        family.data("family")["guardians"],
        json!([{ "email": fixture.guardian_email, "phone": "+33 6 12 34 56 78", "address": { "postcode": "77580" } }])
    );
    // Bad input is refused and changes nothing.
    for (field, value) in [
        ("phone", json!("appelez-moi")),
        (
            "address",
            json!({ "line1": "1 rue", "postcode": "<77>", "city": "X" }),
        ),
        ("lastName", json!(" ")),
        ("firstName", json!("a".repeat(101))),
    ] {
        let mut bad = input.clone();
        bad[field] = value;
        let refused = app
            .gql(Some(&fixture.parent()), UPDATE, json!({ "input": bad }))
            .await;
        assert_eq!(refused.error_code(), "VALIDATION", "{field}");
    }
    let events = app.events_in("Family", &fixture.family.to_string()).await;
    let me = app
        .gql(Some(&fixture.parent()), "{ me { profile { phone } } }", json!({}))
        .await;
    assert_eq!(me.data("me")["profile"]["phone"], "+33 6 12 34 56 78");
    // An agent has no guardian's profile to update.
    let agent = app
        .gql(Some(&fixture.agent()), UPDATE, json!({ "input": input }))
        .await;
    assert_eq!(agent.error_code(), "FORBIDDEN");
    assert_eq!(app.events_in("Family", &fixture.family.to_string()).await, events);
}

#[tokio::test]
async fn an_e_mail_change_takes_effect_only_from_the_link_sent_to_the_new_address() {
    let app = spawn_app().await;
    let fixture = setup_commune(&app, &future_canteen_days(1)).await;
    let old = fixture.guardian_email.clone();
    let new = format!("claire.nouvelle.{}@example.org", Uuid::new_v4().simple());

    let wrong = app
        .gql(
            Some(&fixture.parent()),
            REQUEST_CHANGE,
            json!({ "e": new, "p": "not the password" }),
        )
        .await;
    assert_eq!(
        wrong.error_code(),
        "INVALID_CREDENTIALS",
        "a session alone is not enough"
    );
    let own = app
        .gql(
            Some(&fixture.parent()),
            REQUEST_CHANGE,
            json!({ "e": old.to_uppercase(), "p": PASSWORD }),
        )
        .await;
    assert_eq!(own.error_code(), "VALIDATION");

    let asked = app
        .gql(
            Some(&fixture.parent()),
            REQUEST_CHANGE,
            json!({ "e": new, "p": PASSWORD }),
        )
        .await;
    assert_eq!(asked.data("requestEmailChange"), true);
    let told = app.next_mail_to(&old).await;
    assert!(told.contains("a été demandé") && told.contains(&new), "{told}");
    let confirmation = app.next_mail_to(&new).await;
    assert!(
        confirmation.contains("/confirmation-email?token="),
        "{confirmation}"
    );
    let token = link_token(&confirmation);

    // Nothing changed yet, and opening the link changes nothing either.
    let page = reqwest::get(format!("{}/confirmation-email?token={token}", app.address))
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains(&new));
    assert_eq!(login_code(&app, &old, PASSWORD).await, None);
    assert_eq!(
        login_code(&app, &new, PASSWORD).await.as_deref(),
        Some("INVALID_CREDENTIALS")
    );

    let confirmed = app
        .gql(
            None,
            "mutation($t: String!) { confirmEmailChange(token: $t) }",
            json!({ "t": token }),
        )
        .await;
    assert_eq!(confirmed.data("confirmEmailChange"), true);
    let done = app.next_mail_to(&old).await;
    assert!(done.contains("utilise désormais l'adresse"), "{done}");
    assert_eq!(
        login_code(&app, &old, PASSWORD).await.as_deref(),
        Some("INVALID_CREDENTIALS")
    );
    let token_now = app.login(&new, PASSWORD).await;
    let me = app
        .gql(
            Some(&token_now),
            "{ me { email families { guardians { email } } } }",
            json!({}),
        )
        .await;
    assert_eq!(me.data("me")["email"], json!(new));
    assert_eq!(me.data("me")["families"][0]["guardians"][0]["email"], json!(new));
    // The session opened before the change reads the new address too.
    let before = app
        .gql(Some(&fixture.parent()), "{ me { email } }", json!({}))
        .await;
    assert_eq!(before.data("me")["email"], json!(new));
    let types: Vec<String> =
        sqlx::query_scalar("SELECT event_type FROM events WHERE aggregate_id = $1 ORDER BY sequence")
            .bind(fixture.family.to_string())
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(types.last().map(String::as_str), Some("GuardianEmailChanged"));
    let again = app
        .gql(
            None,
            "mutation($t: String!) { confirmEmailChange(token: $t) }",
            json!({ "t": token }),
        )
        .await;
    assert_eq!(again.error_code(), "INVALID_TOKEN");
}

#[tokio::test]
async fn an_e_mail_change_to_a_taken_address_or_undone_by_a_new_password_changes_nothing() {
    let app = spawn_app().await;
    let fixture = setup_commune(&app, &future_canteen_days(1)).await;
    let old = fixture.guardian_email.clone();
    // The agent's address is taken: its owner is told, the caller is not.
    let taken = app
        .gql(
            Some(&fixture.parent()),
            REQUEST_CHANGE,
            json!({ "e": fixture.agent_email, "p": PASSWORD }),
        )
        .await;
    assert_eq!(taken.data("requestEmailChange"), true);
    let notice = app.next_mail_to(&fixture.agent_email).await;
    assert!(notice.contains("déjà celle d'un autre compte"), "{notice}");
    assert!(!notice.contains("token="), "{notice}");
    app.next_mail_to(&old).await;

    // A change asked, then a new password chosen: the change is undone.
    let new = format!("x.{}@example.org", Uuid::new_v4().simple());
    app.gql(
        Some(&fixture.parent()),
        REQUEST_CHANGE,
        json!({ "e": new, "p": PASSWORD }),
    )
    .await
    .data("requestEmailChange");
    let token = link_token(&app.next_mail_to(&new).await);
    app.gql(
        None,
        "mutation($e: String!) { requestPasswordReset(email: $e) }",
        json!({ "e": old }),
    )
    .await
    .data("requestPasswordReset");
    let mut reset = app.next_mail_to(&old).await;
    if !reset.contains("reinitialisation") {
        reset = app.next_mail_to(&old).await;
    }
    app.gql(
        None,
        "mutation($t: String!, $p: String!) { resetPassword(token: $t, password: $p) { token } }",
        json!({ "t": link_token(&reset), "p": "ronce-violon-escalier" }),
    )
    .await
    .data("resetPassword");
    let undone = app
        .gql(
            None,
            "mutation($t: String!) { confirmEmailChange(token: $t) }",
            json!({ "t": token }),
        )
        .await;
    assert_eq!(undone.error_code(), "INVALID_TOKEN");
    app.login(&old, "ronce-violon-escalier").await;
}

#[tokio::test]
async fn a_second_guardian_invited_logs_in_with_their_own_account_and_sees_the_family() {
    let app = spawn_app().await;
    let days = future_canteen_days(2);
    let fixture = setup_commune(&app, &days).await;
    app.book(&fixture, &days[..1]).await.data("submitBasket");
    let paul = format!("paul.{}@example.fr", Uuid::new_v4().simple());
    let invite = "mutation($f: UUID!, $e: String!) { inviteGuardian(familyId: $f, email: $e) { id } }";
    let invited = app
        .gql(
            Some(&fixture.parent()),
            invite,
            json!({ "f": fixture.family, "e": paul }),
        )
        .await;
    assert_eq!(invited.data("inviteGuardian")["id"], json!(fixture.family));
    let mail = app.next_mail_to(&paul).await;
    assert!(
        mail.contains("Vous avez été ajouté(e) comme responsable"),
        "{mail}"
    );
    let token = link_token(&mail);
    let activated = app
        .gql(
            None,
            "mutation($t: String!, $p: String!) {
               activateAccount(input: { token: $t, password: $p, firstName: \"Paul\", lastName: \"Durand\" }) { token }
             }",
            json!({ "t": token, "p": "ronce-violon-escalier" }),
        )
        .await;
    activated.data("activateAccount");
    let second = app.login(&paul, "ronce-violon-escalier").await;
    let calendar = app.calendar(&fixture, days[0], days[1]).await;
    let theirs = {
        let response = app
            .gql(
                Some(&second),
                CALENDAR,
                json!({ "child": fixture.child, "unit": fixture.meal, "from": days[0], "to": days[1] }),
            )
            .await;
        response.data("calendar").clone()
    };
    assert_eq!(
        &theirs,
        calendar.data("calendar"),
        "the same calendar as the first guardian's"
    );
    assert_eq!(theirs[0]["status"], "CONFIRMED");
    let family = app
        .gql(
            Some(&second),
            "query($f: UUID!) { family(id: $f) { guardians { accountId firstName email } } }",
            json!({ "f": fixture.family }),
        )
        .await;
    let guardians = family.data("family")["guardians"].as_array().unwrap().clone();
    assert_eq!(guardians.len(), 2);
    assert_ne!(guardians[0]["accountId"], guardians[1]["accountId"]);
    assert_eq!(guardians[1]["email"], json!(paul));
    // The second guardian books too.
    let basket = app
        .gql(
            Some(&second),
            SUBMIT_BASKET,
            json!({ "input": { "basketId": Uuid::new_v4(), "familyId": fixture.family,
                               "lines": book_lines(&fixture, &days[1..2]) } }),
        )
        .await;
    assert_eq!(basket.data("submitBasket")["status"], "ACCEPTED");

    // Once per address, by the family's own guardian or agent, four at most.
    let again = app
        .gql(
            Some(&second),
            invite,
            json!({ "f": fixture.family, "e": paul.to_uppercase() }),
        )
        .await;
    assert_eq!(again.error_code(), "CONFLICT");
    let other = setup_commune(&app, &days).await;
    let stranger = app
        .gql(
            Some(&other.agent()),
            invite,
            json!({ "f": fixture.family, "e": "z@example.fr" }),
        )
        .await;
    assert_eq!(stranger.error_code(), "NOT_FOUND");
    let other_parent = app
        .gql(
            Some(&other.parent()),
            invite,
            json!({ "f": fixture.family, "e": "z@example.fr" }),
        )
        .await;
    assert_eq!(other_parent.error_code(), "NOT_FOUND");
    for n in 0..2 {
        let email = format!("g{n}.{}@example.fr", Uuid::new_v4().simple());
        app.gql(
            Some(&fixture.agent()),
            invite,
            json!({ "f": fixture.family, "e": email }),
        )
        .await
        .data("inviteGuardian");
    }
    let fifth = app
        .gql(
            Some(&fixture.parent()),
            invite,
            json!({ "f": fixture.family, "e": "g5@example.fr" }),
        )
        .await;
    assert_eq!(fifth.error_code(), "TOO_MANY_GUARDIANS");
}
