//! The authorisation matrix: every role against every operation, on its own
//! family or commune and on another's. Each cell is allowed, denied
//! (`FORBIDDEN`, or `NOT_FOUND` where what the caller may not read answers
//! as what does not exist) or `UNAUTHENTICATED`; a domain refusal (say, no
//! cancellation pending) counts as allowed, since the caller got past the
//! grant check. Then every denial of another's id is compared with the
//! answer to an id nobody uses: they must be the same.

use espace_famille_tests::*;
use serde_json::{json, Value};
use uuid::Uuid;

struct Operation {
    name: &'static str,
    document: &'static str,
    variables: Value,
    /// The roles allowed, by name.
    allowed: &'static [&'static str],
}

/// Communes A and B, each with its family, and A's child booked on the
/// first of `days`: that reservation's id.
async fn two_communes_and_a_booking(app: &TestApp, days: &[chrono::NaiveDate]) -> (Fixture, Fixture, Uuid) {
    let a = setup_commune(app, days).await;
    let b = setup_commune(app, days).await;
    app.book(&a, &days[..1]).await.data("submitBasket");
    let booked = espace_famille_domain::reservation::reservation_id(a.child, a.meal, days[0]);
    (a, b, booked)
}

#[tokio::test]
async fn every_role_gets_exactly_the_operations_its_grant_allows() {
    let app = spawn_app().await;
    let days = future_canteen_days(3);
    let (a, b, reservation) = two_communes_and_a_booking(&app, &days).await;

    let auditor_all = auditor(&app).await;
    let auditor_b = auditor_of(&app, b.collectivity).await;

    let roles: Vec<(&str, Option<String>)> = vec![
        ("anonymous", None),
        ("parent A", Some(a.parent())),
        ("parent B", Some(b.parent())),
        ("agent A", Some(a.agent())),
        ("agent B", Some(b.agent())),
        ("auditor of all", Some(auditor_all)),
        ("auditor of B", Some(auditor_b)),
        ("admin", Some(a.admin_token.clone())),
    ];
    const EVERYONE: &[&str] = &[
        "parent A",
        "parent B",
        "agent A",
        "agent B",
        "auditor of all",
        "auditor of B",
        "admin",
    ];
    const PUBLIC: &[&str] = &[
        "anonymous",
        "parent A",
        "parent B",
        "agent A",
        "agent B",
        "auditor of all",
        "auditor of B",
        "admin",
    ];
    const READERS_OF_A: &[&str] = &["parent A", "agent A", "auditor of all"];

    let operations = vec![
        Operation {
            name: "read the calendar of A's child",
            document: CALENDAR,
            variables: json!({ "child": a.child, "unit": a.meal, "from": days[0], "to": days[2] }),
            allowed: READERS_OF_A,
        },
        Operation {
            name: "read family A",
            document: "query($f: UUID!) { family(id: $f) { id } }",
            variables: json!({ "f": a.family }),
            allowed: READERS_OF_A,
        },
        Operation {
            name: "read a reservation of A",
            document: "query($id: UUID!) { reservation(id: $id) { history { eventType } } }",
            variables: json!({ "id": reservation }),
            allowed: READERS_OF_A,
        },
        Operation {
            name: "read commune A's work queue",
            document: "query($c: UUID!) { agentWorkQueue(collectivityId: $c) { reservationId } }",
            variables: json!({ "c": a.collectivity }),
            allowed: &["agent A", "auditor of all"],
        },
        Operation {
            name: "read commune A's services (public)",
            document: "query($c: UUID!) { collectivity(id: $c) { units { id } } }",
            variables: json!({ "c": a.collectivity }),
            allowed: PUBLIC,
        },
        Operation {
            name: "make a code to let a commune join family A",
            document: "mutation($f: UUID!) { createFamilyJoinCode(familyId: $f) { code } }",
            variables: json!({ "f": a.family }),
            allowed: &["parent A"],
        },
        Operation {
            name: "join a family to commune A with a code",
            document: "mutation($c: UUID!) { joinFamily(input: { collectivityId: $c, code: \"0000-0000-0000\", familyRef: \"A-9\" }) { id } }",
            variables: json!({ "c": a.collectivity }),
            allowed: &["agent A"],
        },
        Operation {
            name: "invite a second guardian to family A",
            document: "mutation($f: UUID!) { inviteGuardian(familyId: $f, email: \"second.guardian@example.fr\") { id } }",
            variables: json!({ "f": a.family }),
            allowed: &["parent A", "agent A"],
        },
        Operation {
            name: "update one's own guardian profile",
            document: "mutation { updateProfile(input: { firstName: \"Claire\", lastName: \"Martin\", phone: \"0612345678\" }) { email } }",
            variables: json!({}),
            allowed: &["parent A", "parent B"],
        },
        Operation {
            name: "ask to change one's own e-mail (the password is asked again)",
            document: "mutation { requestEmailChange(newEmail: \"new.address@example.fr\", password: \"not the password\") }",
            variables: json!({}),
            allowed: EVERYONE,
        },
        Operation {
            name: "confirm an e-mail change (the link is the proof)",
            document: "mutation { confirmEmailChange(token: \"not-a-token\") }",
            variables: json!({}),
            allowed: PUBLIC,
        },
        Operation {
            name: "read one's own account",
            document: "{ me { accountId } }",
            variables: json!({}),
            allowed: EVERYONE,
        },
        Operation {
            name: "book for family A",
            document: SUBMIT_BASKET,
            variables: json!({ "input": { "basketId": Uuid::new_v4(), "familyId": a.family, "lines": book_lines(&a, &days[1..2]) } }),
            allowed: &["parent A"],
        },
        Operation {
            name: "cancel a booking of A",
            document: "mutation($id: UUID!) { requestCancellation(reservationId: $id) { status } }",
            variables: json!({ "id": reservation }),
            allowed: &["parent A"],
        },
        Operation {
            name: "approve a cancellation in A",
            document: "mutation($id: UUID!) { approveCancellation(reservationId: $id) { status } }",
            variables: json!({ "id": reservation }),
            allowed: &["agent A"],
        },
        Operation {
            name: "reject a cancellation in A",
            document: "mutation($id: UUID!) { rejectCancellation(reservationId: $id, reason: \"non\") { status } }",
            variables: json!({ "id": reservation }),
            allowed: &["agent A"],
        },
        Operation {
            name: "add a service to A",
            document: "mutation($c: UUID!) { addService(input: { collectivityId: $c, name: \"Étude\", kind: SUPERVISED_STUDY }) { id } }",
            variables: json!({ "c": a.collectivity }),
            allowed: &["agent A"],
        },
        Operation {
            name: "open a family account in A",
            document: "mutation($c: UUID!) { openFamilyAccount(input: { collectivityId: $c, familyRef: \"X\", guardianEmail: \"x@example.fr\" }) { id } }",
            variables: json!({ "c": a.collectivity }),
            allowed: &["agent A"],
        },
        Operation {
            name: "enrol A's child in A",
            document: "mutation($f: UUID!, $k: UUID!, $c: UUID!, $s: UUID!) {
              enrolChild(input: { familyId: $f, childId: $k, collectivityId: $c, serviceId: $s, schoolYear: 2040 }) { id }
            }",
            variables: json!({ "f": a.family, "k": a.child, "c": a.collectivity, "s": a.canteen }),
            allowed: &["agent A"],
        },
        Operation {
            name: "set family A's quotient in A",
            document: "mutation($f: UUID!, $c: UUID!) {
              setQuotientFamilial(input: { familyId: $f, collectivityId: $c, quotient: 500, validFrom: \"2026-09-01\" }) { id }
            }",
            variables: json!({ "f": a.family, "c": a.collectivity }),
            allowed: &["agent A"],
        },
        Operation {
            name: "register a child in family A",
            document: "mutation($f: UUID!) {
              registerChild(input: { familyId: $f, firstName: \"Jules\", lastName: \"Martin\", birthDate: \"2019-01-01\" }) { id }
            }",
            variables: json!({ "f": a.family }),
            allowed: &["parent A", "agent A"],
        },
        Operation {
            name: "create a commune",
            document: "mutation { createCollectivity(input: { name: \"Tigeaux\" }) { id } }",
            variables: json!({}),
            allowed: &["admin"],
        },
        Operation {
            name: "give an agent access to A",
            document: "mutation($c: UUID!) { createAgentAccount(collectivityId: $c, email: \"new.agent@example.fr\") { role } }",
            variables: json!({ "c": a.collectivity }),
            allowed: &["agent A", "admin"],
        },
        Operation {
            name: "erase family B",
            document: "mutation($f: UUID!) { eraseFamily(familyId: $f) }",
            variables: json!({ "f": b.family }),
            allowed: &["agent B"],
        },
    ];

    let mut wrong = Vec::new();
    for operation in &operations {
        for (role, token) in &roles {
            // Erasing is final: only the role allowed to runs it, last.
            if operation.name == "erase family B" && operation.allowed.contains(role) {
                continue;
            }
            let response = app
                .gql(token.as_deref(), operation.document, operation.variables.clone())
                .await;
            let code = response.0["errors"][0]["extensions"]["code"]
                .as_str()
                .unwrap_or("")
                .to_string();
            let got = match code.as_str() {
                "UNAUTHENTICATED" => code,
                "FORBIDDEN" | "NOT_FOUND" => "denied".to_string(),
                _ => "allowed".to_string(),
            };
            let expected = if operation.allowed.contains(role) {
                "allowed"
            } else if token.is_none() {
                "UNAUTHENTICATED"
            } else {
                "denied"
            };
            if got != expected {
                wrong.push(format!(
                    "{role} / {}: expected {expected}, got {got} ({})",
                    operation.name, response.0
                ));
            }
        }
    }
    let erased = app
        .gql(
            Some(&b.agent()),
            "mutation($f: UUID!) { eraseFamily(familyId: $f) }",
            json!({ "f": b.family }),
        )
        .await;
    assert_eq!(erased.data("eraseFamily"), true);
    assert!(
        wrong.is_empty(),
        "{} cells differ:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
    app.stop().await;
}

/// The answer to `variables` with every id of `known` put for its stand-in
/// in the text, so two answers about different ids compare.
fn answer_without_ids(response: &Value, known: &[Uuid]) -> String {
    let mut text = response["errors"].to_string();
    for (n, id) in known.iter().enumerate() {
        text = text.replace(&id.to_string(), &format!("<id {n}>"));
    }
    text
}

#[tokio::test]
async fn another_familys_ids_get_the_same_answer_as_ids_nobody_uses() {
    let app = spawn_app().await;
    let days = future_canteen_days(2);
    let (a, b, booked) = two_communes_and_a_booking(&app, &days).await;
    let auditor_b = auditor_of(&app, b.collectivity).await;
    let (nobody_family, nobody_child) = (Uuid::new_v4(), Uuid::new_v4());
    let nobody_reservation =
        espace_famille_domain::reservation::reservation_id(nobody_child, a.meal, days[0]);
    // (document, variables with A's ids, the same with unused ids), each
    // tried by B's parent, agent and auditor.
    let probes: Vec<(&str, Value, Value)> = vec![
        (
            CALENDAR,
            json!({ "child": a.child, "unit": b.meal, "from": days[0], "to": days[1] }),
            json!({ "child": nobody_child, "unit": b.meal, "from": days[0], "to": days[1] }),
        ),
        (
            CALENDAR,
            json!({ "child": a.child, "unit": a.meal, "from": days[0], "to": days[1] }),
            json!({ "child": nobody_child, "unit": a.meal, "from": days[0], "to": days[1] }),
        ),
        (
            "query($f: UUID!) { family(id: $f) { id } }",
            json!({ "f": a.family }),
            json!({ "f": nobody_family }),
        ),
        (
            "query($id: UUID!) { reservation(id: $id) { status } }",
            json!({ "id": booked }),
            json!({ "id": nobody_reservation }),
        ),
        (
            "mutation($id: UUID!) { requestCancellation(reservationId: $id) { status } }",
            json!({ "id": booked }),
            json!({ "id": nobody_reservation }),
        ),
        (
            "mutation($id: UUID!) { approveCancellation(reservationId: $id) { status } }",
            json!({ "id": booked }),
            json!({ "id": nobody_reservation }),
        ),
        (
            "mutation($f: UUID!) { registerChild(input: { familyId: $f, firstName: \"Jules\", lastName: \"Martin\", birthDate: \"2019-01-01\" }) { id } }",
            json!({ "f": a.family }),
            json!({ "f": nobody_family }),
        ),
        (
            "mutation($f: UUID!, $k: UUID!, $c: UUID!, $s: UUID!) {
               enrolChild(input: { familyId: $f, childId: $k, collectivityId: $c, serviceId: $s, schoolYear: 2030 }) { id }
             }",
            json!({ "f": a.family, "k": a.child, "c": b.collectivity, "s": b.canteen }),
            json!({ "f": nobody_family, "k": nobody_child, "c": b.collectivity, "s": b.canteen }),
        ),
        (
            "mutation($f: UUID!, $c: UUID!) { setQuotientFamilial(input: { familyId: $f, collectivityId: $c, quotient: 500, validFrom: \"2026-09-01\" }) { id } }",
            json!({ "f": a.family, "c": b.collectivity }),
            json!({ "f": nobody_family, "c": b.collectivity }),
        ),
        (
            "mutation($f: UUID!) { eraseFamily(familyId: $f) }",
            json!({ "f": a.family }),
            json!({ "f": nobody_family }),
        ),
        (
            "mutation($f: UUID!) { inviteGuardian(familyId: $f, email: \"x@example.fr\") { id } }",
            json!({ "f": a.family }),
            json!({ "f": nobody_family }),
        ),
        (
            SUBMIT_BASKET,
            json!({ "input": { "basketId": Uuid::nil(), "familyId": a.family, "lines": book_lines(&a, &days[1..]) } }),
            json!({ "input": { "basketId": Uuid::nil(), "familyId": nobody_family, "lines": book_lines(&a, &days[1..]) } }),
        ),
    ];
    let known = [
        a.family,
        nobody_family,
        a.child,
        nobody_child,
        booked,
        nobody_reservation,
    ];
    let mut differ = Vec::new();
    for (document, theirs, unused) in &probes {
        for (role, token) in [
            ("parent B", b.parent()),
            ("agent B", b.agent()),
            ("auditor of B", auditor_b.clone()),
        ] {
            let on_theirs = app.gql(Some(&token), document, theirs.clone()).await;
            let on_unused = app.gql(Some(&token), document, unused.clone()).await;
            assert!(
                on_theirs.0["errors"].is_array(),
                "{role} was let through: {}",
                on_theirs.0
            );
            let (theirs, unused) = (
                answer_without_ids(&on_theirs.0, &known),
                answer_without_ids(&on_unused.0, &known),
            );
            // The ids differ; the answers, with the ids put aside, must not.
            let theirs = theirs
                .replace("<id 0>", "<id 1>")
                .replace("<id 2>", "<id 3>")
                .replace("<id 4>", "<id 5>");
            if theirs != unused {
                differ.push(format!(
                    "{role}, {document}:\n  theirs: {theirs}\n  unused: {unused}"
                ));
            }
        }
    }
    assert!(
        differ.is_empty(),
        "{} answers tell an id is used:\n{}",
        differ.len(),
        differ.join("\n")
    );
    let calendar = app.calendar(&a, days[0], days[0]).await;
    assert_eq!(calendar.data("calendar")[0]["status"], "CONFIRMED");
    app.stop().await;
}
