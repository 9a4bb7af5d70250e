//! Given/when/then tests of the family aggregate.

use super::*;
use crate::collectivity::tests::{CANTEEN, COMMUNE};
use cqrs_es::test::TestFramework;

pub const FAMILY: Uuid = Uuid::from_u128(0xfa);
pub const LOUISE: Uuid = Uuid::from_u128(0x10);

pub fn louise() -> Child {
    Child {
        id: LOUISE,
        first_name: "Louise".to_string().into(),
        last_name: "Martin".to_string().into(),
        birth_date: NaiveDate::from_ymd_opt(2018, 4, 2).unwrap().into(),
        school_class: Some("CE1".to_string()).into(),
    }
}

pub fn opened() -> FamilyEvent {
    FamilyEvent::FamilyAccountOpened {
        id: FAMILY,
        collectivity_id: COMMUNE,
        family_ref: "F-0042".into(),
        guardian_email: "claire.martin@example.fr".to_string().into(),
    }
}

pub fn enrolment() -> Enrolment {
    Enrolment {
        child_id: LOUISE,
        collectivity_id: COMMUNE,
        service_id: CANTEEN,
        school_year: SchoolYear(2026),
    }
}

fn framework() -> TestFramework<Family> {
    TestFramework::with(())
}

#[test]
fn an_agent_opens_an_account_with_the_guardian_email_normalised() {
    framework()
        .given_no_previous_events()
        .when(FamilyCommand::OpenAccount {
            id: FAMILY,
            collectivity_id: COMMUNE,
            family_ref: " F-0042 ".into(),
            guardian_email: "Claire.Martin@Example.fr ".to_string().into(),
        })
        .then_expect_events(vec![opened()]);
}

#[test]
fn it_refuses_an_email_with_a_nul_byte_so_that_no_reader_chokes_on_it() {
    framework()
        .given_no_previous_events()
        .when(FamilyCommand::OpenAccount {
            id: FAMILY,
            collectivity_id: COMMUNE,
            family_ref: "F-1".into(),
            guardian_email: "claire\0@example.fr".to_string().into(),
        })
        .then_expect_error(FamilyError::InvalidEmail("claire\0@example.fr".into()));
}

#[test]
fn it_refuses_a_child_name_longer_than_a_name_can_be() {
    let mut child = louise();
    child.first_name = "L".repeat(text::NAME + 1).into();
    framework()
        .given(vec![opened()])
        .when(FamilyCommand::RegisterChild { child })
        .then_expect_error(FamilyError::InvalidText(TextError::TooLong {
            field: "a first name",
            max: text::NAME,
        }));
}

#[test]
fn it_refuses_a_school_year_outside_the_years_served() {
    let mut enrolment = enrolment();
    enrolment.school_year = SchoolYear(i32::MAX);
    framework()
        .given(vec![opened(), FamilyEvent::ChildRegistered { child: louise() }])
        .when(FamilyCommand::EnrolChild { enrolment })
        .then_expect_error(FamilyError::InvalidText(TextError::OutOfRange {
            field: "a school year",
        }));
}

#[test]
fn it_refuses_an_account_with_an_invalid_email() {
    framework()
        .given_no_previous_events()
        .when(FamilyCommand::OpenAccount {
            id: FAMILY,
            collectivity_id: COMMUNE,
            family_ref: "F-1".into(),
            guardian_email: "claire.martin".to_string().into(),
        })
        .then_expect_error(FamilyError::InvalidEmail("claire.martin".into()));
}

#[test]
fn it_refuses_to_open_the_same_account_twice() {
    framework()
        .given(vec![opened()])
        .when(FamilyCommand::OpenAccount {
            id: FAMILY,
            collectivity_id: COMMUNE,
            family_ref: "F-2".into(),
            guardian_email: "a@b.fr".to_string().into(),
        })
        .then_expect_error(FamilyError::AlreadyOpened);
}

#[test]
fn it_registers_a_child() {
    framework()
        .given(vec![opened()])
        .when(FamilyCommand::RegisterChild { child: louise() })
        .then_expect_events(vec![FamilyEvent::ChildRegistered { child: louise() }]);
}

