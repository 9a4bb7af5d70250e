//! Baskets: a parent validates many booking and cancellation lines at once.
//!
//! Every line is checked first; then the events of all lines are appended in
//! one transaction, each reservation stream with its own optimistic check,
//! together with the basket's outcome under its client-chosen id. So a
//! basket is booked whole or not at all, costs one commit, and a retried
//! basket returns the outcome of the first.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use async_graphql::{Enum, SimpleObject};
use chrono::{NaiveDate, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use espace_famille_domain::collectivity::Collectivity;
use espace_famille_domain::reservation::{
    reservation_id, BookingContext, Reservation, ReservationCommand, ReservationError, ReservationEvent,
};
use espace_famille_projections::store::{self, Loaded, Metadata, StoreError, StreamAppend};
use serde::{Deserialize, Serialize};
use sqlx::{PgPool, Row};
use uuid::Uuid;

use crate::commands::Commands;
use crate::error::{ApiError, Refusal};

/// The most lines one basket may hold (a school year of one unit for one
/// child is about 140 days).
pub const MAX_LINES: usize = 400;
const CONFLICT_RETRIES: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Enum)]
pub enum BasketAction {
    Book,
    Cancel,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BasketLine {
    pub action: BasketAction,
    pub child_id: Uuid,
    pub unit_id: Uuid,
    pub date: NaiveDate,
}

#[derive(Debug, Clone)]
pub struct Basket {
    /// Chosen by the client: the idempotency key.
    pub id: Uuid,
    pub family_id: Uuid,
    pub lines: Vec<BasketLine>,
    /// Write the valid lines even when others are refused.
    pub keep_valid_lines: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Enum)]
pub enum BasketStatus {
    /// Every line was written.
    Accepted,
    /// Some lines were refused; the valid ones were written, as asked.
    Partial,
    /// Nothing was written.
    Rejected,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, SimpleObject)]
pub struct LineOutcome {
    /// The line's place in the submitted basket, from 0.
    pub index: i32,
    pub action: BasketAction,
    pub child_id: Uuid,
    pub unit_id: Uuid,
    pub date: NaiveDate,
    pub reservation_id: Uuid,
    pub accepted: bool,
    /// Why the line was refused.
    pub refusal: Option<Refusal>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, SimpleObject)]
pub struct BasketOutcome {
    pub basket_id: Uuid,
    pub family_id: Uuid,
    pub status: BasketStatus,
    pub lines: Vec<LineOutcome>,
}

/// A line's verdict before anything is written.
struct Checked {
    outcome: LineOutcome,
    append: Option<StreamAppend>,
}

pub async fn submit(
    commands: &Commands,
    basket: Basket,
    metadata: &Metadata,
) -> Result<BasketOutcome, ApiError> {
    if basket.lines.is_empty() {
        return Err(ApiError::Validation("a basket needs at least one line".into()));
    }
    if basket.lines.len() > MAX_LINES {
        return Err(ApiError::Validation(format!(
            "a basket holds at most {MAX_LINES} lines, this one has {}",
            basket.lines.len()
        )));
    }
    let pool = &commands.pool;
    for _ in 0..CONFLICT_RETRIES {
        let prelude = Prelude::read(pool, &basket).await?;
        if let Some(stored) = prelude.stored {
            if stored.family_id != basket.family_id {
                return Err(ApiError::Conflict(format!(
                    "basket id {} is already used",
                    basket.id
                )));
            }
            return Ok(stored);
        }
        let checked = check(commands, &basket, prelude).await?;
        let refused = checked.iter().filter(|c| !c.outcome.accepted).count();
        let status = match refused {
            0 => BasketStatus::Accepted,
            n if n < checked.len() && basket.keep_valid_lines => BasketStatus::Partial,
            _ => BasketStatus::Rejected,
        };
        let (outcomes, appends): (Vec<_>, Vec<_>) =
            checked.into_iter().map(|c| (c.outcome, c.append)).unzip();
        let outcome = BasketOutcome {
            basket_id: basket.id,
            family_id: basket.family_id,
            status,
            lines: outcomes,
        };
        if status == BasketStatus::Rejected {
            return Ok(outcome);
        }
        let streams: Vec<StreamAppend> = appends.into_iter().flatten().collect();
        match write(pool, &outcome, &streams, metadata).await {
            Ok(position) => {
                if let Some(position) = position {
                    commands.wait_for_read_models(position).await?;
                }
                return Ok(outcome);
            }
            // A stream moved, or the same basket was written meanwhile:
            // check again against fresh state.
            Err(StoreError::Conflict) => continue,
            Err(other) => return Err(other.into()),
        }
    }
    Err(ApiError::Conflict(format!(
        "basket {} kept conflicting with other bookings; try again",
        basket.id
    )))
}

