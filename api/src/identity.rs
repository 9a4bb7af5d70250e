//! Who is calling, and what their grant lets them do.
//!
//! **Not secure.** Until accounts and sessions exist, the caller names
//! itself in the `X-Dev-Identity` header: anyone who can reach the server can
//! act as anyone. Never expose a server built this way to a network.

use axum::http::HeaderMap;
use uuid::Uuid;

use crate::error::ApiError;

/// The development identity header.
pub const DEV_IDENTITY_HEADER: &str = "x-dev-identity";

/// A caller and its grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    /// Sets up communes (`admin`).
    Admin,
    /// An agent of one commune (`agent:<collectivity id>`).
    Agent { collectivity_id: Uuid },
    /// A guardian of one family (`parent:<family id>`).
    Parent { family_id: Uuid },
    /// Reads everything, changes nothing (`auditor`).
    Auditor,
}

impl Identity {
    /// Parses the header's value; `None` when there is no header.
    pub fn from_headers(headers: &HeaderMap) -> Result<Option<Identity>, ApiError> {
        let Some(value) = headers.get(DEV_IDENTITY_HEADER) else {
            return Ok(None);
        };
        let value = value
            .to_str()
            .map_err(|_| ApiError::Validation(format!("{DEV_IDENTITY_HEADER} is not text")))?;
        value.parse().map(Some)
    }

    /// Stored as the events' `actor_id`.
    pub fn actor_id(&self) -> String {
        match self {
            Identity::Admin => "admin".to_string(),
            Identity::Agent { collectivity_id } => format!("agent:{collectivity_id}"),
            Identity::Parent { family_id } => format!("parent:{family_id}"),
            Identity::Auditor => "auditor".to_string(),
        }
    }

    /// Stored as the events' `actor_role`.
    pub fn role(&self) -> &'static str {
        match self {
            Identity::Admin => "admin",
            Identity::Agent { .. } => "agent",
            Identity::Parent { .. } => "parent",
            Identity::Auditor => "auditor",
        }
    }
}

impl std::str::FromStr for Identity {
    type Err = ApiError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        let invalid = || {
            ApiError::Validation(format!(
                "{DEV_IDENTITY_HEADER} must be admin, auditor, agent:<collectivity id> or parent:<family id>"
            ))
        };
        match value.trim().split_once(':') {
            None if value.trim() == "admin" => Ok(Identity::Admin),
            None if value.trim() == "auditor" => Ok(Identity::Auditor),
            Some(("agent", id)) => Ok(Identity::Agent {
                collectivity_id: id.trim().parse().map_err(|_| invalid())?,
            }),
            Some(("parent", id)) => Ok(Identity::Parent {
                family_id: id.trim().parse().map_err(|_| invalid())?,
            }),
            _ => Err(invalid()),
        }
    }
}

/// The caller as the GraphQL context carries it.
#[derive(Debug, Clone, Copy)]
pub struct Caller(pub Option<Identity>);

impl Caller {
    pub fn identity(&self) -> Result<Identity, ApiError> {
        self.0.ok_or(ApiError::Unauthenticated)
    }

    /// Admin only: setting up communes.
    pub fn require_admin(&self) -> Result<Identity, ApiError> {
        match self.identity()? {
            identity @ Identity::Admin => Ok(identity),
            _ => Err(ApiError::Forbidden),
        }
    }

    /// An agent of this commune (or the admin).
    pub fn require_agent_of(&self, collectivity_id: Uuid) -> Result<Identity, ApiError> {
        match self.identity()? {
            identity @ Identity::Admin => Ok(identity),
            identity @ Identity::Agent { collectivity_id: own } if own == collectivity_id => Ok(identity),
            _ => Err(ApiError::Forbidden),
        }
    }

    /// A guardian of this family.
    pub fn require_parent_of(&self, family_id: Uuid) -> Result<Identity, ApiError> {
        match self.identity()? {
            identity @ Identity::Parent { family_id: own } if own == family_id => Ok(identity),
            _ => Err(ApiError::Forbidden),
        }
    }

    /// The family's guardian, or an agent of one of its communes.
    pub fn require_guardian_or_agent(
        &self,
        family_id: Uuid,
        collectivities: &[Uuid],
    ) -> Result<Identity, ApiError> {
        match self.identity()? {
            identity @ Identity::Admin => Ok(identity),
            identity @ Identity::Parent { family_id: own } if own == family_id => Ok(identity),
            identity @ Identity::Agent { collectivity_id } if collectivities.contains(&collectivity_id) => {
                Ok(identity)
            }
            _ => Err(ApiError::Forbidden),
        }
    }

    /// May read what concerns this family in one of these communes: the
    /// family's guardian, an agent of one of the communes, the auditor.
    pub fn require_reader_of(&self, family_id: Uuid, collectivities: &[Uuid]) -> Result<Identity, ApiError> {
        match self.identity()? {
            identity @ (Identity::Admin | Identity::Auditor) => Ok(identity),
            identity @ Identity::Parent { family_id: own } if own == family_id => Ok(identity),
            identity @ Identity::Agent { collectivity_id } if collectivities.contains(&collectivity_id) => {
                Ok(identity)
            }
            _ => Err(ApiError::Forbidden),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_reads_every_kind_of_development_identity() {
        let id = Uuid::from_u128(42);
        assert_eq!("admin".parse::<Identity>().unwrap(), Identity::Admin);
        assert_eq!("auditor".parse::<Identity>().unwrap(), Identity::Auditor);
        assert_eq!(
            format!("agent:{id}").parse::<Identity>().unwrap(),
            Identity::Agent { collectivity_id: id }
        );
        assert_eq!(
            format!("parent:{id}").parse::<Identity>().unwrap(),
            Identity::Parent { family_id: id }
        );
    }

    #[test]
    fn it_refuses_a_malformed_identity() {
        assert!(matches!(
            "agent:nope".parse::<Identity>(),
            Err(ApiError::Validation(_))
        ));
        assert!(matches!(
            "mayor".parse::<Identity>(),
            Err(ApiError::Validation(_))
        ));
    }

    #[test]
    fn an_agent_acts_only_in_its_own_commune() {
        let own = Uuid::from_u128(1);
        let caller = Caller(Some(Identity::Agent { collectivity_id: own }));
        assert!(caller.require_agent_of(own).is_ok());
        assert!(matches!(
            caller.require_agent_of(Uuid::from_u128(2)),
            Err(ApiError::Forbidden)
        ));
        assert!(matches!(
            Caller(None).require_agent_of(own),
            Err(ApiError::Unauthenticated)
        ));
    }
}