#[test]
fn it_refuses_a_child_without_a_name() {
    let mut child = louise();
    child.first_name = "  ".to_string().into();
    framework()
        .given(vec![opened()])
        .when(FamilyCommand::RegisterChild { child })
        .then_expect_error(FamilyError::EmptyChildName);
}

#[test]
fn it_enrols_a_registered_child_in_a_service_of_a_member_commune() {
    framework()
        .given(vec![opened(), FamilyEvent::ChildRegistered { child: louise() }])
        .when(FamilyCommand::EnrolChild {
            enrolment: enrolment(),
        })
        .then_expect_events(vec![FamilyEvent::ChildEnrolled {
            enrolment: enrolment(),
        }]);
}

#[test]
fn it_refuses_to_enrol_an_unknown_child() {
    framework()
        .given(vec![opened()])
        .when(FamilyCommand::EnrolChild {
            enrolment: enrolment(),
        })
        .then_expect_error(FamilyError::UnknownChild(LOUISE));
}

#[test]
fn it_refuses_an_enrolment_in_a_commune_the_family_has_not_joined() {
    let other = Uuid::from_u128(0x0c1);
    framework()
        .given(vec![opened(), FamilyEvent::ChildRegistered { child: louise() }])
        .when(FamilyCommand::EnrolChild {
            enrolment: Enrolment {
                collectivity_id: other,
                ..enrolment()
            },
        })
        .then_expect_error(FamilyError::NotAMember(other));
}

fn profile() -> GuardianProfile {
    GuardianProfile {
        first_name: " Claire ".to_string().into(),
        last_name: "Martin".to_string().into(),
        phone: None.into(),
        address: None.into(),
    }
}

#[test]
fn a_guardian_activates_the_account_once() {
    let account_id = Uuid::from_u128(0xacc);
    let mut trimmed = profile();
    trimmed.first_name = "Claire".to_string().into();
    framework()
        .given(vec![opened()])
        .when(FamilyCommand::ActivateAccount {
            account_id,
            profile: profile(),
            email: Some(" Claire.Martin@Example.fr".to_string().into()),
        })
        .then_expect_events(vec![FamilyEvent::AccountActivated {
            account_id,
            profile: trimmed.clone(),
            email: Some("claire.martin@example.fr".to_string().into()),
        }]);
    framework()
        .given(vec![
            opened(),
            FamilyEvent::AccountActivated {
                account_id,
                profile: trimmed,
                email: None,
            },
        ])
        .when(FamilyCommand::ActivateAccount {
            account_id,
            profile: profile(),
            email: None,
        })
        .then_expect_error(FamilyError::AlreadyActivated);
}

const CLAIRE: Uuid = Uuid::from_u128(0xacc);

fn activated() -> FamilyEvent {
    FamilyEvent::AccountActivated {
        account_id: CLAIRE,
        profile: GuardianProfile {
            first_name: "Claire".to_string().into(),
            ..profile()
        },
        email: Some("claire.martin@example.fr".to_string().into()),
    }
}

fn address() -> PostalAddress {
    PostalAddress {
        line1: " 12 rue des Écoles ".into(),
        line2: Some(" ".into()),
        postcode: "77580".into(),
        city: "Dammartin-sur-Tigeaux".into(),
    }
}

