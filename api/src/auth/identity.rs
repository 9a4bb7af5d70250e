//! Who is calling, and what their grants let them do.
//!
//! A request carries `Authorization: Bearer <session token>`; the session
//! names an account and its grants. Every resolver asks [`Caller`] for the
//! grant it needs and gets back the [`Actor`] its events will name.

use std::sync::Arc;

use uuid::Uuid;

use crate::auth::accounts::{Account, Grant};
use crate::error::ApiError;

/// The account behind the request and its grants.
#[derive(Debug, Clone)]
pub struct Identity {
    pub account_id: Uuid,
    pub email: String,
    pub grants: Vec<Grant>,
}

impl From<Account> for Identity {
    fn from(account: Account) -> Self {
        Identity {
            account_id: account.id,
            email: account.email,
            grants: account.grants,
        }
    }
}

/// Who acted, as the events record it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actor {
    pub account_id: Uuid,
    /// The grant used: admin, agent, parent, auditor; `system` for the
    /// server's own processes.
    pub role: &'static str,
}

/// What the request knows about its caller.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    pub identity: Option<Arc<Identity>>,
    /// The client's address, for rate limiting logins.
    pub client_address: String,
    /// The bearer token, for `logout`.
    pub bearer: Option<String>,
}

impl Caller {
    pub fn identity(&self) -> Result<&Identity, ApiError> {
        self.identity.as_deref().ok_or(ApiError::Unauthenticated)
    }

    fn actor(&self, role: &'static str) -> Result<Actor, ApiError> {
        Ok(Actor {
            account_id: self.identity()?.account_id,
            role,
        })
    }

    fn has(&self, wanted: impl Fn(&Grant) -> bool) -> Result<bool, ApiError> {
        Ok(self.identity()?.grants.iter().any(wanted))
    }

    /// The platform administrator: creates communes and their first agents.
    pub fn require_admin(&self) -> Result<Actor, ApiError> {
        if self.has(|g| *g == Grant::Admin)? {
            return self.actor("admin");
        }
        Err(ApiError::Forbidden)
    }

    /// An agent of this commune.
    pub fn require_agent_of(&self, collectivity_id: Uuid) -> Result<Actor, ApiError> {
        if self.has(|g| *g == Grant::Agent(collectivity_id))? {
            return self.actor("agent");
        }
        Err(ApiError::Forbidden)
    }

    /// An agent of this commune, or the administrator.
    pub fn require_agent_or_admin(&self, collectivity_id: Uuid) -> Result<Actor, ApiError> {
        self.require_agent_of(collectivity_id)
            .or_else(|_| self.require_admin())
    }

    /// A guardian of this family.
    pub fn require_parent_of(&self, family_id: Uuid) -> Result<Actor, ApiError> {
        if self.has(|g| *g == Grant::Parent(family_id))? {
            return self.actor("parent");
        }
        Err(ApiError::Forbidden)
    }

    /// The family's guardian, or an agent of one of its communes.
    pub fn require_guardian_or_agent(
        &self,
        family_id: Uuid,
        collectivities: &[Uuid],
    ) -> Result<Actor, ApiError> {
        self.require_parent_of(family_id)
            .or_else(|_| self.require_agent_of_any(collectivities))
    }

    /// An agent of one of these communes.
    pub fn require_agent_of_any(&self, collectivities: &[Uuid]) -> Result<Actor, ApiError> {
        if self.has(|g| matches!(g, Grant::Agent(c) if collectivities.contains(c)))? {
            return self.actor("agent");
        }
        Err(ApiError::Forbidden)
    }

    /// May read what concerns this family in one of these communes: its
    /// guardian, an agent or an auditor of one of the communes, an auditor
    /// of everything.
    pub fn require_reader_of(&self, family_id: Uuid, collectivities: &[Uuid]) -> Result<Actor, ApiError> {
        self.require_guardian_or_agent(family_id, collectivities)
            .or_else(|_| self.require_auditor_of_any(collectivities))
    }

    /// An agent or auditor of this commune, or an auditor of everything.
    pub fn require_staff_reader_of(&self, collectivity_id: Uuid) -> Result<Actor, ApiError> {
        self.require_agent_of(collectivity_id)
            .or_else(|_| self.require_auditor_of_any(&[collectivity_id]))
    }

    pub fn require_auditor_of_any(&self, collectivities: &[Uuid]) -> Result<Actor, ApiError> {
        if self.has(|g| match g {
            Grant::Auditor(None) => true,
            Grant::Auditor(Some(c)) => collectivities.contains(c),
            _ => false,
        })? {
            return self.actor("auditor");
        }
        Err(ApiError::Forbidden)
    }

    /// Among the communes a family belongs to, those whose part of it this
    /// caller may see.
    pub fn visible_of(&self, family_id: Uuid, memberships: impl IntoIterator<Item = Uuid>) -> Vec<Uuid> {
        let visible = self.visible_communes(family_id);
        memberships
            .into_iter()
            .filter(|c| visible.as_ref().is_none_or(|v| v.contains(c)))
            .collect()
    }

    /// The communes whose part of a family this caller may see; `None` for
    /// all of them (the family's guardians, auditors of everything).
    pub fn visible_communes(&self, family_id: Uuid) -> Option<Vec<Uuid>> {
        let grants = self
            .identity
            .as_ref()
            .map(|i| i.grants.as_slice())
            .unwrap_or_default();
        if grants
            .iter()
            .any(|g| *g == Grant::Parent(family_id) || *g == Grant::Auditor(None))
        {
            return None;
        }
        Some(
            grants
                .iter()
                .filter_map(|g| match g {
                    Grant::Agent(c) | Grant::Auditor(Some(c)) => Some(*c),
                    _ => None,
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caller(grants: Vec<Grant>) -> Caller {
        Caller {
            identity: Some(Arc::new(Identity {
                account_id: Uuid::from_u128(1),
                email: "x@y.fr".into(),
                grants,
            })),
            ..Caller::default()
        }
    }

    #[test]
    fn an_agent_acts_only_in_its_own_commune() {
        let own = Uuid::from_u128(10);
        let agent = caller(vec![Grant::Agent(own)]);
        assert_eq!(agent.require_agent_of(own).unwrap().role, "agent");
        assert!(matches!(
            agent.require_agent_of(Uuid::from_u128(11)),
            Err(ApiError::Forbidden)
        ));
        assert!(matches!(
            Caller::default().require_agent_of(own),
            Err(ApiError::Unauthenticated)
        ));
    }

    #[test]
    fn an_auditor_reads_but_never_acts() {
        let commune = Uuid::from_u128(10);
        let auditor = caller(vec![Grant::Auditor(None)]);
        assert_eq!(
            auditor
                .require_reader_of(Uuid::from_u128(5), &[commune])
                .unwrap()
                .role,
            "auditor"
        );
        assert!(matches!(
            auditor.require_agent_of(commune),
            Err(ApiError::Forbidden)
        ));
        assert!(matches!(
            auditor.require_parent_of(Uuid::from_u128(5)),
            Err(ApiError::Forbidden)
        ));
    }

    #[test]
    fn an_agent_sees_only_its_communes_part_of_a_family() {
        let family = Uuid::from_u128(5);
        let agent = caller(vec![Grant::Agent(Uuid::from_u128(10))]);
        assert_eq!(agent.visible_communes(family), Some(vec![Uuid::from_u128(10)]));
        let parent = caller(vec![Grant::Parent(family)]);
        assert_eq!(parent.visible_communes(family), None);
    }
}