/// What a basket is checked against, read in one round trip: the outcome
/// stored under its id if it was already submitted, the family's stream
/// version, and each unit's commune with that commune's stream version.
struct Prelude {
    stored: Option<BasketOutcome>,
    family_version: usize,
    /// Unit, its commune, the commune's version.
    units: Vec<(Uuid, Uuid, usize)>,
}

impl Prelude {
    async fn read(pool: &PgPool, basket: &Basket) -> Result<Prelude, ApiError> {
        let unit_ids: Vec<Uuid> = basket
            .lines
            .iter()
            .map(|l| l.unit_id)
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let row = sqlx::query(
            "WITH units AS (
               SELECT u.unit_id, u.collectivity_id,
                 (SELECT max(sequence) FROM events
                  WHERE aggregate_type = 'Collectivity' AND aggregate_id = u.collectivity_id::text) AS version
               FROM directory_units u WHERE u.unit_id = ANY($3))
             SELECT (SELECT outcome FROM baskets WHERE basket_id = $1) AS outcome,
                    (SELECT max(sequence) FROM events
                     WHERE aggregate_type = 'Family' AND aggregate_id = $2::text) AS family_version,
                    (SELECT array_agg(unit_id ORDER BY unit_id) FROM units) AS unit_ids,
                    (SELECT array_agg(collectivity_id ORDER BY unit_id) FROM units) AS communes,
                    (SELECT array_agg(coalesce(version, 0) ORDER BY unit_id) FROM units) AS versions",
        )
        .bind(basket.id)
        .bind(basket.family_id)
        .bind(&unit_ids)
        .fetch_one(pool)
        .await?;
        let stored: Option<serde_json::Value> = row.try_get("outcome")?;
        let stored = stored
            .map(|value| {
                serde_json::from_value(value)
                    .map_err(|e| ApiError::Internal(format!("basket {}: {e}", basket.id)))
            })
            .transpose()?;
        let family_version: Option<i64> = row.try_get("family_version")?;
        let unit_ids: Option<Vec<Uuid>> = row.try_get("unit_ids")?;
        let communes: Option<Vec<Uuid>> = row.try_get("communes")?;
        let versions: Option<Vec<i64>> = row.try_get("versions")?;
        let units = unit_ids
            .unwrap_or_default()
            .into_iter()
            .zip(communes.unwrap_or_default())
            .zip(versions.unwrap_or_default())
            .map(|((unit, commune), version)| (unit, commune, version as usize))
            .collect();
        Ok(Prelude {
            stored,
            family_version: family_version.unwrap_or(0) as usize,
            units,
        })
    }
}

/// Writes the lines' events and the basket's outcome in one statement: it
/// commits on its own, whole or not at all, in one round trip.
async fn write(
    pool: &PgPool,
    outcome: &BasketOutcome,
    streams: &[StreamAppend],
    metadata: &Metadata,
) -> Result<Option<store::Position>, StoreError> {
    let mut conn = pool.acquire().await?;
    let rows = store::Rows::prepare(&mut conn, streams, metadata).await?;
    let json = serde_json::to_value(outcome).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    let sql = format!(
        "WITH appended AS ({} {}),
              recorded AS (INSERT INTO baskets (basket_id, family_id, outcome) VALUES ($8, $9, $10))
         SELECT transaction_id, global_position FROM appended",
        store::Rows::INSERT,
        store::Rows::RETURNING
    );
    let written = rows
        .bind(sqlx::query(&sql))
        .bind(outcome.basket_id)
        .bind(outcome.family_id)
        .bind(json)
        .fetch_all(&mut *conn)
        .await
        .map_err(store::conflict_or_database)?;
    store::last_position(&written)
}

