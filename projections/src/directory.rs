//! The directory read model: the commune of every unit and the family of
//! every child, so a query naming only a unit or a child can be authorised
//! and routed to the right aggregates.

use async_trait::async_trait;
use espace_famille_domain::collectivity::{Collectivity, CollectivityEvent};
use espace_famille_domain::family::{Family, FamilyEvent};
use sqlx::PgConnection;

use crate::engine::Projection;
use crate::store::{RecordedEvent, StoreError};

pub struct DirectoryProjection;

pub const DIRECTORY: &str = "directory";

#[async_trait]
impl Projection for DirectoryProjection {
    fn name(&self) -> &'static str {
        DIRECTORY
    }

    fn tables(&self) -> &'static [&'static str] {
        &["directory_units", "directory_children"]
    }

    async fn apply(&self, conn: &mut PgConnection, event: &RecordedEvent) -> Result<(), StoreError> {
        match event.aggregate_type.as_str() {
            "Collectivity" => {
                if let CollectivityEvent::UnitAdded { unit } = event.decode::<Collectivity>()? {
                    let collectivity_id = crate::calendar::parse_id(event)?;
                    sqlx::query(
                        "INSERT INTO directory_units (unit_id, collectivity_id, service_id, name)
                         VALUES ($1, $2, $3, $4) ON CONFLICT (unit_id) DO NOTHING",
                    )
                    .bind(unit.id)
                    .bind(collectivity_id)
                    .bind(unit.service_id)
                    .bind(&unit.name)
                    .execute(&mut *conn)
                    .await?;
                }
            }
            "Family" => {
                if let FamilyEvent::ChildRegistered { child } = event.decode::<Family>()? {
                    let family_id = crate::calendar::parse_id(event)?;
                    sqlx::query(
                        "INSERT INTO directory_children (child_id, family_id) VALUES ($1, $2)
                         ON CONFLICT (child_id) DO NOTHING",
                    )
                    .bind(child.id)
                    .bind(family_id)
                    .execute(&mut *conn)
                    .await?;
                }
            }
            _ => {}
        }
        Ok(())
    }
}
