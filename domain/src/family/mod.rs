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

mod guardians;
pub use guardians::{is_plausible_phone, Guardian, GuardianProfile, PostalAddress, MAX_GUARDIANS};

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
        /// The account's e-mail.
        email: Option<Personal<String>>,
    },
    /// A guardian changes their profile.
    UpdateGuardianProfile {
        account_id: Uuid,
        profile: GuardianProfile,
    },
    /// A guardian or an agent invites another guardian (a second parent)
    /// by e-mail: an account of their own, on the same family.
    InviteGuardian {
        email: Personal<String>,
    },
    /// A guardian's account took a new e-mail (confirmed from it).
    ChangeGuardianEmail {
        account_id: Uuid,
        email: Personal<String>,
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
        /// Absent from the events recorded before it was kept.
        #[serde(default)]
        email: Option<Personal<String>>,
    },
    GuardianProfileUpdated {
        account_id: Uuid,
        profile: GuardianProfile,
    },
    GuardianInvited {
        email: Personal<String>,
    },
    GuardianEmailChanged {
        account_id: Uuid,
        email: Personal<String>,
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
            FamilyEvent::GuardianProfileUpdated { .. } => "GuardianProfileUpdated",
            FamilyEvent::GuardianInvited { .. } => "GuardianInvited",
            FamilyEvent::GuardianEmailChanged { .. } => "GuardianEmailChanged",
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
    #[error("'{0}' is not a phone number")]
    InvalidPhone(String),
    #[error("the postal address is incomplete or invalid: {0}")]
    InvalidAddress(String),
    #[error("account {0} is not an active guardian of this family")]
    NotAGuardian(Uuid),
    #[error("this e-mail address is already a guardian's, or already invited")]
    AlreadyInvited,
    #[error("a family has at most {MAX_GUARDIANS} guardians")]
    TooManyGuardians,
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
    /// The guardians invited after the account was opened, by e-mail.
    pub invited: Vec<Personal<String>>,
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

    /// Whether an e-mail is already the family's: the one it was opened
    /// for, an invited one, or an active guardian's.
    pub fn knows_email(&self, email: &str) -> bool {
        let email = email.trim().to_lowercase();
        let same = |known: &Personal<String>| known.known().is_some_and(|k| k.to_lowercase() == email);
        self.guardian_email.iter().any(same)
            || self.invited.iter().any(same)
            || self.guardians.iter().filter_map(|g| g.email.as_ref()).any(same)
    }

    pub fn is_guardian(&self, account_id: Uuid) -> bool {
        self.guardians.iter().any(|g| g.account_id == account_id)
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

/// An e-mail as the family keeps it: trimmed, lower-case, bounded and
/// plausible.
fn email(email: &Personal<String>) -> Result<Personal<String>, FamilyError> {
    let email = email.known().map(|e| e.trim().to_lowercase()).unwrap_or_default();
    let email = text::required("an e-mail address", &email, text::EMAIL)
        .map_err(|_| FamilyError::InvalidEmail(email.clone()))?;
    if !is_plausible_email(&email) {
        return Err(FamilyError::InvalidEmail(email));
    }
    Ok(Personal::Known(email))
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
            let guardian_email = email(&guardian_email)?;
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
                profile,
                email,
            } => {
                if self.is_guardian(account_id) {
                    return Err(FamilyError::AlreadyActivated);
                }
                let email = email.as_ref().map(self::email).transpose()?;
                FamilyEvent::AccountActivated {
                    account_id,
                    profile: guardians::checked(profile)?,
                    email,
                }
            }
            FamilyCommand::UpdateGuardianProfile { account_id, profile } => {
                if !self.is_guardian(account_id) {
                    return Err(FamilyError::NotAGuardian(account_id));
                }
                FamilyEvent::GuardianProfileUpdated {
                    account_id,
                    profile: guardians::checked(profile)?,
                }
            }
            FamilyCommand::InviteGuardian { email } => {
                let email = self::email(&email)?;
                if self.knows_email(email.known().map(String::as_str).unwrap_or_default()) {
                    return Err(FamilyError::AlreadyInvited);
                }
                if 1 + self.invited.len() >= MAX_GUARDIANS {
                    return Err(FamilyError::TooManyGuardians);
                }
                FamilyEvent::GuardianInvited { email }
            }
            FamilyCommand::ChangeGuardianEmail { account_id, email } => {
                if !self.is_guardian(account_id) {
                    return Err(FamilyError::NotAGuardian(account_id));
                }
                FamilyEvent::GuardianEmailChanged {
                    account_id,
                    email: self::email(&email)?,
                }
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
            FamilyEvent::AccountActivated {
                account_id,
                profile,
                email,
            } => {
                self.guardians.push(Guardian {
                    account_id,
                    profile,
                    email,
                });
            }
            FamilyEvent::GuardianProfileUpdated { account_id, profile } => {
                if let Some(guardian) = self.guardians.iter_mut().find(|g| g.account_id == account_id) {
                    guardian.profile = profile;
                }
            }
            FamilyEvent::GuardianInvited { email } => self.invited.push(email),
            FamilyEvent::GuardianEmailChanged { account_id, email } => {
                if let Some(guardian) = self.guardians.iter_mut().find(|g| g.account_id == account_id) {
                    guardian.email = Some(email);
                }
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
pub(crate) mod tests;
