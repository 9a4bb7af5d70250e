//! What an attacker tries with ids they choose: every client-chosen id is
//! global, and no line of a basket reaches another family's bookings.

use espace_famille_tests::*;
use serde_json::json;
use uuid::Uuid;

const REGISTER_CHILD: &str = "mutation($f: UUID!, $k: UUID!) {
  registerChild(input: { familyId: $f, id: $k, firstName: \"Jules\", lastName: \"Intrus\", birthDate: \"2018-01-01\" }) { id }
}";

#[tokio::test]
async fn a_parent_cannot_take_another_familys_child_id_nor_cancel_its_bookings() {
    let app = spawn_app().await;
    let days = future_canteen_days(2);
    let victim = setup_commune(&app, &days).await;
    let attacker = setup_commune(&app, &days).await;
    let booked = app.book(&victim, &days[..1]).await;
    assert_eq!(booked.data("submitBasket")["status"], "ACCEPTED");

    // The victim's child id, registered in the attacker's family.
    let before = app.events_in("Family", &attacker.family.to_string()).await;
    let taken = app
        .gql(
            Some(&attacker.parent()),
            REGISTER_CHILD,
            json!({ "f": attacker.family, "k": victim.child }),
        )
        .await;
    assert_eq!(taken.error_code(), "CONFLICT", "{}", taken.0);
    assert_eq!(
        app.events_in("Family", &attacker.family.to_string()).await,
        before
    );

    // A cancel line for the victim's booking, in the attacker's basket.
    let cancel = app
        .gql(
            Some(&attacker.parent()),
            SUBMIT_BASKET,
            json!({ "input": { "basketId": Uuid::new_v4(), "familyId": attacker.family, "lines": [
                { "action": "CANCEL", "childId": victim.child, "unitId": victim.meal, "date": days[0] }
            ] } }),
        )
        .await;
    let outcome = cancel.data("submitBasket");
    assert_eq!(outcome["status"], "REJECTED", "{}", cancel.0);
    let reservation = espace_famille_domain::reservation::reservation_id(victim.child, victim.meal, days[0]);
    assert_eq!(app.events_in("Reservation", &reservation.to_string()).await, 2);
    let calendar = app.calendar(&victim, days[0], days[0]).await;
    assert_eq!(calendar.data("calendar")[0]["status"], "CONFIRMED");
    app.stop().await;
}

#[tokio::test]
async fn every_client_chosen_id_names_one_thing_only_whoever_chose_it() {
    let app = spawn_app().await;
    let days = future_canteen_days(1);
    let a = setup_commune(&app, &days).await;
    let b = setup_commune(&app, &days).await;
    let used = [a.collectivity, a.canteen, a.meal, a.family, a.child];
    for id in used {
        let commune = app
            .gql(
                Some(&b.admin_token),
                "mutation($id: UUID!) { createCollectivity(input: { id: $id, name: \"Tigeaux\" }) { id } }",
                json!({ "id": id }),
            )
            .await;
        assert_eq!(commune.error_code(), "CONFLICT", "commune {id}: {}", commune.0);
        let service = app
            .gql(
                Some(&b.agent()),
                "mutation($c: UUID!, $id: UUID!) { addService(input: { collectivityId: $c, id: $id, name: \"Étude\", kind: SUPERVISED_STUDY }) { id } }",
                json!({ "c": b.collectivity, "id": id }),
            )
            .await;
        assert_eq!(service.error_code(), "CONFLICT", "service {id}: {}", service.0);
        let unit = app
            .gql(
                Some(&b.agent()),
                "mutation($c: UUID!, $s: UUID!, $id: UUID!) {
                   addUnit(input: {
                     collectivityId: $c, id: $id, serviceId: $s, name: \"Repas\",
                     weekdays: [MON], openDuring: SCHOOL_TERMS, billing: MONTHLY,
                     bookingDeadline: { daysBefore: { days: 2, at: \"12:00\" } },
                     cancellationDeadline: { daysBefore: { days: 2, at: \"12:00\" } },
                     cancellationNeedsApproval: false
                   }) { id }
                 }",
                json!({ "c": b.collectivity, "s": b.canteen, "id": id }),
            )
            .await;
        assert_eq!(unit.error_code(), "CONFLICT", "unit {id}: {}", unit.0);
        let family = app
            .gql(
                Some(&b.agent()),
                "mutation($c: UUID!, $id: UUID!) { openFamilyAccount(input: { collectivityId: $c, id: $id, familyRef: \"X\", guardianEmail: \"x@example.fr\" }) { id } }",
                json!({ "c": b.collectivity, "id": id }),
            )
            .await;
        assert_eq!(family.error_code(), "CONFLICT", "family {id}: {}", family.0);
        let child = app
            .gql(
                Some(&b.parent()),
                REGISTER_CHILD,
                json!({ "f": b.family, "k": id }),
            )
            .await;
        assert_eq!(child.error_code(), "CONFLICT", "child {id}: {}", child.0);
    }
    // Nothing of those attempts was stored.
    let claimed: i64 = sqlx::query_scalar("SELECT count(*) FROM claimed_ids")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(claimed, 10, "two communes of five ids each");
    app.stop().await;
}

#[tokio::test]
async fn an_id_claimed_by_a_concurrent_writer_is_refused_by_the_store_itself() {
    let app = spawn_app().await;
    let days = future_canteen_days(1);
    let a = setup_commune(&app, &days).await;
    // An event written by another path than the API (another tool, or a
    // writer that lost the race after the API's check) still cannot claim
    // an id twice.
    let stolen = sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         VALUES ('Family', $1, 1, 'FamilyAccountOpened', '1', json_build_object('FamilyAccountOpened',
                 json_build_object('id', $2::text)), '{}')",
    )
    .bind(Uuid::new_v4().to_string())
    .bind(a.child.to_string())
    .execute(&app.pool)
    .await;
    let error = stolen.expect_err("a second claim of the child's id");
    assert!(error.to_string().contains("claimed_ids_pkey"), "{error}");
    app.stop().await;
}

#[tokio::test]
async fn a_control_character_or_an_oversized_value_is_refused_before_anything_is_stored() {
    let app = spawn_app().await;
    let days = future_canteen_days(1);
    let a = setup_commune(&app, &days).await;
    let events_before: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let open = "mutation($c: UUID!, $e: String!) { openFamilyAccount(input: { collectivityId: $c, familyRef: \"F-9\", guardianEmail: $e }) { id } }";
    let nul = app
        .gql(
            Some(&a.agent()),
            open,
            json!({ "c": a.collectivity, "e": "parent\u{0}@example.fr" }),
        )
        .await;
    assert_eq!(nul.error_code(), "VALIDATION", "{}", nul.0);
    let service = app
        .gql(
            Some(&a.agent()),
            "mutation($c: UUID!, $n: String!) { addService(input: { collectivityId: $c, name: $n, kind: SUPERVISED_STUDY }) { id } }",
            json!({ "c": a.collectivity, "n": "Étude\u{0}" }),
        )
        .await;
    assert_eq!(service.error_code(), "VALIDATION", "{}", service.0);
    let long_name = app
        .gql(
            Some(&a.parent()),
            "mutation($f: UUID!, $n: String!) { registerChild(input: { familyId: $f, firstName: $n, lastName: \"Martin\", birthDate: \"2018-01-01\" }) { id } }",
            json!({ "f": a.family, "n": "L".repeat(10_000) }),
        )
        .await;
    assert_eq!(long_name.error_code(), "VALIDATION", "{}", long_name.0);
    let year = app
        .gql(
            Some(&a.agent()),
            "mutation($f: UUID!, $k: UUID!, $c: UUID!, $s: UUID!) {
               enrolChild(input: { familyId: $f, childId: $k, collectivityId: $c, serviceId: $s, schoolYear: 2147483647 }) { id }
             }",
            json!({ "f": a.family, "k": a.child, "c": a.collectivity, "s": a.canteen }),
        )
        .await;
    assert_eq!(year.error_code(), "VALIDATION", "{}", year.0);
    let events_after: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(events_after, events_before, "a refused command stores nothing");

    // The family still reads, and the invitations still go out.
    let family = app
        .gql(
            Some(&a.parent()),
            "query($f: UUID!) { family(id: $f) { id } }",
            json!({ "f": a.family }),
        )
        .await;
    family.data("family");
    let email = format!("next.{}@example.fr", Uuid::new_v4().simple());
    app.gql(Some(&a.agent()), open, json!({ "c": a.collectivity, "e": email }))
        .await
        .data("openFamilyAccount");
    app.next_mail_to(&email).await;

    // The anonymous mutations take the same bytes without an internal error.
    let login = app
        .gql(
            None,
            "mutation($e: String!) { login(email: $e, password: \"cheval-agrafe-batterie\") { token } }",
            json!({ "e": format!("{}\u{0}", a.guardian_email) }),
        )
        .await;
    assert_eq!(login.error_code(), "INVALID_CREDENTIALS", "{}", login.0);
    let reset = app
        .gql(
            None,
            "mutation($e: String!) { requestPasswordReset(email: $e) }",
            json!({ "e": "x\u{0}@example.fr" }),
        )
        .await;
    assert_eq!(reset.data("requestPasswordReset"), true);
    app.stop().await;
}

#[tokio::test]
async fn fifty_wrong_passwords_sent_at_once_are_counted_one_by_one() {
    let app = spawn_app().await;
    let email = format!("target.{}@example.fr", Uuid::new_v4().simple());
    app.create_account(&email, PASSWORD, &[]).await;
    let attempts = (0..50).map(|i| {
        let app = &app;
        let email = email.clone();
        async move {
            app.gql(
                None,
                "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
                json!({ "e": email, "p": format!("wrong password {i}") }),
            )
            .await
            .error_code()
            .to_string()
        }
    });
    let codes = futures::future::join_all(attempts).await;
    let checked = codes.iter().filter(|c| *c == "INVALID_CREDENTIALS").count();
    let limited = codes.iter().filter(|c| *c == "RATE_LIMITED").count();
    assert_eq!((checked, limited), (5, 45), "{codes:?}");
    app.stop().await;
}

#[tokio::test]
async fn password_resets_are_rate_limited_and_only_the_last_link_works() {
    let app = spawn_app().await;
    let email = format!("forgetful.{}@example.fr", Uuid::new_v4().simple());
    app.create_account(&email, PASSWORD, &[]).await;
    let reset = "mutation($e: String!) { requestPasswordReset(email: $e) }";
    let mut links = Vec::new();
    for _ in 0..3 {
        let answer = app.gql(None, reset, json!({ "e": email })).await;
        assert_eq!(answer.data("requestPasswordReset"), true);
        links.push(link_token(&app.next_mail_to(&email).await));
    }
    let limited = app.gql(None, reset, json!({ "e": email })).await;
    assert_eq!(limited.error_code(), "RATE_LIMITED", "{}", limited.0);
    let unknown = app.gql(None, reset, json!({ "e": "nobody@example.fr" })).await;
    assert_eq!(unknown.data("requestPasswordReset"), true);
    let valid: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM account_tokens t JOIN accounts a ON a.id = t.account_id
         WHERE a.email = $1 AND t.purpose = 'password_reset' AND t.used_at IS NULL",
    )
    .bind(&email)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(valid, 1);
    let use_link =
        "mutation($t: String!) { resetPassword(token: $t, password: \"poney-lampe-carton\") { token } }";
    let old = app.gql(None, use_link, json!({ "t": links[0] })).await;
    assert_eq!(old.error_code(), "INVALID_TOKEN", "{}", old.0);
    app.gql(None, use_link, json!({ "t": links[2] }))
        .await
        .data("resetPassword");
    app.stop().await;
}

#[tokio::test]
async fn a_rush_of_parents_behind_one_address_all_log_in() {
    let app = spawn_app().await;
    // More parents at once than the address may fail logins (30).
    let emails: Vec<String> = (0..64)
        .map(|i| format!("parent{i}.{}@example.fr", Uuid::new_v4().simple()))
        .collect();
    for email in &emails {
        app.create_account(email, PASSWORD, &[]).await;
    }
    let logins = emails.iter().map(|email| {
        let app = &app;
        async move {
            let answer = app
                .gql(
                    None,
                    "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
                    json!({ "e": email, "p": PASSWORD }),
                )
                .await;
            answer.0.get("errors").cloned()
        }
    });
    let refused: Vec<_> = futures::future::join_all(logins)
        .await
        .into_iter()
        .flatten()
        .collect();
    assert!(
        refused.is_empty(),
        "{} refused: {:?}",
        refused.len(),
        refused.first()
    );
    app.stop().await;
}
