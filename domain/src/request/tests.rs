//! Given/when/then tests of the request, and of a commune's categories.

use super::*;
use crate::collectivity::{AttachmentRule, FormField};
use cqrs_es::test::TestFramework;

fn pickup() -> RequestCategory {
    RequestCategory {
        id: Uuid::from_u128(0xca),
        name: "Autorisation de récupération d'un enfant".into(),
        description: None,
        fields: vec![
            FormField {
                name: "person".into(),
                label: "Personne autorisée".into(),
                kind: FieldKind::Text,
                required: true,
            },
            FormField {
                name: "from".into(),
                label: "À partir du".into(),
                kind: FieldKind::Date,
                required: true,
            },
            FormField {
                name: "link".into(),
                label: "Lien avec l'enfant".into(),
                kind: FieldKind::Choice {
                    options: vec!["Grand-parent".into(), "Voisin".into()],
                },
                required: false,
            },
        ],
        attachments: vec![AttachmentRule {
            name: "identity".into(),
            label: "Pièce d'identité de la personne autorisée".into(),
            required: true,
            accepts: vec![FileKind::Pdf, FileKind::Jpeg, FileKind::Heic],
        }],
        justifies_absence: false,
        retired: false,
    }
}

fn file(kind: FileKind) -> StoredFile {
    StoredFile {
        sha256: "ab".repeat(32),
        size: 1_024,
        kind,
        file_name: Personal::Known("carte.pdf".into()),
    }
}

fn field(name: &str, value: &str) -> FieldValue {
    FieldValue {
        name: name.into(),
        value: Personal::Known(value.into()),
    }
}

fn submitted() -> Submitted {
    Submitted {
        family_id: Uuid::from_u128(0xfa),
        collectivity_id: Uuid::from_u128(0xc0),
        category_id: Uuid::from_u128(0xca),
        category_name: String::new(),
        message: Personal::Known("  Sa grand-mère viendra le chercher.  ".into()),
        fields: vec![field("from", "2027-03-01"), field("person", "Jeanne Martin")],
        attachments: vec![Attachment {
            name: "identity".into(),
            file: file(FileKind::Pdf),
        }],
        reservation_id: None,
    }
}

fn framework() -> TestFramework<Request> {
    TestFramework::with(())
}

fn refused(submitted: Submitted, category: RequestCategory, error: RequestError) {
    framework()
        .given_no_previous_events()
        .when(RequestCommand::Submit { submitted, category })
        .then_expect_error(error);
}

#[test]
fn a_request_is_kept_with_its_texts_trimmed_and_its_fields_in_the_forms_order() {
    let kept = Submitted {
        category_name: "Autorisation de récupération d'un enfant".into(),
        message: Personal::Known("Sa grand-mère viendra le chercher.".into()),
        fields: vec![field("person", "Jeanne Martin"), field("from", "2027-03-01")],
        ..submitted()
    };
    framework()
        .given_no_previous_events()
        .when(RequestCommand::Submit {
            submitted: submitted(),
            category: pickup(),
        })
        .then_expect_events(vec![RequestEvent::RequestSubmitted { submitted: kept }]);
}

#[test]
fn a_request_keeps_to_its_categorys_form() {
    let without = |name: &str| Submitted {
        fields: submitted()
            .fields
            .into_iter()
            .filter(|f| f.name != name)
            .collect(),
        ..submitted()
    };
    refused(
        without("person"),
        pickup(),
        RequestError::MissingField("person".into()),
    );
    let mut unknown = submitted();
    unknown.fields.push(field("age", "12"));
    refused(unknown, pickup(), RequestError::UnknownField("age".into()));
    let mut twice = submitted();
    twice.fields.push(field("person", "Paul"));
    refused(twice, pickup(), RequestError::DuplicateField("person".into()));
    let mut bad_date = without("from");
    bad_date.fields.push(field("from", "le 1er mars"));
    assert!(matches!(
        framework()
            .given_no_previous_events()
            .when(RequestCommand::Submit {
                submitted: bad_date,
                category: pickup()
            })
            .inspect_result(),
        Err(RequestError::InvalidField { name, .. }) if name == "from"
    ));
    let mut bad_choice = submitted();
    bad_choice.fields.push(field("link", "Cousin"));
    assert!(matches!(
        framework()
            .given_no_previous_events()
            .when(RequestCommand::Submit {
                submitted: bad_choice,
                category: pickup()
            })
            .inspect_result(),
        Err(RequestError::InvalidField { name, .. }) if name == "link"
    ));
    let empty = Submitted {
        message: Personal::Known("   ".into()),
        ..submitted()
    };
    refused(
        empty,
        pickup(),
        RequestError::Text(TextError::Empty { field: "a message" }),
    );
}

