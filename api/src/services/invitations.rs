//! A process manager: when an agent opens a family account, or a guardian
//! is invited to one, that guardian's account is created with a parent
//! grant and an activation e-mail queued — exactly once per
//! `FamilyAccountOpened` or `GuardianInvited`, in the projection's
//! transaction. If the e-mail already has an account (a guardian of two
//! families, say), the grant is added and the message says so instead.

use async_trait::async_trait;
use chrono::Duration;
use cqrs_es::Aggregate;
use espace_famille_domain::family::{Family, FamilyEvent};
use espace_famille_domain::personal::Personal;
use espace_famille_projections::engine::Projection;
use espace_famille_projections::store::{RecordedEvent, StoreError};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::auth::accounts::{self, Grant, TokenPurpose};
use crate::error::ApiError;
use crate::mail::{self, MailSettings};

pub const INVITATIONS: &str = "invitations";

pub struct Invitations {
    pub mail: MailSettings,
    /// How long an activation link stays valid.
    pub activation_valid_for: Duration,
}

fn store_error(error: ApiError) -> StoreError {
    match error {
        ApiError::Internal(detail) => StoreError::Corrupt(detail),
        other => StoreError::Corrupt(other.message()),
    }
}

#[async_trait]
impl Projection for Invitations {
    fn name(&self) -> &'static str {
        INVITATIONS
    }

    /// A process manager owns no read model: it is never rebuilt (that
    /// would send every message again).
    fn tables(&self) -> &'static [&'static str] {
        &[]
    }

    /// Only a family's events can open an account.
    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        Some(&[Family::TYPE])
    }

    /// An invitation needs no metadata.
    fn metadata_of(&self) -> Option<&'static [&'static str]> {
        Some(&[])
    }

    async fn apply(&self, conn: &mut PgConnection, event: &RecordedEvent) -> Result<(), StoreError> {
        if event.aggregate_type != Family::TYPE {
            return Ok(());
        }
        let (email, invited) = match event.decode::<Family>()? {
            FamilyEvent::FamilyAccountOpened { guardian_email, .. } => (guardian_email, false),
            FamilyEvent::GuardianInvited { email } => (email, true),
            _ => return Ok(()),
        };
        // Erased before we got here: there is nobody to write to.
        let Personal::Known(email) = email else {
            return Ok(());
        };
        let family_id = event
            .aggregate_id
            .parse::<Uuid>()
            .map_err(|e| StoreError::Corrupt(format!("family id {}: {e}", event.aggregate_id)))?;
        self.invite(conn, family_id, &email, invited)
            .await
            .map_err(store_error)
    }
}

impl Invitations {
    async fn invite(
        &self,
        conn: &mut PgConnection,
        family_id: Uuid,
        email: &str,
        invited: bool,
    ) -> Result<(), ApiError> {
        let account = accounts::ensure_account(conn, email, &[Grant::Parent(family_id)]).await?;
        let (subject, body) = if account.active {
            mail::access_added(&self.mail)
        } else {
            let token = accounts::issue_token(
                conn,
                account.id,
                TokenPurpose::Activation,
                self.activation_valid_for,
            )
            .await?;
            if invited {
                mail::guardian_invitation(&self.mail, &token)
            } else {
                mail::activation(&self.mail, &token)
            }
        };
        mail::enqueue(conn, Some(family_id), &account.email, &subject, &body).await
    }
}
