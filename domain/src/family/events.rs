//! What happened to a family.

#[allow(unused_imports)]
use super::*;

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
    ChildHealthDeclared {
        child_id: Uuid,
        health: Personal<ChildHealth>,
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
    ResidenceSet {
        collectivity_id: Uuid,
        resident: bool,
    },
    WorkingParentsSet {
        collectivity_id: Uuid,
        both_working: bool,
    },
    /// The family's personal data was erased; its events remain.
    FamilyErased,
}

impl DomainEvent for FamilyEvent {
    fn event_type(&self) -> String {
        match self {
            FamilyEvent::FamilyAccountOpened { .. } => "FamilyAccountOpened",
            FamilyEvent::ChildRegistered { .. } => "ChildRegistered",
            FamilyEvent::ChildHealthDeclared { .. } => "ChildHealthDeclared",
            FamilyEvent::ChildEnrolled { .. } => "ChildEnrolled",
            FamilyEvent::AccountActivated { .. } => "AccountActivated",
            FamilyEvent::GuardianProfileUpdated { .. } => "GuardianProfileUpdated",
            FamilyEvent::GuardianInvited { .. } => "GuardianInvited",
            FamilyEvent::GuardianEmailChanged { .. } => "GuardianEmailChanged",
            FamilyEvent::JoinedCollectivity { .. } => "JoinedCollectivity",
            FamilyEvent::QuotientFamilialSet { .. } => "QuotientFamilialSet",
            FamilyEvent::ResidenceSet { .. } => "ResidenceSet",
            FamilyEvent::WorkingParentsSet { .. } => "WorkingParentsSet",
            FamilyEvent::FamilyErased => "FamilyErased",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}
