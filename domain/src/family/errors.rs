//! Why a family's command is refused.

#[allow(unused_imports)]
use super::*;

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