#[test]
fn a_guardian_updates_the_profile_with_a_phone_and_an_address() {
    let updated = GuardianProfile {
        first_name: "Claire".to_string().into(),
        last_name: "Martin-Durand".to_string().into(),
        phone: Some("+33 6 12 34 56 78".to_string()).into(),
        address: Some(address()).into(),
    };
    let mut stored = updated.clone();
    stored.address = Some(PostalAddress {
        line1: "12 rue des Écoles".into(),
        line2: None,
        ..address()
    })
    .into();
    framework()
        .given(vec![opened(), activated()])
        .when(FamilyCommand::UpdateGuardianProfile {
            account_id: CLAIRE,
            profile: updated.clone(),
        })
        .then_expect_events(vec![FamilyEvent::GuardianProfileUpdated {
            account_id: CLAIRE,
            profile: stored,
        }]);
    let refused = |profile: GuardianProfile, error: FamilyError| {
        framework()
            .given(vec![opened(), activated()])
            .when(FamilyCommand::UpdateGuardianProfile {
                account_id: CLAIRE,
                profile,
            })
            .then_expect_error(error);
    };
    refused(
        GuardianProfile {
            phone: Some("appelez-moi".to_string()).into(),
            ..updated.clone()
        },
        FamilyError::InvalidPhone("appelez-moi".into()),
    );
    refused(
        GuardianProfile {
            address: Some(PostalAddress {
                postcode: "77<580>".into(),
                ..address()
            })
            .into(),
            ..updated.clone()
        },
        FamilyError::InvalidAddress("'77<580>' is not a postcode".into()),
    );
    refused(
        GuardianProfile {
            address: Some(PostalAddress {
                city: " ".into(),
                ..address()
            })
            .into(),
            ..updated.clone()
        },
        FamilyError::InvalidAddress("the city is needed".into()),
    );
    // Only an active guardian of this family has a profile here.
    let stranger = Uuid::from_u128(0xbad);
    framework()
        .given(vec![opened(), activated()])
        .when(FamilyCommand::UpdateGuardianProfile {
            account_id: stranger,
            profile: updated,
        })
        .then_expect_error(FamilyError::NotAGuardian(stranger));
}

#[test]
fn a_second_guardian_is_invited_once_and_a_family_has_at_most_four() {
    let invite = |email: &str| FamilyCommand::InviteGuardian {
        email: email.to_string().into(),
    };
    let invited = |email: &str| FamilyEvent::GuardianInvited {
        email: email.to_string().into(),
    };
    framework()
        .given(vec![opened(), activated()])
        .when(invite(" Paul.Durand@Example.fr "))
        .then_expect_events(vec![invited("paul.durand@example.fr")]);
    for known in ["CLAIRE.martin@example.fr", "paul.durand@example.fr"] {
        framework()
            .given(vec![opened(), invited("paul.durand@example.fr")])
            .when(invite(known))
            .then_expect_error(FamilyError::AlreadyInvited);
    }
    framework()
        .given(vec![opened()])
        .when(invite("paul@"))
        .then_expect_error(FamilyError::InvalidEmail("paul@".into()));
    framework()
        .given(vec![
            opened(),
            invited("a@example.fr"),
            invited("b@example.fr"),
            invited("c@example.fr"),
        ])
        .when(invite("d@example.fr"))
        .then_expect_error(FamilyError::TooManyGuardians);
}

#[test]
fn a_guardian_s_new_e_mail_is_recorded_and_counts_as_the_family_s() {
    framework()
        .given(vec![opened(), activated()])
        .when(FamilyCommand::ChangeGuardianEmail {
            account_id: CLAIRE,
            email: "Claire@Example.org".to_string().into(),
        })
        .then_expect_events(vec![FamilyEvent::GuardianEmailChanged {
            account_id: CLAIRE,
            email: "claire@example.org".to_string().into(),
        }]);
    let mut family = Family::default();
    for event in [
        opened(),
        activated(),
        FamilyEvent::GuardianEmailChanged {
            account_id: CLAIRE,
            email: "claire@example.org".to_string().into(),
        },
    ] {
        family.apply(event);
    }
    assert!(family.knows_email("claire@example.org"));
    assert_eq!(
        family.guardians[0].email,
        Some("claire@example.org".to_string().into())
    );
}

#[test]
fn an_event_recorded_before_addresses_and_e_mails_were_kept_still_reads() {
    let old = serde_json::json!({ "AccountActivated": {
        "account_id": CLAIRE,
        "profile": {
            "first_name": { "personal": "Claire" },
            "last_name": { "personal": "Martin" },
            "phone": { "personal": null }
        }
    }});
    let event: FamilyEvent = serde_json::from_value(old).unwrap();
    let FamilyEvent::AccountActivated { profile, email, .. } = event else {
        panic!("not an activation")
    };
    assert_eq!(profile.address, Personal::Known(None));
    assert_eq!(email, None);
}

