//! A family's use cases that commit more than its events: joining a
//! commune with a code, and erasure.

use espace_famille_domain::family::{Family, FamilyCommand};
use espace_famille_projections::personal;
use espace_famille_projections::store::Metadata;
use uuid::Uuid;

use super::write::{Failure, Work, Write};
use crate::commands::Commands;
use crate::error::ApiError;
use crate::i18n::say;

/// Joins a family to a commune with the code its guardian gave (see
/// [`crate::join_codes`]): the code is used and the membership recorded
/// in one transaction, so a refused join leaves the code usable. Returns
/// the family.
pub async fn join(
    commands: &Commands,
    collectivity_id: Uuid,
    code: &str,
    family_ref: &str,
    metadata: &Metadata,
) -> Result<Uuid, ApiError> {
    commands
        .write(Join {
            collectivity_id,
            code,
            family_ref,
            metadata,
        })
        .await
}

struct Join<'a> {
    collectivity_id: Uuid,
    code: &'a str,
    family_ref: &'a str,
    metadata: &'a Metadata,
}

impl Write for Join<'_> {
    type Answer = Uuid;

    async fn attempt(&mut self, work: &mut Work<'_>) -> Result<Uuid, Failure> {
        let family_id =
            crate::join_codes::consume(work.transaction().await?, self.code, self.collectivity_id).await?;
        let command = FamilyCommand::JoinCollectivity {
            collectivity_id: self.collectivity_id,
            family_ref: self.family_ref.to_string(),
        };
        work.execute::<Family>(family_id, command, &(), self.metadata)
            .await?;
        Ok(family_id)
    }

    fn contended(&self) -> String {
        say("api.contended_family", &[])
    }
}

/// Erases a family (GDPR): records `FamilyErased`, destroys the family's
/// key and forgets its guardians' accounts and messages and its files, in
/// one transaction (the files' contents in the folder right after). Returns the guardians' accounts, whose sessions ended.
pub async fn erase(
    commands: &Commands,
    files: &crate::files::Files,
    family_id: Uuid,
    metadata: &Metadata,
) -> Result<Vec<Uuid>, ApiError> {
    let guardians = commands.write(Erase { family_id, metadata }).await?;
    commands.forget_family(family_id);
    // Its files' rows went with its key; their contents follow.
    files.remove_family(family_id);
    Ok(guardians)
}

struct Erase<'a> {
    family_id: Uuid,
    metadata: &'a Metadata,
}

impl Write for Erase<'_> {
    type Answer = Vec<Uuid>;

    async fn attempt(&mut self, work: &mut Work<'_>) -> Result<Vec<Uuid>, Failure> {
        work.execute::<Family>(self.family_id, FamilyCommand::Erase, &(), self.metadata)
            .await?;
        let conn = work.transaction().await?;
        personal::erase_family_key(conn, self.family_id).await?;
        crate::files::forget_family(conn, self.family_id).await?;
        Ok(crate::auth::accounts::forget_family(conn, self.family_id).await?)
    }

    fn contended(&self) -> String {
        say("api.contended_family", &[])
    }
}