#[test]
fn a_request_brings_the_attachments_its_category_asks_for_in_the_kinds_it_accepts() {
    let none = Submitted {
        attachments: vec![],
        ..submitted()
    };
    refused(none, pickup(), RequestError::MissingAttachment("identity".into()));
    let png = Submitted {
        attachments: vec![Attachment {
            name: "identity".into(),
            file: file(FileKind::Png),
        }],
        ..submitted()
    };
    refused(
        png,
        pickup(),
        RequestError::FileNotAccepted {
            name: "identity".into(),
            kind: FileKind::Png,
        },
    );
    let mut other = submitted();
    other.attachments.push(Attachment {
        name: "payslip".into(),
        file: file(FileKind::Pdf),
    });
    refused(other, pickup(), RequestError::UnknownAttachment("payslip".into()));
    let mut unnamed = submitted();
    unnamed.attachments[0].file.sha256 = "not a hash".into();
    refused(unnamed, pickup(), RequestError::InvalidFile);
}

#[test]
fn an_absence_is_named_by_the_category_that_justifies_one_only() {
    let justifying = RequestCategory {
        justifies_absence: true,
        ..pickup()
    };
    refused(submitted(), justifying.clone(), RequestError::AbsenceNeeded);
    let named = Submitted {
        reservation_id: Some(Uuid::from_u128(0x5e)),
        ..submitted()
    };
    refused(named, pickup(), RequestError::NoAbsenceExpected);
    let retired = RequestCategory {
        retired: true,
        ..pickup()
    };
    refused(submitted(), retired, RequestError::CategoryRetired);
}

#[test]
fn an_agent_answers_then_closes_and_a_closed_request_takes_no_more() {
    let sent = RequestEvent::RequestSubmitted {
        submitted: submitted(),
    };
    let answer = Answer {
        message: Personal::Known("Bien reçu, merci.".into()),
        attachment: None,
    };
    framework()
        .given(vec![sent.clone()])
        .when(RequestCommand::Answer {
            answer: answer.clone(),
        })
        .then_expect_events(vec![RequestEvent::RequestAnswered {
            answer: answer.clone(),
        }]);
    let closed = RequestEvent::RequestClosed {
        accepted: true,
        message: None,
    };
    framework()
        .given(vec![sent.clone()])
        .when(RequestCommand::Close {
            accepted: true,
            message: Some("  ".into()),
        })
        .then_expect_events(vec![closed.clone()]);
    framework()
        .given(vec![sent.clone(), closed.clone()])
        .when(RequestCommand::Answer { answer })
        .then_expect_error(RequestError::Closed);
    framework()
        .given(vec![sent.clone(), closed.clone()])
        .when(RequestCommand::Close {
            accepted: true,
            message: None,
        })
        .then_expect_events(vec![]);
    framework()
        .given(vec![sent, closed])
        .when(RequestCommand::Close {
            accepted: false,
            message: None,
        })
        .then_expect_error(RequestError::Closed);
    framework()
        .given_no_previous_events()
        .when(RequestCommand::Close {
            accepted: false,
            message: None,
        })
        .then_expect_error(RequestError::NotSubmitted);
}

#[test]
fn a_category_names_each_field_once_and_accepts_some_kind_of_file() {
    assert!(pickup().checked().is_ok());
    let mut twice = pickup();
    twice.attachments[0].name = "person".into();
    assert!(twice.checked().is_err(), "a field and an attachment share a name");
    let mut badly_named = pickup();
    badly_named.fields[0].name = "Personne autorisée".into();
    assert!(badly_named.checked().is_err());
    let mut nothing_accepted = pickup();
    nothing_accepted.attachments[0].accepts.clear();
    assert!(nothing_accepted.checked().is_err());
    let mut no_options = pickup();
    no_options.fields[2].kind = FieldKind::Choice { options: vec![] };
    assert!(no_options.checked().is_err());
    let unnamed = RequestCategory {
        name: " ".into(),
        ..pickup()
    };
    assert!(unnamed.checked().is_err());
}
