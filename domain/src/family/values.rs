//! A family's children, their enrolments and quotients.

#[allow(unused_imports)]
use super::*;

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

/// What the family declared of a child's health for the people who serve
/// the meals and look after the children: allergies in its words, and
/// whether a PAI (projet d'accueil individualisé) is in place. Health data:
/// personal, erased with the family.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildHealth {
    pub allergies: Option<String>,
    pub pai: bool,
}

impl ChildHealth {
    /// Whoever takes the roll call should know: an allergy or a PAI.
    pub fn needs_care(&self) -> bool {
        self.pai || self.allergies.is_some()
    }
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
