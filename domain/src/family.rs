//! The family: a household with its guardians and children, shared by every
//! commune it belongs to (one family, one login, several communes).

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::calendar::SchoolYear;
use crate::personal::Personal;
use crate::text::{self, TextError};

/// A child of the family. Names, birth date and class are personal data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Child {
    pub id: Uuid,
    pub first_name: Personal<String>,
    pub last_name: Personal<String>,
    pub birth_date: Personal<NaiveDate>,
    /// School and class, as the commune writes them ("École Jules Ferry, CE1").
    pub school_class: Personal<Option<String>>,
}

/// What a guardian tells about themself when activating the account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GuardianProfile {
    pub first_name: Personal<String>,
    pub last_name: Personal<String>,
    pub phone: Personal<Option<String>>,
}

/// A guardian whose account is active.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Guardian {
    pub account_id: Uuid,
    pub profile: GuardianProfile,
}

/// The quotient familial (QF): the family's income per share, as the CAF or
/// the commune computes it; it selects the tariff bracket. Set per commune,
/// for a period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuotientFamilial {
    pub collectivity_id: Uuid,
    /// In euros, as communes publish their brackets ("QF de 0 à 450 €").
    pub quotient: u32,
    pub valid_from: NaiveDate,
    /// Inclusive; open-ended when absent.
    pub valid_until: Option<NaiveDate>,
}

impl QuotientFamilial {
    pub fn covers(&self, date: NaiveDate) -> bool {
        self.valid_from <= date && self.valid_until.is_none_or(|until| date <= until)
    }
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
        guardian_email: Personal<String>,
    },
    RegisterChild {
        child: Child,
    },
    EnrolChild {
        enrolment: Enrolment,
    },
    /// The guardian completes the profile when activating the account.
    ActivateAccount {
        account_id: Uuid,
        profile: GuardianProfile,
    },
    /// An agent of another commune links the family to it.
    JoinCollectivity {
        collectivity_id: Uuid,
        family_ref: String,
    },
    SetQuotientFamilial {
        quotient: QuotientFamilial,
    },
    /// Forget the family's personal data (GDPR): the store erases its key.
    Erase,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FamilyEvent {
    FamilyAccountOpened {
        id: Uuid,
        collectivity_id: Uuid,
        family_ref: String,
        guardian_email: Personal<String>,
    },
    ChildRegistered {
        child: Child,
    },
    ChildEnrolled {
        enrolment: Enrolment,
    },
    AccountActivated {
        account_id: Uuid,
        profile: GuardianProfile,
    },
    JoinedCollectivity {
        collectivity_id: Uuid,
        family_ref: String,
    },
    QuotientFamilialSet {
        quotient: QuotientFamilial,
    },
    /// The family's personal data was erased; its events remain.
    FamilyErased,
}