/// Checks every line against the state the prelude saw; nothing is
/// written.
async fn check(commands: &Commands, basket: &Basket, prelude: Prelude) -> Result<Vec<Checked>, ApiError> {
    let pool = &commands.pool;
    let family = commands
        .family_at(basket.family_id, prelude.family_version)
        .await?;
    // The communes come from the cache at the versions just read.
    let mut unit_collectivity: HashMap<Uuid, Uuid> = HashMap::with_capacity(prelude.units.len());
    let mut collectivities: BTreeMap<Uuid, Arc<Collectivity>> = BTreeMap::new();
    for (unit_id, collectivity_id, version) in prelude.units {
        unit_collectivity.insert(unit_id, collectivity_id);
        if let std::collections::btree_map::Entry::Vacant(entry) = collectivities.entry(collectivity_id) {
            entry.insert(commands.collectivity_at(collectivity_id, version).await?);
        }
    }

    let ids: Vec<Uuid> = basket
        .lines
        .iter()
        .map(|l| reservation_id(l.child_id, l.unit_id, l.date))
        .collect();
    let mut seen = HashSet::new();
    let distinct: Vec<String> = ids
        .iter()
        .filter(|id| seen.insert(**id))
        .map(|id| id.to_string())
        .collect();
    let mut loaded: HashMap<Uuid, Loaded<Reservation>> = distinct
        .iter()
        .zip(store::load_many::<Reservation>(pool, &distinct).await?)
        .filter_map(|(id, loaded)| id.parse().ok().map(|id| (id, loaded)))
        .collect();

    let now = Utc::now();
    let mut checked = Vec::with_capacity(basket.lines.len());
    for (index, (line, id)) in basket.lines.iter().zip(ids).enumerate() {
        let mut outcome = LineOutcome {
            index: index as i32,
            action: line.action,
            child_id: line.child_id,
            unit_id: line.unit_id,
            date: line.date,
            reservation_id: id,
            accepted: false,
            refusal: None,
        };
        // Taking the reservation out means a second line on the same slot
        // finds nothing: it is refused as a duplicate.
        let Some(current) = loaded.remove(&id) else {
            outcome.refusal = Some(Refusal {
                code: "DUPLICATE_LINE".into(),
                message: "the basket already has a line for this child, unit and date".into(),
                deadline: None,
                closed_reason: None,
            });
            checked.push(Checked {
                outcome,
                append: None,
            });
            continue;
        };
        let current_version = current.version;
        let result = match unit_collectivity
            .get(&line.unit_id)
            .and_then(|c| collectivities.get(c))
        {
            None => Err(ReservationError::UnknownUnit(line.unit_id)),
            Some(_) if !family.children.contains_key(&line.child_id) => {
                Err(ReservationError::UnknownChild(line.child_id))
            }
            Some(collectivity) => {
                let context = BookingContext {
                    now,
                    collectivity: collectivity.clone(),
                    family: family.clone(),
                };
                run(current.aggregate, line, &context).await
            }
        };
        match result {
            Ok(events) => {
                outcome.accepted = true;
                let append = StreamAppend::new::<Reservation>(id.to_string(), current_version, &events)?;
                checked.push(Checked {
                    outcome,
                    append: Some(append),
                });
            }
            Err(error) => {
                outcome.refusal = Some(Refusal::from(&error));
                checked.push(Checked {
                    outcome,
                    append: None,
                });
            }
        }
    }
    Ok(checked)
}

/// Runs one line's command on its reservation; the events to append, or
/// the domain's refusal.
async fn run(
    mut reservation: Reservation,
    line: &BasketLine,
    context: &BookingContext,
) -> Result<Vec<ReservationEvent>, ReservationError> {
    let command = match line.action {
        BasketAction::Book => ReservationCommand::Request {
            child_id: line.child_id,
            unit_id: line.unit_id,
            date: line.date,
        },
        BasketAction::Cancel => ReservationCommand::Cancel,
    };
    let sink = EventSink::default();
    reservation.handle(command, context, &sink).await?;
    Ok(sink.collect().await)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_basket_outcome_survives_its_storage_unchanged() {
        let outcome = BasketOutcome {
            basket_id: Uuid::from_u128(1),
            family_id: Uuid::from_u128(2),
            status: BasketStatus::Partial,
            lines: vec![LineOutcome {
                index: 0,
                action: BasketAction::Book,
                child_id: Uuid::from_u128(3),
                unit_id: Uuid::from_u128(4),
                date: NaiveDate::from_ymd_opt(2026, 12, 7).unwrap(),
                reservation_id: Uuid::from_u128(5),
                accepted: false,
                refusal: Some(Refusal::from(&ReservationError::AlreadyBooked)),
            }],
        };
        let stored = serde_json::to_value(&outcome).unwrap();
        assert_eq!(serde_json::from_value::<BasketOutcome>(stored).unwrap(), outcome);
    }
}