#[test]
fn a_second_commune_links_the_family_once() {
    let other = Uuid::from_u128(0x0c1);
    let join = || FamilyCommand::JoinCollectivity {
        collectivity_id: other,
        family_ref: "B-17".into(),
    };
    framework()
        .given(vec![opened()])
        .when(join())
        .then_expect_events(vec![FamilyEvent::JoinedCollectivity {
            collectivity_id: other,
            family_ref: "B-17".into(),
        }]);
    framework()
        .given(vec![opened()])
        .when(FamilyCommand::JoinCollectivity {
            collectivity_id: COMMUNE,
            family_ref: "again".into(),
        })
        .then_expect_error(FamilyError::AlreadyMember(COMMUNE));
}

#[test]
fn the_latest_quotient_covering_a_date_is_the_one_in_force() {
    let d = |m, day| NaiveDate::from_ymd_opt(2027, m, day).unwrap();
    let mut family = Family::default();
    family.apply(opened());
    family.apply(FamilyEvent::QuotientFamilialSet {
        quotient: QuotientFamilial {
            collectivity_id: COMMUNE,
            quotient: 900,
            valid_from: d(1, 1),
            valid_until: None,
        },
    });
    family.apply(FamilyEvent::QuotientFamilialSet {
        quotient: QuotientFamilial {
            collectivity_id: COMMUNE,
            quotient: 620,
            valid_from: d(3, 1),
            valid_until: Some(d(6, 30)),
        },
    });
    assert_eq!(family.quotient_on(COMMUNE, d(2, 1)), Some(900));
    assert_eq!(family.quotient_on(COMMUNE, d(4, 1)), Some(620));
    assert_eq!(family.quotient_on(COMMUNE, d(7, 1)), Some(900));
    assert_eq!(family.quotient_on(Uuid::from_u128(9), d(4, 1)), None);
}

#[test]
fn it_refuses_a_quotient_period_that_ends_before_it_starts_or_for_another_commune() {
    let quotient = QuotientFamilial {
        collectivity_id: COMMUNE,
        quotient: 700,
        valid_from: NaiveDate::from_ymd_opt(2027, 3, 1).unwrap(),
        valid_until: Some(NaiveDate::from_ymd_opt(2027, 2, 1).unwrap()),
    };
    framework()
        .given(vec![opened()])
        .when(FamilyCommand::SetQuotientFamilial { quotient })
        .then_expect_error(FamilyError::InvalidQuotientPeriod);
    let elsewhere = QuotientFamilial {
        collectivity_id: Uuid::from_u128(9),
        valid_until: None,
        ..quotient
    };
    framework()
        .given(vec![opened()])
        .when(FamilyCommand::SetQuotientFamilial { quotient: elsewhere })
        .then_expect_error(FamilyError::NotAMember(Uuid::from_u128(9)));
}

#[test]
fn an_erased_family_accepts_no_further_command() {
    framework()
        .given(vec![opened(), FamilyEvent::FamilyErased])
        .when(FamilyCommand::RegisterChild { child: louise() })
        .then_expect_error(FamilyError::Erased);
}

#[test]
fn it_refuses_the_same_enrolment_twice() {
    framework()
        .given(vec![
            opened(),
            FamilyEvent::ChildRegistered { child: louise() },
            FamilyEvent::ChildEnrolled {
                enrolment: enrolment(),
            },
        ])
        .when(FamilyCommand::EnrolChild {
            enrolment: enrolment(),
        })
        .then_expect_error(FamilyError::AlreadyEnrolled(SchoolYear(2026)));
}