impl DomainEvent for FamilyEvent {
    fn event_type(&self) -> String {
        match self {
            FamilyEvent::FamilyAccountOpened { .. } => "FamilyAccountOpened",
            FamilyEvent::ChildRegistered { .. } => "ChildRegistered",
            FamilyEvent::ChildEnrolled { .. } => "ChildEnrolled",
            FamilyEvent::AccountActivated { .. } => "AccountActivated",
            FamilyEvent::JoinedCollectivity { .. } => "JoinedCollectivity",
            FamilyEvent::QuotientFamilialSet { .. } => "QuotientFamilialSet",
            FamilyEvent::FamilyErased => "FamilyErased",
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
    #[error("this account is already active")]
    AlreadyActivated,
    #[error("a guardian needs a first and a last name")]
    EmptyGuardianName,
    #[error("the family already belongs to collectivity {0}")]
    AlreadyMember(Uuid),
    #[error("a quotient familial period cannot end before it starts")]
    InvalidQuotientPeriod,
    #[error("this family's personal data was erased")]
    Erased,
    #[error(transparent)]
    InvalidText(#[from] TextError),
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Family {
    pub id: Option<Uuid>,
    pub guardian_email: Option<Personal<String>>,
    pub guardians: Vec<Guardian>,
    /// Quotients familiaux in the order they were set; the latest one
    /// covering a date wins.
    pub quotients: Vec<QuotientFamilial>,
    pub erased: bool,
    /// Communes the family belongs to, with each commune's reference for it.
    pub memberships: BTreeMap<Uuid, String>,
    pub children: BTreeMap<Uuid, Child>,
    pub enrolments: BTreeSet<Enrolment>,
}

impl Family {
    pub fn exists(&self) -> bool {
        self.id.is_some()
    }

    /// The communes the family belongs to.
    pub fn collectivities(&self) -> Vec<Uuid> {
        self.memberships.keys().copied().collect()
    }

    pub fn is_member_of(&self, collectivity_id: Uuid) -> bool {
        self.memberships.contains_key(&collectivity_id)
    }

    /// The quotient familial in force at a commune on a date.
    pub fn quotient_on(&self, collectivity_id: Uuid, date: NaiveDate) -> Option<u32> {
        self.quotients
            .iter()
            .rev()
            .find(|q| q.collectivity_id == collectivity_id && q.covers(date))
            .map(|q| q.quotient)
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

/// A personal text checked as [`text::required`]; an empty one is refused
/// with `empty`, the family's own reason.
fn personal_text(
    field: &'static str,
    value: Personal<String>,
    max: usize,
    empty: FamilyError,
) -> Result<Personal<String>, FamilyError> {
    match value {
        Personal::Known(value) => match text::required(field, &value, max) {
            Ok(value) => Ok(Personal::Known(value)),
            Err(TextError::Empty { .. }) => Err(empty),
            Err(other) => Err(other.into()),
        },
        Personal::Erased => Err(empty),
    }
}

/// A personal text that may be left out, checked as [`text::optional`].
fn personal_optional(
    field: &'static str,
    value: Personal<Option<String>>,
    max: usize,
) -> Result<Personal<Option<String>>, FamilyError> {
    match value {
        Personal::Known(value) => Ok(Personal::Known(text::optional(field, value.as_deref(), max)?)),
        Personal::Erased => Ok(Personal::Erased),
    }
}

/// A family reference: trimmed, bounded, never empty.
fn family_ref(value: &str) -> Result<String, FamilyError> {
    text::required("a family reference", value, text::REFERENCE).map_err(|error| match error {
        TextError::Empty { .. } => FamilyError::EmptyFamilyRef,
        other => other.into(),
    })
}

/// A deliberately plain check: one `@`, something on both sides, a dot in
/// the domain. Deliverability is proven by the activation e-mail.
pub fn is_plausible_email(email: &str) -> bool {
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
            let guardian_email = guardian_email
                .known()
                .map(|email| email.trim().to_lowercase())
                .unwrap_or_default();
            let guardian_email = text::required("an e-mail address", &guardian_email, text::EMAIL)
                .map_err(|_| FamilyError::InvalidEmail(guardian_email.clone()))?;
            if !is_plausible_email(&guardian_email) {
                return Err(FamilyError::InvalidEmail(guardian_email));
            }
            let guardian_email = Personal::Known(guardian_email);
            let family_ref = self::family_ref(&family_ref)?;
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
        if self.erased {
            return Err(FamilyError::Erased);
        }
        let event = match command {
            FamilyCommand::OpenAccount { .. } => unreachable!("handled above"),
            FamilyCommand::RegisterChild { mut child } => {
                child.first_name = personal_text(
                    "a first name",
                    child.first_name,
                    text::NAME,
                    FamilyError::EmptyChildName,
                )?;
                child.last_name = personal_text(
                    "a last name",
                    child.last_name,
                    text::NAME,
                    FamilyError::EmptyChildName,
                )?;
                child.school_class =
                    personal_optional("a school class", child.school_class, text::SCHOOL_CLASS)?;
                if let Personal::Known(birth_date) = child.birth_date {
                    text::date("a birth date", birth_date)?;
                }
                if self.children.contains_key(&child.id) {
                    return Err(FamilyError::DuplicateChild);
                }
                FamilyEvent::ChildRegistered { child }
            }
            FamilyCommand::EnrolChild { enrolment } => {
                text::year("a school year", enrolment.school_year.0)?;
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
            FamilyCommand::ActivateAccount {
                account_id,
                mut profile,
            } => {
                if self.guardians.iter().any(|g| g.account_id == account_id) {
                    return Err(FamilyError::AlreadyActivated);
                }
                profile.first_name = personal_text(
                    "a first name",
                    profile.first_name,
                    text::NAME,
                    FamilyError::EmptyGuardianName,
                )?;
                profile.last_name = personal_text(
                    "a last name",
                    profile.last_name,
                    text::NAME,
                    FamilyError::EmptyGuardianName,
                )?;
                profile.phone = personal_optional("a phone number", profile.phone, text::REFERENCE)?;
                FamilyEvent::AccountActivated { account_id, profile }
            }
            FamilyCommand::JoinCollectivity {
                collectivity_id,
                family_ref,
            } => {
                if self.is_member_of(collectivity_id) {
                    return Err(FamilyError::AlreadyMember(collectivity_id));
                }
                let family_ref = self::family_ref(&family_ref)?;
                FamilyEvent::JoinedCollectivity {
                    collectivity_id,
                    family_ref,
                }
            }
            FamilyCommand::SetQuotientFamilial { quotient } => {
                if !self.is_member_of(quotient.collectivity_id) {
                    return Err(FamilyError::NotAMember(quotient.collectivity_id));
                }
                text::date("a start of validity", quotient.valid_from)?;
                if let Some(until) = quotient.valid_until {
                    text::date("an end of validity", until)?;
                }
                if quotient
                    .valid_until
                    .is_some_and(|until| until < quotient.valid_from)
                {
                    return Err(FamilyError::InvalidQuotientPeriod);
                }
                FamilyEvent::QuotientFamilialSet { quotient }
            }
            FamilyCommand::Erase => FamilyEvent::FamilyErased,
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
                self.guardian_email = Some(guardian_email);
                self.memberships.insert(collectivity_id, family_ref);
            }
            FamilyEvent::ChildRegistered { child } => {
                self.children.insert(child.id, child);
            }
            FamilyEvent::ChildEnrolled { enrolment } => {
                self.enrolments.insert(enrolment);
            }
            FamilyEvent::AccountActivated { account_id, profile } => {
                self.guardians.push(Guardian { account_id, profile });
            }
            FamilyEvent::JoinedCollectivity {
                collectivity_id,
                family_ref,
            } => {
                self.memberships.insert(collectivity_id, family_ref);
            }
            FamilyEvent::QuotientFamilialSet { quotient } => self.quotients.push(quotient),
            FamilyEvent::FamilyErased => self.erased = true,
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
            })
            .then_expect_events(vec![FamilyEvent::AccountActivated {
                account_id,
                profile: trimmed.clone(),
            }]);
        framework()
            .given(vec![
                opened(),
                FamilyEvent::AccountActivated {
                    account_id,
                    profile: trimmed,
                },
            ])
            .when(FamilyCommand::ActivateAccount {
                account_id,
                profile: profile(),
            })
            .then_expect_error(FamilyError::AlreadyActivated);
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
}
