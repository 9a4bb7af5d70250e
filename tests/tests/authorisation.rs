//! The authorisation matrix: every role against every operation, on its own
//! family or commune and on another's. Each cell is allowed, `FORBIDDEN` or
//! `UNAUTHENTICATED`; a domain refusal (say, no cancellation pending) counts
//! as allowed, since the caller got past the grant check.

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

#[tokio::test]
async fn every_role_gets_exactly_the_operations_its_grant_allows() {
    let app = spawn_app().await;
    let days = future_canteen_days(3);
    let a = setup_commune(&app, &days).await;
    let b = setup_commune(&app, &days).await;
    app.book(&a, &days[..1]).await.data("submitBasket");
    let reservation = espace_famille_domain::reservation::reservation_id(a.child, a.meal, days[0]);

    let auditor_all = auditor(&app).await;
    let auditor_b_email = format!("auditor-b-{}@example.fr", Uuid::new_v4().simple());
    app.create_account(
        &auditor_b_email,
        PASSWORD,
        &[espace_famille_api::accounts::Grant::Auditor(Some(b.collectivity))],
    )
    .await;
    let auditor_b = app.login(&auditor_b_email, PASSWORD).await;

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
            name: "read commune A's services",
            document: "query($c: UUID!) { collectivity(id: $c) { units { id } } }",
            variables: json!({ "c": a.collectivity }),
            allowed: EVERYONE,
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
                "UNAUTHENTICATED" | "FORBIDDEN" => code,
                _ => "allowed".to_string(),
            };
            let expected = if operation.allowed.contains(role) {
                "allowed"
            } else if token.is_none() {
                "UNAUTHENTICATED"
            } else {
                "FORBIDDEN"
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
