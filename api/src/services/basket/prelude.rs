//! A basket's prelude: what its lines are checked against, read in one
//! round trip (see [`Prelude`]).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, LazyLock};

use cqrs_es::Aggregate;
use espace_famille_domain::family::Family;
use espace_famille_domain::reservation::Reservation;
use espace_famille_projections::store::{self, Loaded, StoredEvent};
use sqlx::postgres::PgRow;
use sqlx::Row;
use uuid::Uuid;

use super::{Basket, BasketOutcome};
use crate::commands::Commands;
use crate::error::ApiError;

/// What a basket is checked against, read in one round trip: the outcome
/// stored under its id if it was already submitted; the family's events
/// after the state kept in memory, with its key; each unit's commune with
/// that commune's stream version; and the events of every reservation the
/// lines touch. One statement reads them all in one snapshot.
pub(super) struct Prelude {
    pub(super) stored: Option<BasketOutcome>,
    /// The family's state kept in memory when the prelude was read, the
    /// events that followed it and its key.
    pub(super) family: (usize, Option<Arc<Family>>),
    pub(super) family_events: Vec<StoredEvent>,
    pub(super) family_key: Option<Vec<u8>>,
    /// Unit, its commune, the commune's version.
    pub(super) units: Vec<(Uuid, Uuid, usize)>,
    /// The reservations, by id.
    pub(super) reservations: HashMap<Uuid, Loaded<Reservation>>,
}

/// The prelude's statement; binds the basket id, the family id, the units,
/// the family version kept in memory and the reservation ids.
static PRELUDE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH units AS (
           SELECT u.unit_id, u.collectivity_id, {} AS version
           FROM directory_units u WHERE u.unit_id = ANY($3)),
         family AS ({}),
         reservations AS ({})
         SELECT (SELECT outcome FROM baskets WHERE basket_id = $1) AS outcome,
                (SELECT array_agg(sequence ORDER BY sequence) FROM family) AS family_sequences,
                (SELECT array_agg(event_version ORDER BY sequence) FROM family) AS family_versions,
                (SELECT array_agg(payload ORDER BY sequence) FROM family) AS family_payloads,
                CASE WHEN EXISTS (SELECT FROM family) THEN {} END AS family_key,
                (SELECT array_agg(unit_id ORDER BY unit_id) FROM units) AS unit_ids,
                (SELECT array_agg(collectivity_id ORDER BY unit_id) FROM units) AS communes,
                (SELECT array_agg(coalesce(version, 0) ORDER BY unit_id) FROM units) AS versions,
                (SELECT array_agg(aggregate_id ORDER BY aggregate_id, sequence) FROM reservations)
                  AS reservation_ids,
                (SELECT array_agg(sequence ORDER BY aggregate_id, sequence) FROM reservations)
                  AS reservation_sequences,
                (SELECT array_agg(event_version ORDER BY aggregate_id, sequence) FROM reservations)
                  AS reservation_versions,
                (SELECT array_agg(payload ORDER BY aggregate_id, sequence) FROM reservations)
                  AS reservation_payloads",
        store::sql::version("'Collectivity'", "u.collectivity_id::text"),
        store::sql::events_after("'Family'", "$2::text", "$4"),
        store::streams_sql(&format!("'{}'", Reservation::TYPE), "$5"),
        store::sql::family_key("$2"),
    )
});

/// What [`Prelude::presuming_new`] reads: the family's events after the
/// state kept in memory (`unit_id` NULL; the key beside them) and each
/// unit's commune with that commune's version. Binds the family id, the
/// units and the family version kept in memory. One flat statement: the
/// prelude's subqueries cost more to start than to run.
static PRESUMING_NEW: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT NULL::uuid AS unit_id, NULL::uuid AS collectivity_id,
                f.sequence AS version, f.event_version, f.payload, {} AS family_key
         FROM ({}) f
         UNION ALL
         SELECT u.unit_id, u.collectivity_id, coalesce({}, 0), NULL, NULL, NULL
         FROM directory_units u WHERE u.unit_id = ANY($2)",
        store::sql::family_key("$1"),
        store::sql::events_after("'Family'", "$1::text", "$3"),
        store::sql::version("'Collectivity'", "u.collectivity_id::text"),
    )
});

