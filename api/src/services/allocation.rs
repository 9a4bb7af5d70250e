//! Allocated booking windows (see the domain's `allocation`): their seeds,
//! drawn when they are set, and their runs when they close.
//!
//! Setting an allocated window draws its lottery's seed and keeps it in
//! `allocation_seeds`, in the transaction of the commune's event, which
//! publishes only its commitment. Once the window has closed, a worker on
//! every server looks for it there and runs, for each day of its range the
//! unit runs, one allocation under the day's lock (see `places`): the
//! requests still asking, the criteria each meets as the families and the
//! day's places stand, ranked by `draw`; places given, the rest on the
//! waiting list, each reservation told, every family e-mailed (see
//! `decision_mails`). A run takes place once: a second worker finds it
//! done in the day's events and writes nothing.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;

use chrono::{NaiveDate, Utc};
use cqrs_es::Aggregate;
use espace_famille_domain::allocation::{self, Allocation, Criterion, Request};
use espace_famille_domain::collectivity::{BookingWindow, Collectivity, CollectivityCommand};
use espace_famille_domain::places::{places_id, Places, PlacesCommand, PlacesEvent};
use espace_famille_domain::reservation::{Reservation, ReservationStatus};
use espace_famille_projections::store::{self, Metadata, StreamAppend};
use rand::RngCore;
use sqlx::{PgPool, Row};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::commands::Commands;
use crate::error::ApiError;
use crate::i18n::say;
use crate::services::{places, Failure, Work, Write};

/// How long a seed is: 32 random bytes.
const SEED_BYTES: usize = 32;

/// Sets a booking window; an allocated one keeps the seed it was first
/// given (its commitment is already published), or draws one.
pub async fn set_window(
    commands: &Commands,
    collectivity_id: Uuid,
    window: BookingWindow,
    allocated: Option<(chrono::DateTime<Utc>, Vec<Criterion>)>,
    metadata: &Metadata,
) -> Result<Collectivity, ApiError> {
    commands
        .write(SetWindow {
            collectivity_id,
            window,
            allocated,
            metadata: metadata.clone(),
        })
        .await
}

struct SetWindow {
    collectivity_id: Uuid,
    window: BookingWindow,
    allocated: Option<(chrono::DateTime<Utc>, Vec<Criterion>)>,
    metadata: Metadata,
}

impl Write for SetWindow {
    type Answer = Collectivity;

    async fn attempt(&mut self, work: &mut Work<'_>) -> Result<Collectivity, Failure> {
        let mut window = self.window.clone();
        if let Some((closes_at, criteria)) = &self.allocated {
            let conn = work.transaction().await?;
            let kept: Option<(Uuid, Vec<u8>)> =
                sqlx::query_as("SELECT collectivity_id, seed FROM allocation_seeds WHERE window_id = $1")
                    .bind(window.id)
                    .fetch_optional(&mut *conn)
                    .await?;
            // A window id is one commune's: another's is never touched.
            let kept = match kept {
                Some((commune, _)) if commune != self.collectivity_id => {
                    return Err(ApiError::Conflict(say("api.window_id_used", &[("id", &window.id)])).into())
                }
                other => other.map(|(_, seed)| seed),
            };
            let seed = kept.unwrap_or_else(|| {
                let mut seed = vec![0u8; SEED_BYTES];
                rand::rngs::OsRng.fill_bytes(&mut seed);
                seed
            });
            window.allocation = Some(Allocation {
                closes_at: *closes_at,
                criteria: criteria.clone(),
                seed_commitment: allocation::commitment(&seed),
            });
            sqlx::query(
                "INSERT INTO allocation_seeds (window_id, collectivity_id, unit_id, first_day, last_day, closes_at, seed)
                 VALUES ($1, $2, $3, $4, $5, $6, $7)
                 ON CONFLICT (window_id) DO UPDATE SET unit_id = EXCLUDED.unit_id, first_day = EXCLUDED.first_day,
                   last_day = EXCLUDED.last_day, closes_at = EXCLUDED.closes_at, ran_at = NULL",
            )
            .bind(window.id)
            .bind(self.collectivity_id)
            .bind(window.unit_id)
            .bind(window.range.first)
            .bind(window.range.last)
            .bind(closes_at)
            .bind(&seed)
            .execute(&mut *conn)
            .await?;
        }
        let command = CollectivityCommand::SetBookingWindow { window };
        work.execute::<Collectivity>(self.collectivity_id, command, &(), &self.metadata)
            .await
    }
}

/// One allocation run: `window`'s, for `unit_id` on `date`.
struct Allocate {
    window_id: Uuid,
    collectivity_id: Uuid,
    unit_id: Uuid,
    date: NaiveDate,
    seed: Vec<u8>,
    metadata: Metadata,
}