#[test]
fn a_guardian_declares_a_childs_allergies_and_pai_once_and_may_change_them() {
    let declare = |allergies: Option<&str>, pai| FamilyCommand::DeclareChildHealth {
        child_id: LOUISE,
        health: ChildHealth {
            allergies: allergies.map(str::to_string),
            pai,
        }
        .into(),
    };
    let nuts = ChildHealth {
        allergies: Some("arachide".into()),
        pai: true,
    };
    framework()
        .given(vec![opened(), FamilyEvent::ChildRegistered { child: louise() }])
        .when(declare(Some("  arachide "), true))
        .then_expect_events(vec![FamilyEvent::ChildHealthDeclared {
            child_id: LOUISE,
            health: nuts.clone().into(),
        }]);
    let declared = vec![
        opened(),
        FamilyEvent::ChildRegistered { child: louise() },
        FamilyEvent::ChildHealthDeclared {
            child_id: LOUISE,
            health: nuts.clone().into(),
        },
    ];
    // The same declaration again: nothing new.
    framework()
        .given(declared.clone())
        .when(declare(Some("arachide"), true))
        .then_expect_events(vec![]);
    framework()
        .given(declared)
        .when(declare(None, false))
        .then_expect_events(vec![FamilyEvent::ChildHealthDeclared {
            child_id: LOUISE,
            health: ChildHealth::default().into(),
        }]);
    framework()
        .given(vec![opened()])
        .when(declare(None, true))
        .then_expect_error(FamilyError::UnknownChild(LOUISE));
    assert!(nuts.needs_care());
    assert!(!ChildHealth::default().needs_care());
}

#[test]
fn an_agent_records_the_family_resident_in_a_commune_it_belongs_to() {
    let set = |resident| FamilyCommand::SetResidence {
        collectivity_id: COMMUNE,
        resident,
    };
    framework()
        .given(vec![opened()])
        .when(set(true))
        .then_expect_events(vec![FamilyEvent::ResidenceSet {
            collectivity_id: COMMUNE,
            resident: true,
        }]);
    framework()
        .given(vec![opened()])
        .when(set(false))
        .then_expect_events(vec![]);
    framework()
        .given(vec![opened()])
        .when(FamilyCommand::SetResidence {
            collectivity_id: Uuid::from_u128(0xe15e),
            resident: true,
        })
        .then_expect_error(FamilyError::NotAMember(Uuid::from_u128(0xe15e)));
}

#[test]
fn a_childs_rank_counts_the_siblings_enrolled_in_the_service_eldest_first() {
    let child = |n: u128, born: Option<(i32, u32, u32)>| Child {
        id: Uuid::from_u128(n),
        first_name: format!("Enfant {n}").into(),
        last_name: "Martin".to_string().into(),
        birth_date: match born {
            Some((y, m, d)) => NaiveDate::from_ymd_opt(y, m, d).unwrap().into(),
            None => Personal::Erased,
        },
        school_class: None.into(),
    };
    let mut family = Family::default();
    family.apply(opened());
    // Louise (2018), an elder brother (2016), a younger sister (2020) not
    // enrolled in the canteen, and a child whose birth date was erased.
    for registered in [
        louise(),
        child(2, Some((2016, 1, 9))),
        child(3, Some((2020, 6, 1))),
        child(4, None),
    ] {
        family.apply(FamilyEvent::ChildRegistered { child: registered });
    }
    for id in [LOUISE, Uuid::from_u128(2), Uuid::from_u128(4)] {
        family.apply(FamilyEvent::ChildEnrolled {
            enrolment: Enrolment {
                child_id: id,
                ..enrolment()
            },
        });
    }
    let rank = |id| family.rank_of(id, COMMUNE, CANTEEN, SchoolYear(2026));
    assert_eq!(rank(Uuid::from_u128(2)), 1, "the eldest");
    assert_eq!(rank(LOUISE), 2);
    assert_eq!(rank(Uuid::from_u128(4)), 3, "an unknown birth date comes last");
    assert_eq!(
        rank(Uuid::from_u128(3)),
        1,
        "not enrolled: not counted, and first"
    );
    assert_eq!(
        family.rank_of(LOUISE, COMMUNE, CANTEEN, SchoolYear(2027)),
        1,
        "another year"
    );
}