impl Prelude {
    pub(super) async fn read(
        commands: &Commands,
        basket: &Basket,
        reservation_ids: &[Uuid],
    ) -> Result<Prelude, ApiError> {
        let unit_ids = basket.unit_ids();
        let mut seen = HashSet::new();
        let distinct: Vec<Uuid> = reservation_ids
            .iter()
            .copied()
            .filter(|id| seen.insert(*id))
            .collect();
        let distinct_text: Vec<String> = distinct.iter().map(Uuid::to_string).collect();
        let kept = commands.family_kept(basket.family_id);
        let row = sqlx::query(&PRELUDE)
            .bind(basket.id)
            .bind(basket.family_id)
            .bind(&unit_ids)
            .bind(kept.0 as i64)
            .bind(&distinct_text)
            .fetch_one(&commands.pool)
            .await?;
        let stored: Option<serde_json::Value> = row.try_get("outcome")?;
        let stored = stored.map(super::outcome_of).transpose()?;
        let family_events = array::<i64>(&row, "family_sequences")?
            .into_iter()
            .zip(array::<String>(&row, "family_versions")?)
            .zip(array::<String>(&row, "family_payloads")?)
            .map(|((sequence, version), payload)| StoredEvent {
                sequence,
                version,
                payload,
            })
            .collect();
        let units = array::<Uuid>(&row, "unit_ids")?
            .into_iter()
            .zip(array::<Uuid>(&row, "communes")?)
            .zip(array::<i64>(&row, "versions")?)
            .map(|((unit, commune), version)| (unit, commune, version as usize))
            .collect();
        let reservation_events = array::<String>(&row, "reservation_ids")?
            .into_iter()
            .zip(array::<i64>(&row, "reservation_sequences")?)
            .zip(array::<String>(&row, "reservation_versions")?)
            .zip(array::<String>(&row, "reservation_payloads")?)
            .map(|(((id, sequence), version), payload)| {
                (
                    id,
                    StoredEvent {
                        sequence,
                        version,
                        payload,
                    },
                )
            })
            .collect();
        let reservations = distinct
            .into_iter()
            .zip(store::fold_many::<Reservation>(
                &distinct_text,
                reservation_events,
            )?)
            .collect();
        Ok(Prelude {
            stored,
            family: kept,
            family_events,
            family_key: row.try_get("family_key")?,
            units,
            reservations,
        })
    }

    /// The prelude of a basket checked as if its reservations were new:
    /// nothing is read of them, nor of a stored outcome (see [`submit`]).
    pub(super) async fn presuming_new(
        commands: &Commands,
        basket: &Basket,
        reservation_ids: &[Uuid],
    ) -> Result<Prelude, ApiError> {
        let kept = commands.family_kept(basket.family_id);
        let rows = sqlx::query(&PRESUMING_NEW)
            .bind(basket.family_id)
            .bind(basket.unit_ids())
            .bind(kept.0 as i64)
            .fetch_all(&commands.pool)
            .await?;
        let mut family_events = Vec::new();
        let mut family_key = None;
        let mut units = Vec::new();
        for row in &rows {
            let version: i64 = row.try_get("version")?;
            match row.try_get::<Option<Uuid>, _>("unit_id")? {
                Some(unit) => units.push((unit, row.try_get("collectivity_id")?, version as usize)),
                None => {
                    family_events.push(StoredEvent {
                        sequence: version,
                        version: row.try_get("event_version")?,
                        payload: row.try_get("payload")?,
                    });
                    family_key = row.try_get("family_key")?;
                }
            }
        }
        family_events.sort_unstable_by_key(|event| event.sequence);
        Ok(Prelude {
            stored: None,
            family: kept,
            family_events,
            family_key,
            units,
            reservations: reservation_ids.iter().map(|&id| (id, Loaded::new())).collect(),
        })
    }
}

/// An array column of the prelude (NULL when its set was empty).
fn array<T>(row: &PgRow, column: &str) -> Result<Vec<T>, sqlx::Error>
where
    T: for<'r> sqlx::Decode<'r, sqlx::Postgres> + sqlx::Type<sqlx::Postgres> + sqlx::postgres::PgHasArrayType,
{
    Ok(row.try_get::<Option<Vec<T>>, _>(column)?.unwrap_or_default())
}