impl Write for Allocate {
    type Answer = bool;

    async fn attempt(&mut self, work: &mut Work<'_>) -> Result<bool, Failure> {
        let commands = work.commands();
        let collectivity = commands.current_collectivity(self.collectivity_id).await?;
        let Some(window) = collectivity
            .booking_windows
            .iter()
            .find(|w| w.id == self.window_id)
        else {
            return Ok(false);
        };
        let Some(rule) = window.allocation.clone() else {
            return Ok(false);
        };
        let conn = work.transaction().await?;
        let id = places_id(self.unit_id, self.date);
        let mut days = places::lock_and_read(commands, conn, &[(self.unit_id, self.date)]).await?;
        let day = days.get_mut(&id).expect("the day was read");
        if day.aggregate.runs.contains(&self.window_id) || day.aggregate.collected.is_empty() {
            return Ok(false);
        }
        // The requests collected that still ask, and whose they are.
        let collected: Vec<String> = day
            .aggregate
            .collected
            .iter()
            .filter(|c| c.window_id == self.window_id)
            .map(|c| c.reservation_id.to_string())
            .collect();
        let loaded = store::load_many::<Reservation>(&commands.pool, &collected).await?;
        let asking: Vec<(Uuid, store::Loaded<Reservation>)> = collected
            .iter()
            .zip(loaded)
            .filter(|(_, r)| r.aggregate.status == ReservationStatus::AllocationPending)
            .filter_map(|(id, r)| Some((id.parse().ok()?, r)))
            .collect();
        // The families with a child already placed that day.
        let holders: Vec<String> = day.aggregate.holders.iter().map(Uuid::to_string).collect();
        let placed: BTreeSet<Uuid> = store::load_many::<Reservation>(&commands.pool, &holders)
            .await?
            .into_iter()
            .filter_map(|r| r.aggregate.slot.map(|s| s.family_id))
            .collect();
        let family_ids: Vec<Uuid> = asking
            .iter()
            .filter_map(|(_, r)| r.aggregate.slot.map(|s| s.family_id))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let families: HashMap<Uuid, espace_famille_domain::family::Family> = {
            let mut conn = commands.pool.acquire().await?;
            let loaded = store::load_families(&mut conn, &family_ids).await?;
            family_ids
                .iter()
                .copied()
                .zip(loaded.into_iter().map(|l| l.aggregate))
                .collect()
        };
        let requests: Vec<Request> = asking
            .iter()
            .filter_map(|(id, r)| {
                let family_id = r.aggregate.slot?.family_id;
                let family = families.get(&family_id);
                let met = rule
                    .criteria
                    .iter()
                    .copied()
                    .filter(|criterion| match criterion {
                        Criterion::Resident => {
                            family.is_some_and(|f| f.residences.contains(&self.collectivity_id))
                        }
                        Criterion::BothParentsWorking => {
                            family.is_some_and(|f| f.working_parents.contains(&self.collectivity_id))
                        }
                        Criterion::SiblingPlaced => placed.contains(&family_id),
                    })
                    .collect();
                Some(Request {
                    reservation_id: *id,
                    family_id,
                    met,
                })
            })
            .collect();
        let run_id = allocation::run_id(self.window_id, self.unit_id, self.date);
        let allocate = PlacesCommand::Allocate {
            run_id,
            window_id: self.window_id,
            unit_id: self.unit_id,
            date: self.date,
            seed: self.seed.clone(),
            criteria: rule.criteria.clone(),
            places: collectivity.places_on(self.unit_id, self.date),
            requests,
        };
        let events = places::decide(day, allocate)
            .await
            .map_err(|e| Failure::Refused(ApiError::Internal(e.to_string())))?;
        let mut streams: Vec<StreamAppend> = Vec::new();
        if let Some(PlacesEvent::AllocationRun {
            order,
            placed,
            first_ticket,
            ..
        }) = events.last()
        {
            let outcome: HashMap<Uuid, Option<(u32, u32)>> = order
                .iter()
                .enumerate()
                .map(|(rank, id)| {
                    let rank = rank as u32;
                    let waiting = (rank >= *placed).then(|| {
                        let behind = rank - placed;
                        (first_ticket + behind, behind + 1)
                    });
                    (*id, waiting)
                })
                .collect();
            for (id, loaded) in &asking {
                let Some(waiting) = outcome.get(id) else {
                    continue;
                };
                let told = loaded
                    .aggregate
                    .check_allocation(&collectivity, run_id, *waiting)
                    .map_err(|e| Failure::Refused(ApiError::Internal(e.to_string())))?;
                streams.push(StreamAppend::new::<Reservation>(
                    id.to_string(),
                    loaded.version,
                    &told,
                )?);
            }
        }
        streams.extend(places::appends(&days, HashMap::from([(id, events)]))?);
        work.append(streams, &self.metadata)?;
        Ok(true)
    }

