//! The family as its events built it, and the checks on what it is given.

#[allow(unused_imports)]
use super::*;

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
    /// What was last declared of each child's health.
    #[serde(default)]
    pub health: BTreeMap<Uuid, Personal<ChildHealth>>,
    /// The communes the family lives in, as their agents recorded it.
    #[serde(default)]
    pub residences: BTreeSet<Uuid>,
    /// The communes whose agents recorded that both parents work.
    #[serde(default)]
    pub working_parents: BTreeSet<Uuid>,
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

    /// A child's rank among its brothers and sisters enrolled in the same
    /// service of the commune for the school year, from 1, eldest first
    /// (by birth date; a birth date erased or unknown comes after, by id):
    /// what a tariff's sibling reductions count. A child not enrolled
    /// counts as the first.
    pub fn rank_of(&self, child_id: Uuid, collectivity_id: Uuid, service_id: Uuid, year: SchoolYear) -> u32 {
        if !self.is_enrolled(child_id, collectivity_id, service_id, year) {
            return 1;
        }
        let mut siblings: Vec<(Option<NaiveDate>, Uuid)> = self
            .children
            .iter()
            .filter(|(id, _)| self.is_enrolled(**id, collectivity_id, service_id, year))
            .map(|(id, child)| (child.birth_date.known().copied(), *id))
            .collect();
        // Known birth dates first, the eldest first; then by id.
        siblings.sort_by_key(|(born, id)| (born.is_none(), *born, *id));
        siblings
            .iter()
            .position(|(_, id)| *id == child_id)
            .map_or(1, |i| i as u32 + 1)
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
pub(super) fn personal_text(
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
pub(super) fn personal_optional(
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
pub(super) fn family_ref(value: &str) -> Result<String, FamilyError> {
    text::required("a family reference", value, text::REFERENCE).map_err(|error| match error {
        TextError::Empty { .. } => FamilyError::EmptyFamilyRef,
        other => other.into(),
    })
}

/// An e-mail as the family keeps it: trimmed, lower-case, bounded and
/// plausible.
pub(super) fn email(email: &Personal<String>) -> Result<Personal<String>, FamilyError> {
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
