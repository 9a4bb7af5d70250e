//! What guardians and agents ask of a family.

#[allow(unused_imports)]
use super::*;

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
    /// A guardian (or an agent) declares a child's allergies and PAI; sent
    /// again, it replaces what was declared.
    DeclareChildHealth {
        child_id: Uuid,
        health: Personal<ChildHealth>,
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
    /// An agent records whether the family lives in the agent's commune
    /// (residents may be let in to book earlier).
    SetResidence {
        collectivity_id: Uuid,
        resident: bool,
    },
    /// An agent records whether both parents (or the single parent) work,
    /// one of the priorities a commune may allocate places by.
    SetWorkingParents {
        collectivity_id: Uuid,
        both_working: bool,
    },
    /// Forget the family's personal data (GDPR): the store erases its key.
    Erase,
}