    /// The runs wait for no read model.
    fn reads(&self) -> Option<&'static [&'static str]> {
        Some(&[])
    }
}

/// Runs the allocations of every window that closed and has not run yet;
/// how many days it allocated.
pub async fn run_due(commands: &Commands) -> Result<usize, ApiError> {
    let due = sqlx::query(
        "SELECT window_id, collectivity_id, unit_id, first_day, last_day, seed FROM allocation_seeds
         WHERE ran_at IS NULL AND closes_at <= now() ORDER BY closes_at LIMIT 20",
    )
    .fetch_all(&commands.pool)
    .await?;
    let mut ran = 0;
    for row in due {
        let window_id: Uuid = row.try_get("window_id")?;
        let collectivity_id: Uuid = row.try_get("collectivity_id")?;
        let unit_id: Uuid = row.try_get("unit_id")?;
        let (first, last): (NaiveDate, NaiveDate) = (row.try_get("first_day")?, row.try_get("last_day")?);
        let seed: Vec<u8> = row.try_get("seed")?;
        let collectivity = commands.current_collectivity(collectivity_id).await?;
        let Some(unit) = collectivity.units.get(&unit_id) else {
            continue;
        };
        let days: Vec<NaiveDate> = first
            .iter_days()
            .take_while(|d| *d <= last)
            .filter(|d| {
                unit.opening
                    .check_unit(unit_id, *d, &collectivity.calendar)
                    .is_ok()
            })
            .collect();
        for date in days {
            let metadata = Metadata {
                actor_id: "system:allocation".into(),
                actor_role: "system".into(),
                correlation_id: window_id,
                causation_id: window_id,
                command_id: Uuid::new_v4(),
                requested_at: Utc::now(),
            };
            let allocate = Allocate {
                window_id,
                collectivity_id,
                unit_id,
                date,
                seed: seed.clone(),
                metadata,
            };
            if commands.write(allocate).await? {
                ran += 1;
            }
        }
        sqlx::query("UPDATE allocation_seeds SET ran_at = now() WHERE window_id = $1")
            .bind(window_id)
            .execute(&commands.pool)
            .await?;
    }
    Ok(ran)
}

/// How often the worker looks for windows that closed.
const EVERY: Duration = Duration::from_millis(500);

/// The running worker that allocates the windows that closed.
pub struct AllocationWorker {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl AllocationWorker {
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// Starts allocating windows as they close, until shut down.
pub fn start(commands: std::sync::Arc<Commands>) -> AllocationWorker {
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        loop {
            let wait = match run_due(&commands).await {
                Ok(_) => EVERY,
                Err(error) => {
                    tracing::warn!(error = %error.message(), "allocations not run; will retry");
                    EVERY * 10
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stopped.changed() => return,
            }
        }
    });
    AllocationWorker { stop, task }
}

/// What an auditor's recomputation of a run found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllocationAudit {
    pub run_id: Uuid,
    pub unit_id: Uuid,
    pub date: NaiveDate,
    pub requests: usize,
    pub placed: u32,
    /// Every check, with whether it held.
    pub checks: Vec<(String, bool)>,
}

impl AllocationAudit {
    pub fn holds(&self) -> bool {
        self.checks.iter().all(|(_, held)| *held)
    }
}

