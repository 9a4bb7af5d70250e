//! The directory read model: the commune of every unit and the family of
//! every child, so a query naming only a unit or a child can be authorised
//! and routed to the right aggregates.

use async_trait::async_trait;
use espace_famille_domain::collectivity::{Collectivity, CollectivityEvent};
use espace_famille_domain::family::{Family, FamilyEvent};
use sqlx::PgConnection;

use crate::calendar::parse_id;
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

    /// Units come from communes, children from families.
    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        Some(&["Collectivity", "Family"])
    }

    /// The directory reads no metadata.
    fn metadata_of(&self) -> Option<&'static [&'static str]> {
        Some(&[])
    }

    async fn apply(&self, conn: &mut PgConnection, event: &RecordedEvent) -> Result<(), StoreError> {
        self.apply_batch(conn, std::slice::from_ref(event)).await
    }

    /// At most two statements per batch, one per table. Entries never
    /// change once written: a unit keeps its commune, a child its family.
    async fn apply_batch(&self, conn: &mut PgConnection, events: &[RecordedEvent]) -> Result<(), StoreError> {
        let (mut units, mut unit_communes, mut unit_services, mut unit_names) =
            (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        let (mut children, mut child_families) = (Vec::new(), Vec::new());
        for event in events {
            match (event.aggregate_type.as_str(), event.event_type.as_str()) {
                ("Collectivity", "UnitAdded") => {
                    if let CollectivityEvent::UnitAdded { unit } = event.decode::<Collectivity>()? {
                        units.push(unit.id);
                        unit_communes.push(parse_id(event)?);
                        unit_services.push(unit.service_id);
                        unit_names.push(unit.name);
                    }
                }
                ("Family", "ChildRegistered") => {
                    if let FamilyEvent::ChildRegistered { child } = event.decode::<Family>()? {
                        children.push(child.id);
                        child_families.push(parse_id(event)?);
                    }
                }
                _ => {}
            }
        }
        if !units.is_empty() {
            sqlx::query(
                "INSERT INTO directory_units (unit_id, collectivity_id, service_id, name)
                 SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::text[])
                 ON CONFLICT (unit_id) DO NOTHING",
            )
            .bind(&units)
            .bind(&unit_communes)
            .bind(&unit_services)
            .bind(&unit_names)
            .execute(&mut *conn)
            .await?;
        }
        if !children.is_empty() {
            sqlx::query(
                "INSERT INTO directory_children (child_id, family_id)
                 SELECT * FROM UNNEST($1::uuid[], $2::uuid[])
                 ON CONFLICT (child_id) DO NOTHING",
            )
            .bind(&children)
            .bind(&child_families)
            .execute(&mut *conn)
            .await?;
        }
        Ok(())
    }
}
