//! A family's GraphQL types: the family as one reader may see it, its
//! children, memberships, enrolments and quotients; the inputs that change
//! them; the code that lets a commune join it.

use async_graphql::{InputObject, SimpleObject};
use chrono::NaiveDate;
use espace_famille_domain::calendar::SchoolYear;
use espace_famille_domain::family::{self as family, Enrolment};
use uuid::Uuid;

#[derive(InputObject)]
pub struct OpenFamilyAccountInput {
    pub collectivity_id: Uuid,
    pub id: Option<Uuid>,
    /// The commune's own reference for the family.
    pub family_ref: String,
    pub guardian_email: String,
}

#[derive(InputObject)]
pub struct RegisterChildInput {
    pub family_id: Uuid,
    pub id: Option<Uuid>,
    pub first_name: String,
    pub last_name: String,
    pub birth_date: NaiveDate,
    pub school_class: Option<String>,
}

/// What the family declares of a child's health, for the staff who serve
/// the meals and take the roll call; sent again, it replaces it.
#[derive(InputObject)]
pub struct DeclareChildHealthInput {
    pub family_id: Uuid,
    pub child_id: Uuid,
    /// In the family's words ("arachide, kiwi"); null when none.
    pub allergies: Option<String>,
    /// Whether a PAI (projet d'accueil individualisé) is in place.
    pub pai: bool,
}

#[derive(InputObject)]
pub struct EnrolChildInput {
    pub family_id: Uuid,
    pub child_id: Uuid,
    pub collectivity_id: Uuid,
    pub service_id: Uuid,
    /// The calendar year the school year starts in: 2026 for 2026-2027.
    pub school_year: i32,
}

#[derive(InputObject)]
pub struct JoinFamilyInput {
    pub collectivity_id: Uuid,
    /// The code the family's guardian created (`createFamilyJoinCode`)
    /// and gave the commune.
    pub code: String,
    /// This commune's reference for the family.
    pub family_ref: String,
}

#[derive(InputObject)]
pub struct SetQuotientFamilialInput {
    pub family_id: Uuid,
    pub collectivity_id: Uuid,
    /// In euros.
    pub quotient: i32,
    pub valid_from: NaiveDate,
    /// Inclusive; open-ended when absent.
    pub valid_until: Option<NaiveDate>,
}

/// Personal values read as null once the family was erased.
#[derive(SimpleObject)]
pub struct ChildView {
    pub id: Uuid,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub birth_date: Option<NaiveDate>,
    pub school_class: Option<String>,
    /// Declared allergies, if any.
    pub allergies: Option<String>,
    /// Whether a PAI is declared.
    pub pai: bool,
}

#[derive(SimpleObject)]
pub struct QuotientFamilialView {
    pub collectivity_id: Uuid,
    pub quotient: i32,
    pub valid_from: NaiveDate,
    pub valid_until: Option<NaiveDate>,
}

#[derive(SimpleObject)]
pub struct MembershipView {
    pub collectivity_id: Uuid,
    pub family_ref: String,
}

#[derive(SimpleObject)]
pub struct EnrolmentView {
    pub child_id: Uuid,
    pub collectivity_id: Uuid,
    pub service_id: Uuid,
    pub school_year: i32,
    /// "2026-2027".
    pub school_year_label: String,
}

/// A family as one reader may see it: its guardians see all of it; an
/// agent or auditor of a commune sees that commune's memberships,
/// enrolments and quotients only.
#[derive(SimpleObject)]
#[graphql(name = "Family")]
pub struct FamilyView {
    pub id: Uuid,
    /// Null once the family was erased.
    pub guardian_email: Option<String>,
    pub erased: bool,
    pub guardians: Vec<super::profile::GuardianView>,
    pub memberships: Vec<MembershipView>,
    pub children: Vec<ChildView>,
    pub enrolments: Vec<EnrolmentView>,
    pub quotients_familiaux: Vec<QuotientFamilialView>,
    /// The communes (among those the reader sees) the family lives in.
    pub residences: Vec<Uuid>,
    /// The communes (among those the reader sees) whose agents recorded
    /// that both parents work.
    pub working_parents: Vec<Uuid>,
}

impl FamilyView {
    /// `communes`: the communes whose part the reader sees; `None` for all.
    pub fn new(f: &family::Family, communes: Option<&[Uuid]>) -> Self {
        let visible = |c: &Uuid| communes.is_none_or(|only| only.contains(c));
        FamilyView {
            id: f.id.unwrap_or_default(),
            guardian_email: f.guardian_email.as_ref().and_then(|e| e.known().cloned()),
            erased: f.erased,
            guardians: f
                .guardians
                .iter()
                .map(super::profile::GuardianView::from)
                .collect(),
            memberships: f
                .memberships
                .iter()
                .filter(|(c, _)| visible(c))
                .map(|(collectivity_id, family_ref)| MembershipView {
                    collectivity_id: *collectivity_id,
                    family_ref: family_ref.clone(),
                })
                .collect(),
            children: f
                .children
                .values()
                .map(|c| {
                    let health = f.health.get(&c.id).and_then(|h| h.known());
                    ChildView {
                        id: c.id,
                        first_name: c.first_name.known().cloned(),
                        last_name: c.last_name.known().cloned(),
                        birth_date: c.birth_date.known().copied(),
                        school_class: c.school_class.known().cloned().flatten(),
                        allergies: health.and_then(|h| h.allergies.clone()),
                        pai: health.is_some_and(|h| h.pai),
                    }
                })
                .collect(),
            enrolments: f
                .enrolments
                .iter()
                .filter(|e| visible(&e.collectivity_id))
                .map(EnrolmentView::from)
                .collect(),
            residences: f.residences.iter().copied().filter(|c| visible(c)).collect(),
            working_parents: f.working_parents.iter().copied().filter(|c| visible(c)).collect(),
            quotients_familiaux: f
                .quotients
                .iter()
                .filter(|q| visible(&q.collectivity_id))
                .map(|q| QuotientFamilialView {
                    collectivity_id: q.collectivity_id,
                    quotient: q.quotient as i32,
                    valid_from: q.valid_from,
                    valid_until: q.valid_until,
                })
                .collect(),
        }
    }
}

impl From<&Enrolment> for EnrolmentView {
    fn from(e: &Enrolment) -> Self {
        EnrolmentView {
            child_id: e.child_id,
            collectivity_id: e.collectivity_id,
            service_id: e.service_id,
            school_year: e.school_year.0,
            school_year_label: e.school_year.to_string(),
        }
    }
}

impl EnrolChildInput {
    pub fn enrolment(&self) -> Enrolment {
        Enrolment {
            child_id: self.child_id,
            collectivity_id: self.collectivity_id,
            service_id: self.service_id,
            school_year: SchoolYear(self.school_year),
        }
    }
}

/// A code by which a guardian lets a commune join the family: given to the
/// commune's agent, used once, within a week.
#[derive(SimpleObject)]
pub struct FamilyJoinCode {
    pub family_id: Uuid,
    pub code: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}
