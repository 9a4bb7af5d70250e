//! Accounts end to end: activation, login and logout, rate limiting,
//! password reset, and one login across communes.

use espace_famille_tests::*;
use serde_json::{json, Value};
use uuid::Uuid;

const ACTIVATE: &str = "mutation($t: String!, $p: String!) {
  activateAccount(input: { token: $t, password: $p, firstName: \"Claire\", lastName: \"Martin\" }) { token }
}";

const LOGIN: &str =
    "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token grants { role scope } } }";

const ME: &str =
    "{ me { accountId email grants { role scope } families { id memberships { collectivityId familyRef } }
  collectivities { id name units { id name } } } }";

async fn open_family(app: &TestApp, agent: &str, collectivity: Uuid, email: &str) -> Uuid {
    let family = Uuid::new_v4();
    app.gql(
        Some(agent),
        "mutation($c: UUID!, $f: UUID!, $e: String!) {
           openFamilyAccount(input: { collectivityId: $c, id: $f, familyRef: \"F-9\", guardianEmail: $e }) { id }
         }",
        json!({ "c": collectivity, "f": family, "e": email }),
    )
    .await
    .data("openFamilyAccount");
    family
}

#[tokio::test]
async fn an_activation_link_works_once_records_the_activation_and_expires() {
    let app = spawn_app().await;
    let fixture = setup_commune(&app, &future_canteen_days(1)).await;

    // The fixture's guardian activated from the e-mail: the family's events
    // say so, and the password now logs in.
    let types: Vec<String> = sqlx::query_scalar(
        "SELECT event_type FROM events WHERE aggregate_type = 'Family' AND aggregate_id = $1 ORDER BY sequence",
    )
    .bind(fixture.family.to_string())
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert!(types.contains(&"AccountActivated".to_string()), "{types:?}");
    app.login(&fixture.guardian_email, PASSWORD).await;

    // A second family: its link is refused for a weak password without
    // being used up, then works, then is refused as used.
    let email = format!("paul.{}@example.fr", Uuid::new_v4().simple());
    open_family(&app, &fixture.agent(), fixture.collectivity, &email).await;
    let mail = app.next_mail_to(&email).await;
    assert!(mail.contains("Activez votre compte"), "{mail}");
    let token = link_token(&mail);
    let weak = app.gql(None, ACTIVATE, json!({ "t": token, "p": "court" })).await;
    assert_eq!(weak.error_code(), "VALIDATION");
    let common = app
        .gql(None, ACTIVATE, json!({ "t": token, "p": "motdepasse123" }))
        .await;
    assert_eq!(common.error_code(), "VALIDATION");
    let good = app
        .gql(None, ACTIVATE, json!({ "t": token, "p": PASSWORD }))
        .await;
    let session = good.data("activateAccount")["token"]
        .as_str()
        .unwrap()
        .to_string();
    let me = app.gql(Some(&session), ME, json!({})).await;
    assert_eq!(me.data("me")["email"], email.as_str());
    let reused = app
        .gql(None, ACTIVATE, json!({ "t": token, "p": PASSWORD }))
        .await;
    assert_eq!(reused.error_code(), "INVALID_TOKEN");

    // A third family's link, once expired, is refused as expired.
    let late = format!("late.{}@example.fr", Uuid::new_v4().simple());
    open_family(&app, &fixture.agent(), fixture.collectivity, &late).await;
    let token = link_token(&app.next_mail_to(&late).await);
    sqlx::query("UPDATE account_tokens SET expires_at = now() - interval '1 minute' WHERE used_at IS NULL")
        .execute(&app.pool)
        .await
        .unwrap();
    let expired = app
        .gql(None, ACTIVATE, json!({ "t": token, "p": PASSWORD }))
        .await;
    assert_eq!(expired.error_code(), "TOKEN_EXPIRED");
    let unknown = app
        .gql(None, ACTIVATE, json!({ "t": "not-a-token", "p": PASSWORD }))
        .await;
    assert_eq!(unknown.error_code(), "INVALID_TOKEN");

    // Tokens are kept only as hashes.
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM account_tokens WHERE token_hash = convert_to($1, 'UTF8')")
            .bind(&token)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(stored, 0);
    app.stop().await;
}

#[tokio::test]
async fn login_gives_a_session_that_logout_ends() {
    let app = spawn_app().await;
    let fixture = setup_commune(&app, &future_canteen_days(1)).await;

    let wrong = app
        .gql(
            None,
            LOGIN,
            json!({ "e": fixture.guardian_email, "p": "wrong password!!" }),
        )
        .await;
    assert_eq!(wrong.error_code(), "INVALID_CREDENTIALS");
    let unknown = app
        .gql(None, LOGIN, json!({ "e": "nobody@example.fr", "p": PASSWORD }))
        .await;
    assert_eq!(unknown.error_code(), "INVALID_CREDENTIALS");
    assert_eq!(
        wrong.0["errors"][0]["message"], unknown.0["errors"][0]["message"],
        "the same error whether the account exists or not"
    );

    // E-mails are case-insensitive.
    let token = app.login(&fixture.guardian_email.to_uppercase(), PASSWORD).await;
    let me = app.gql(Some(&token), ME, json!({})).await;
    assert_eq!(me.data("me")["grants"][0]["role"], "parent");
    assert_eq!(me.data("me")["families"][0]["id"], fixture.family.to_string());

    let logout = app.gql(Some(&token), "mutation { logout }", json!({})).await;
    assert_eq!(logout.data("logout"), true);
    let after = app.gql(Some(&token), ME, json!({})).await;
    assert_eq!(after.error_code(), "UNAUTHENTICATED");
    let forged = app.gql(Some("forged-token"), ME, json!({})).await;
    assert_eq!(forged.error_code(), "UNAUTHENTICATED");
    // Sessions are stored only as hashes.
    let plain: i64 =
        sqlx::query_scalar("SELECT count(*) FROM sessions WHERE token_hash = convert_to($1, 'UTF8')")
            .bind(&token)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    assert_eq!(plain, 0);
    app.stop().await;
}

#[tokio::test]
async fn repeated_failures_are_rate_limited_per_email_and_per_client() {
    let app = spawn_app().await;
    let fixture = setup_commune(&app, &future_canteen_days(1)).await;
    for _ in 0..5 {
        let failed = app
            .gql(
                None,
                LOGIN,
                json!({ "e": fixture.guardian_email, "p": "not the password" }),
            )
            .await;
        assert_eq!(failed.error_code(), "INVALID_CREDENTIALS");
    }
    // Even the right password is refused while the e-mail is limited.
    let limited = app
        .gql(None, LOGIN, json!({ "e": fixture.guardian_email, "p": PASSWORD }))
        .await;
    assert_eq!(limited.error_code(), "RATE_LIMITED");
    // Another e-mail from the same client still gets in...
    app.login(&fixture.agent_email, PASSWORD).await;

    // ...until the client itself has failed too often.
    for i in 0..25 {
        let failed = app
            .gql(
                None,
                LOGIN,
                json!({ "e": format!("guess{i}@example.fr"), "p": "not the password" }),
            )
            .await;
        assert_eq!(failed.error_code(), "INVALID_CREDENTIALS");
    }
    let client_limited = app
        .gql(None, LOGIN, json!({ "e": fixture.agent_email, "p": PASSWORD }))
        .await;
    assert_eq!(client_limited.error_code(), "RATE_LIMITED");
    app.stop().await;
}

#[tokio::test]
async fn a_password_reset_link_sets_a_new_password_and_ends_old_sessions() {
    let app = spawn_app().await;
    let fixture = setup_commune(&app, &future_canteen_days(1)).await;
    let old_session = fixture.parent();

    let asked = app
        .gql(
            None,
            "mutation($e: String!) { requestPasswordReset(email: $e) }",
            json!({ "e": fixture.guardian_email }),
        )
        .await;
    assert_eq!(asked.data("requestPasswordReset"), true);
    let nobody = app
        .gql(
            None,
            "mutation($e: String!) { requestPasswordReset(email: $e) }",
            json!({ "e": "nobody@example.fr" }),
        )
        .await;
    assert_eq!(
        nobody.data("requestPasswordReset"),
        true,
        "the same answer for unknown e-mails"
    );

    let token = link_token(&app.next_mail_to(&fixture.guardian_email).await);
    let reset = "mutation($t: String!, $p: String!) { resetPassword(token: $t, password: $p) { token } }";
    let new_password = "pivoine-lanterne-galet";
    let done = app
        .gql(None, reset, json!({ "t": token, "p": new_password }))
        .await;
    done.data("resetPassword");
    let again = app
        .gql(None, reset, json!({ "t": token, "p": new_password }))
        .await;
    assert_eq!(again.error_code(), "INVALID_TOKEN");

    assert_eq!(
        app.gql(Some(&old_session), ME, json!({})).await.error_code(),
        "UNAUTHENTICATED"
    );
    let old = app
        .gql(None, LOGIN, json!({ "e": fixture.guardian_email, "p": PASSWORD }))
        .await;
    assert_eq!(old.error_code(), "INVALID_CREDENTIALS");
    app.login(&fixture.guardian_email, new_password).await;
    app.stop().await;
}

const JOIN_FAMILY: &str = "mutation($c: UUID!, $code: String!) {
  joinFamily(input: { collectivityId: $c, code: $code, familyRef: \"B-0042\" }) {
    id memberships { collectivityId familyRef } children { firstName }
  }
}";

/// A code by which the guardian of `fixture` lets another commune in.
async fn join_code(app: &TestApp, fixture: &Fixture) -> String {
    let created = app
        .gql(
            Some(&fixture.parent()),
            "mutation($f: UUID!) { createFamilyJoinCode(familyId: $f) { code expiresAt } }",
            json!({ "f": fixture.family }),
        )
        .await;
    created.data("createFamilyJoinCode")["code"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn a_commune_joins_a_family_only_with_the_code_its_guardian_gave_and_once() {
    let app = spawn_app().await;
    let days = future_canteen_days(1);
    let a = setup_commune(&app, &days).await;
    let b = setup_commune(&app, &days).await;
    let before = app.events_in("Family", &a.family.to_string()).await;
    // No code, a made-up one: nothing of the family, nothing recorded.
    for code in ["", "7KQ2-M9XD-4TRB", &a.guardian_email] {
        let refused = app
            .gql(
                Some(&b.agent()),
                JOIN_FAMILY,
                json!({ "c": b.collectivity, "code": code }),
            )
            .await;
        assert_eq!(refused.error_code(), "INVALID_TOKEN", "{}", refused.0);
        assert!(refused.0["data"].is_null(), "{}", refused.0);
    }
    // Only the family's guardian makes a code.
    for token in [b.parent(), b.agent(), a.agent()] {
        let refused = app
            .gql(
                Some(&token),
                "mutation($f: UUID!) { createFamilyJoinCode(familyId: $f) { code } }",
                json!({ "f": a.family }),
            )
            .await;
        assert_eq!(refused.error_code(), "FORBIDDEN", "{}", refused.0);
    }
    assert_eq!(app.events_in("Family", &a.family.to_string()).await, before);
    // Typed back in lower case with spaces, the code works, once.
    let code = join_code(&app, &a).await;
    let typed = code.to_lowercase().replace('-', " ");
    let joined = app
        .gql(
            Some(&b.agent()),
            JOIN_FAMILY,
            json!({ "c": b.collectivity, "code": typed }),
        )
        .await;
    assert_eq!(joined.data("joinFamily")["children"][0]["firstName"], "Louise");
    let again = app
        .gql(
            Some(&b.agent()),
            JOIN_FAMILY,
            json!({ "c": b.collectivity, "code": code }),
        )
        .await;
    assert_eq!(again.error_code(), "INVALID_TOKEN", "{}", again.0);
    app.stop().await;
}

fn unit_names(me: &Value) -> Vec<String> {
    let mut names: Vec<String> = me["collectivities"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["units"].as_array().unwrap().iter())
        .map(|u| u["id"].as_str().unwrap().to_string())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn one_login_reaches_two_communes_and_each_commune_sees_only_its_part() {
    let app = spawn_app().await;
    let days = future_canteen_days(2);
    let a = setup_commune(&app, &days).await;
    let b = setup_commune(&app, &days).await;

    // Commune B links family A with the code A's guardian gave it.
    let code = join_code(&app, &a).await;
    let joined = app
        .gql(
            Some(&b.agent()),
            JOIN_FAMILY,
            json!({ "c": b.collectivity, "code": code }),
        )
        .await;
    let joined = joined.data("joinFamily");
    assert_eq!(joined["id"], a.family.to_string());
    assert_eq!(
        joined["memberships"],
        json!([{ "collectivityId": b.collectivity, "familyRef": "B-0042" }]),
        "agent B sees B's membership only"
    );

    // The same login now sees both communes' services.
    let me = app.gql(Some(&a.parent()), ME, json!({})).await;
    let mut expected = vec![a.meal.to_string(), b.meal.to_string()];
    expected.sort();
    assert_eq!(unit_names(me.data("me")), expected);

    // B enrols the child in B's canteen; the guardian books in B.
    for year in school_years(&days) {
        app.gql(
            Some(&b.agent()),
            "mutation($f: UUID!, $k: UUID!, $c: UUID!, $s: UUID!, $y: Int!) {
               enrolChild(input: { familyId: $f, childId: $k, collectivityId: $c, serviceId: $s, schoolYear: $y }) { id }
             }",
            json!({ "f": a.family, "k": a.child, "c": b.collectivity, "s": b.canteen, "y": year }),
        )
        .await
        .data("enrolChild");
    }
    let in_b = app
        .gql(
            Some(&a.parent()),
            SUBMIT_BASKET,
            json!({ "input": { "basketId": Uuid::new_v4(), "familyId": a.family, "lines": [
                { "action": "BOOK", "childId": a.child, "unitId": b.meal, "date": days[0] }
            ] } }),
        )
        .await;
    assert_eq!(in_b.data("submitBasket")["status"], "ACCEPTED");
    let in_a = app.book(&a, &days[1..]).await;
    assert_eq!(in_a.data("submitBasket")["status"], "ACCEPTED");

    // Each commune's agents see their own memberships and enrolments only.
    let family = "query($f: UUID!) { family(id: $f) { memberships { collectivityId } enrolments { collectivityId } } }";
    for (agent, own) in [(&a, a.collectivity), (&b, b.collectivity)] {
        let seen = app
            .gql(Some(&agent.agent()), family, json!({ "f": a.family }))
            .await;
        let seen = seen.data("family");
        for list in ["memberships", "enrolments"] {
            let communes: Vec<&str> = seen[list]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| m["collectivityId"].as_str().unwrap())
                .collect();
            assert!(!communes.is_empty());
            assert!(
                communes.iter().all(|c| *c == own.to_string()),
                "{list}: {communes:?}"
            );
        }
    }
    let guardian_view = app.gql(Some(&a.parent()), family, json!({ "f": a.family })).await;
    assert_eq!(
        guardian_view.data("family")["memberships"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    // And their own reservations only.
    let a_reservation = espace_famille_domain::reservation::reservation_id(a.child, a.meal, days[1]);
    let b_reservation = espace_famille_domain::reservation::reservation_id(a.child, b.meal, days[0]);
    let read = "query($id: UUID!) { reservation(id: $id) { status } }";
    assert_eq!(
        app.gql(Some(&b.agent()), read, json!({ "id": a_reservation }))
            .await
            .error_code(),
        "NOT_FOUND",
        "what B may not read answers as what does not exist"
    );
    assert_eq!(
        app.gql(Some(&b.agent()), read, json!({ "id": b_reservation }))
            .await
            .data("reservation")["status"],
        "CONFIRMED"
    );
    assert_eq!(
        app.gql(Some(&a.agent()), read, json!({ "id": b_reservation }))
            .await
            .error_code(),
        "NOT_FOUND"
    );
    app.stop().await;
}

#[tokio::test]
async fn an_agent_sets_the_quotient_familial_that_the_parent_sees() {
    let app = spawn_app().await;
    let a = setup_commune(&app, &future_canteen_days(1)).await;
    let b = setup_commune(&app, &future_canteen_days(1)).await;
    let set = "mutation($f: UUID!, $c: UUID!, $q: Int!, $from: NaiveDate!, $until: NaiveDate) {
      setQuotientFamilial(input: { familyId: $f, collectivityId: $c, quotient: $q, validFrom: $from, validUntil: $until }) {
        quotientsFamiliaux { collectivityId quotient validFrom validUntil }
      }
    }";
    let done = app
        .gql(
            Some(&a.agent()),
            set,
            json!({ "f": a.family, "c": a.collectivity, "q": 742, "from": "2026-09-01", "until": "2027-08-31" }),
        )
        .await;
    assert_eq!(
        done.data("setQuotientFamilial")["quotientsFamiliaux"][0]["quotient"],
        742
    );

    let backwards = app
        .gql(
            Some(&a.agent()),
            set,
            json!({ "f": a.family, "c": a.collectivity, "q": 742, "from": "2027-09-01", "until": "2027-08-31" }),
        )
        .await;
    assert_eq!(backwards.error_code(), "VALIDATION");
    let elsewhere = app
        .gql(
            Some(&b.agent()),
            set,
            json!({ "f": a.family, "c": b.collectivity, "q": 100, "from": "2026-09-01", "until": null }),
        )
        .await;
    assert_eq!(
        elsewhere.error_code(),
        "NOT_FOUND",
        "B is not one of the family's communes: to B it is a family that does not exist"
    );

    let seen = app
        .gql(
            Some(&a.parent()),
            "query($f: UUID!) { family(id: $f) { quotientsFamiliaux { collectivityId quotient validFrom validUntil } } }",
            json!({ "f": a.family }),
        )
        .await;
    assert_eq!(
        seen.data("family")["quotientsFamiliaux"],
        json!([{ "collectivityId": a.collectivity, "quotient": 742, "validFrom": "2026-09-01", "validUntil": "2027-08-31" }])
    );
    app.stop().await;
}
