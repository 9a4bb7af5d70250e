//! The family: a household with its guardians and children, shared by every
//! commune it belongs to (one family, one login, several communes).

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::calendar::SchoolYear;

/// A child of the family.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Child {
    pub id: Uuid,
    pub first_name: String,
    pub last_name: String,
    pub birth_date: NaiveDate,
    /// School and class, as the commune writes them ("École Jules Ferry, CE1").
    pub school_class: Option<String>,
}

/// A child's enrolment (inscription) in a service of a commune for a school
/// year: what allows the child to be booked into that service's units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Enrolment {
    pub child_id: Uuid,
    pub collectivity_id: Uuid,
    pub service_id: Uuid,
    pub school_year: SchoolYear,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FamilyCommand {
    /// An agent of a commune opens the family's account for its guardian.
    OpenAccount {
        id: Uuid,
        collectivity_id: Uuid,
        /// The commune's own reference for the family (its file number).
        family_ref: String,
        guardian_email: String,
    },
    RegisterChild {
        child: Child,
    },
    EnrolChild {
        enrolment: Enrolment,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FamilyEvent {
    FamilyAccountOpened {
        id: Uuid,
        collectivity_id: Uuid,
        family_ref: String,
        guardian_email: String,
    },
    ChildRegistered {
        child: Child,
    },
    ChildEnrolled {
        enrolment: Enrolment,
    },
}

impl DomainEvent for FamilyEvent {
    fn event_type(&self) -> String {
        match self {
            FamilyEvent::FamilyAccountOpened { .. } => "FamilyAccountOpened",
            FamilyEvent::ChildRegistered { .. } => "ChildRegistered",
            FamilyEvent::ChildEnrolled { .. } => "ChildEnrolled",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FamilyError {
    #[error("this family account is already open")]
    AlreadyOpened,
    #[error("no such family")]
    NotFound,
    #[error("'{0}' is not a valid e-mail address")]
    InvalidEmail(String),
    #[error("a family reference cannot be empty")]
    EmptyFamilyRef,
    #[error("a child needs a first and a last name")]
    EmptyChildName,
    #[error("a child with this id is already registered")]
    DuplicateChild,
    #[error("no child {0} in this family")]
    UnknownChild(Uuid),
    #[error("the family is not a member of collectivity {0}")]
    NotAMember(Uuid),
    #[error("the child is already enrolled in this service for {0}")]
    AlreadyEnrolled(SchoolYear),
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Family {
    pub id: Option<Uuid>,
    pub guardian_email: String,
    /// Communes the family belongs to, with each commune's reference for it.
    pub memberships: BTreeMap<Uuid, String>,
    pub children: BTreeMap<Uuid, Child>,
    pub enrolments: BTreeSet<Enrolment>,
}

impl Family {
    pub fn exists(&self) -> bool {
        self.id.is_some()
    }

    pub fn is_member_of(&self, collectivity_id: Uuid) -> bool {
        self.memberships.contains_key(&collectivity_id)
    }

    /// Whether the child may be booked into the service on a day of `year`.
    pub fn is_enrolled(
        &self,
        child_id: Uuid,
        collectivity_id: Uuid,
        service_id: Uuid,
        year: SchoolYear,
    ) -> bool {
        self.enrolments.contains(&Enrolment {
            child_id,
            collectivity_id,
            service_id,
            school_year: year,
        })
    }
}

/// A deliberately plain check: one `@`, something on both sides, a dot in
/// the domain. Deliverability is proven by the activation e-mail.
fn is_plausible_email(email: &str) -> bool {
    let mut parts = email.split('@');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(local), Some(domain), None) => {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !email.chars().any(char::is_whitespace)
        }
        _ => false,
    }
}

impl Aggregate for Family {
    const TYPE: &'static str = "Family";
    type Command = FamilyCommand;
    type Event = FamilyEvent;
    type Error = FamilyError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        if let FamilyCommand::OpenAccount {
            id,
            collectivity_id,
            family_ref,
            guardian_email,
        } = command
        {
            if self.exists() {
                return Err(FamilyError::AlreadyOpened);
            }
            let guardian_email = guardian_email.trim().to_lowercase();
            if !is_plausible_email(&guardian_email) {
                return Err(FamilyError::InvalidEmail(guardian_email));
            }
            let family_ref = family_ref.trim().to_string();
            if family_ref.is_empty() {
                return Err(FamilyError::EmptyFamilyRef);
            }
            let event = FamilyEvent::FamilyAccountOpened {
                id,
                collectivity_id,
                family_ref,
                guardian_email,
            };
            sink.write(event, self).await;
            return Ok(());
        }
        if !self.exists() {
            return Err(FamilyError::NotFound);
        }
        let event = match command {
            FamilyCommand::OpenAccount { .. } => unreachable!("handled above"),
            FamilyCommand::RegisterChild { mut child } => {
                child.first_name = child.first_name.trim().to_string();
                child.last_name = child.last_name.trim().to_string();
                if child.first_name.is_empty() || child.last_name.is_empty() {
                    return Err(FamilyError::EmptyChildName);
                }
                if self.children.contains_key(&child.id) {
                    return Err(FamilyError::DuplicateChild);
                }
                FamilyEvent::ChildRegistered { child }
            }
            FamilyCommand::EnrolChild { enrolment } => {
                if !self.children.contains_key(&enrolment.child_id) {
                    return Err(FamilyError::UnknownChild(enrolment.child_id));
                }
                if !self.is_member_of(enrolment.collectivity_id) {
                    return Err(FamilyError::NotAMember(enrolment.collectivity_id));
                }
                if self.enrolments.contains(&enrolment) {
                    return Err(FamilyError::AlreadyEnrolled(enrolment.school_year));
                }
                FamilyEvent::ChildEnrolled { enrolment }
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            FamilyEvent::FamilyAccountOpened {
                id,
                collectivity_id,
                family_ref,
                guardian_email,
            } => {
                self.id = Some(id);
                self.guardian_email = guardian_email;
                self.memberships.insert(collectivity_id, family_ref);
            }
            FamilyEvent::ChildRegistered { child } => {
                self.children.insert(child.id, child);
            }
            FamilyEvent::ChildEnrolled { enrolment } => {
                self.enrolments.insert(enrolment);
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::collectivity::tests::{CANTEEN, COMMUNE};
    use cqrs_es::test::TestFramework;

    pub const FAMILY: Uuid = Uuid::from_u128(0xfa);
    pub const LOUISE: Uuid = Uuid::from_u128(0x10);

    pub fn louise() -> Child {
        Child {
            id: LOUISE,
            first_name: "Louise".into(),
            last_name: "Martin".into(),
            birth_date: NaiveDate::from_ymd_opt(2018, 4, 2).unwrap(),
            school_class: Some("CE1".into()),
        }
    }

    pub fn opened() -> FamilyEvent {
        FamilyEvent::FamilyAccountOpened {
            id: FAMILY,
            collectivity_id: COMMUNE,
            family_ref: "F-0042".into(),
            guardian_email: "claire.martin@example.fr".into(),
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
                guardian_email: "Claire.Martin@Example.fr ".into(),
            })
            .then_expect_events(vec![opened()]);
    }

    #[test]
    fn it_refuses_an_account_with_an_invalid_email() {
        framework()
            .given_no_previous_events()
            .when(FamilyCommand::OpenAccount {
                id: FAMILY,
                collectivity_id: COMMUNE,
                family_ref: "F-1".into(),
                guardian_email: "claire.martin".into(),
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
                guardian_email: "a@b.fr".into(),
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
        child.first_name = "  ".into();
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
}