/// Recomputes allocation run `run_id` from the events alone: the seed it
/// reveals against the commitment the commune published, the requests it
/// ranked against those the day collected before it, the criteria each
/// met against the families' events before the run, the draw, and what
/// each reservation was told.
pub async fn audit(pool: &PgPool, run_id: Uuid) -> Result<AllocationAudit, ApiError> {
    let found = store::find_allocation_run(pool, &run_id.to_string()).await?;
    let Some((stream, run_position, payload)) = found else {
        return Err(ApiError::NotFound(format!("no allocation run {run_id}")));
    };
    let run: PlacesEvent = serde_json::from_str(&payload).map_err(|e| ApiError::Internal(e.to_string()))?;
    let PlacesEvent::AllocationRun {
        window_id,
        unit_id,
        date,
        seed,
        criteria,
        requests,
        order,
        placed,
        first_ticket,
        ..
    } = run
    else {
        return Err(ApiError::Internal(format!("event of run {run_id} is not a run")));
    };
    let mut checks = Vec::new();
    let seed_bytes = allocation::seed_from_hex(&seed).unwrap_or_default();
    // The commitment, as the commune published it before the run.
    let commune: Option<Uuid> =
        sqlx::query_scalar("SELECT collectivity_id FROM directory_units WHERE unit_id = $1")
            .bind(unit_id)
            .fetch_optional(pool)
            .await?;
    let mut published = None;
    if let Some(commune) = commune {
        for event in store::stream_history(pool, Collectivity::TYPE, &commune.to_string()).await? {
            if event.position >= run_position {
                break;
            }
            if let espace_famille_domain::collectivity::CollectivityEvent::BookingWindowSet { window } =
                event.decode::<Collectivity>()?
            {
                if window.id == window_id {
                    published = window.allocation.map(|a| a.seed_commitment);
                }
            }
        }
    }
    checks.push((
        "the seed revealed is the one the commune committed to".to_string(),
        published.as_deref() == Some(allocation::commitment(&seed_bytes).as_str()),
    ));
    // The requests: collected that day for this window before the run.
    let history = store::stream_history(pool, Places::TYPE, &stream).await?;
    let mut collected = Vec::new();
    let mut before = Places::default();
    for event in &history {
        if event.position >= run_position {
            break;
        }
        let decoded = event.decode::<Places>()?;
        if let PlacesEvent::RequestCollected {
            reservation_id,
            window_id: w,
            ..
        } = &decoded
        {
            if *w == window_id {
                collected.push(*reservation_id);
            }
        }
        before.apply(decoded);
    }
    checks.push((
        "every request ranked was collected that day before the run, once".to_string(),
        requests.iter().all(|r| collected.contains(&r.reservation_id))
            && requests
                .iter()
                .map(|r| r.reservation_id)
                .collect::<BTreeSet<_>>()
                .len()
                == requests.len(),
    ));
    // The criteria each met, from the families' events before the run.
    let mut met_right = true;
    let holders: Vec<String> = before.holders.iter().map(Uuid::to_string).collect();
    let placed_families: BTreeSet<Uuid> = store::load_many::<Reservation>(pool, &holders)
        .await?
        .into_iter()
        .filter_map(|r| r.aggregate.slot.map(|s| s.family_id))
        .collect();
    for request in &requests {
        let mut family = espace_famille_domain::family::Family::default();
        for event in store::stream_history(pool, "Family", &request.family_id.to_string()).await? {
            if event.position >= run_position {
                break;
            }
            // Residence and working parents carry no personal value.
            if let Ok(e) = event.decode::<espace_famille_domain::family::Family>() {
                family.apply(e);
            }
        }
        let commune = commune.unwrap_or_default();
        let met: Vec<Criterion> = criteria
            .iter()
            .copied()
            .filter(|c| match c {
                Criterion::Resident => family.residences.contains(&commune),
                Criterion::BothParentsWorking => family.working_parents.contains(&commune),
                Criterion::SiblingPlaced => placed_families.contains(&request.family_id),
            })
            .collect();
        met_right &= met == request.met;
    }
    checks.push((
        "the criteria each request met are the families' as they stood".to_string(),
        met_right,
    ));
    checks.push((
        "the order is the draw of the seed, the criteria and the requests".to_string(),
        allocation::draw(&seed_bytes, &criteria, &requests) == order,
    ));
    // What each reservation was told.
    let mut told_right = true;
    for (rank, id) in order.iter().enumerate() {
        let rank = rank as u32;
        let expected = if rank < placed {
            ReservationToldExpect::Placed
        } else {
            ReservationToldExpect::Waiting(first_ticket + rank - placed, rank - placed + 1)
        };
        let events = store::stream_history(pool, Reservation::TYPE, &id.to_string()).await?;
        let told = events
            .iter()
            .any(|e| match (e.decode::<Reservation>(), expected) {
                (
                    Ok(espace_famille_domain::reservation::ReservationEvent::PlaceAllocated { run_id: r }),
                    ReservationToldExpect::Placed,
                ) => r == run_id,
                (
                    Ok(espace_famille_domain::reservation::ReservationEvent::AllocationWaitListed {
                        run_id: r,
                        ticket,
                        position,
                    }),
                    ReservationToldExpect::Waiting(t, p),
                ) => r == run_id && ticket == t && position == p,
                _ => false,
            });
        told_right &= told;
    }
    checks.push((
        "each reservation was told its place or its rank on the waiting list".to_string(),
        told_right,
    ));
    Ok(AllocationAudit {
        run_id,
        unit_id,
        date,
        requests: requests.len(),
        placed,
        checks,
    })
}

#[derive(Clone, Copy)]
enum ReservationToldExpect {
    Placed,
    Waiting(u32, u32),
}
