//! The days' places (see the domain's `places`): how a booking takes one
//! or a ticket on the waiting list, and how places freed up go to the
//! first in line.
//!
//! Capacity is never exceeded, whatever the number of servers: each day's
//! places are a stream, and every write that changes them (a basket's
//! lines, a promotion) appends to it after the version it decided on, in
//! the transaction of its reservations' events. Of two writers that saw
//! the same last place, one commits and the other's insert breaks the
//! stream's key: it decides again on what the first wrote. That check is
//! the guarantee. So that a rush on one day does not turn into writers
//! failing on each other, each first takes a transaction-scoped advisory
//! lock per day it writes (in one order: no deadlock) and only then reads
//! the day: writers of one day queue, each reads what the one before it
//! committed, and the waiting list's order is the order of the commits
//! (decision 0024).
//!
//! A place let go (a cancellation, an agent's refusal, a family leaving
//! the waiting list, a closed day) is not handed on by the request that
//! let it go: the promotions' process manager, on the projection engine,
//! sees the reservation's event, brings the day in line with it and
//! promotes whoever is first, once (see [`settle`]).

use std::collections::HashMap;

use chrono::{NaiveDate, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use espace_famille_domain::collectivity::Collectivity;
use espace_famille_domain::places::{places_id, Places, PlacesCommand, PlacesError, PlacesEvent};
use espace_famille_domain::reservation::{Reservation, ReservationError, ReservationStatus};
use espace_famille_projections::store::{self, Loaded, Metadata, StreamAppend};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::commands::Commands;
use crate::error::ApiError;
use crate::services::{Failure, Work, Write};

/// The first key of the days' advisory locks (the second is the stream's).
const PLACES_LOCK: i32 = 4244;

/// Locks the places of these days for the transaction, in the order of
/// their locks' keys, then reads them: each as kept in memory, brought up
/// to date with the events after it.
pub async fn lock_and_read(
    commands: &Commands,
    conn: &mut PgConnection,
    days: &[(Uuid, NaiveDate)],
) -> Result<HashMap<Uuid, Loaded<Places>>, Failure> {
    let mut ids: Vec<String> = days
        .iter()
        .map(|&(unit, date)| places_id(unit, date).to_string())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    sqlx::query(
        "SELECT pg_advisory_xact_lock($1, k.key)
         FROM (SELECT hashtext(id) AS key FROM UNNEST($2::text[]) AS id ORDER BY 1) AS k",
    )
    .bind(PLACES_LOCK)
    .bind(&ids)
    .execute(&mut *conn)
    .await?;
    let kept: Vec<(usize, Option<std::sync::Arc<Places>>)> = ids
        .iter()
        .map(
            |id| match id.parse().ok().and_then(|id| commands.places_kept(id)) {
                Some((version, state)) => (version, Some(state)),
                None => (0, None),
            },
        )
        .collect();
    let after: Vec<i64> = kept.iter().map(|(version, _)| *version as i64).collect();
    let mut events = store::events_after_each(&mut *conn, Places::TYPE, &ids, &after).await?;
    let mut days = HashMap::with_capacity(ids.len());
    for (id, (version, state)) in ids.iter().zip(kept) {
        let mut loaded = Loaded {
            aggregate: state.map(|s| (*s).clone()).unwrap_or_default(),
            version,
        };
        let uuid: Uuid = id
            .parse()
            .map_err(|_| Failure::Refused(ApiError::Internal(format!("places id {id}"))))?;
        if let Some(events) = events.remove(id) {
            loaded.apply_stored(id, events, None)?;
            // What was read under the lock is committed: safe to keep.
            commands.keep_places(uuid, loaded.version, &loaded.aggregate);
        }
        days.insert(uuid, loaded);
    }
    Ok(days)
}

/// What a command on a day's places records, applied to it (a refused
/// command changes nothing: the days' commands check before they record).
pub async fn decide(
    loaded: &mut Loaded<Places>,
    command: PlacesCommand,
) -> Result<Vec<PlacesEvent>, PlacesError> {
    let sink = EventSink::default();
    loaded.aggregate.handle(command, &(), &sink).await?;
    let events = sink.collect().await;
    loaded.version += events.len();
    Ok(events)
}

/// The places a write decided on, queued: each day's events after the
/// version it was read at.
pub fn appends(
    days: &HashMap<Uuid, Loaded<Places>>,
    events: HashMap<Uuid, Vec<PlacesEvent>>,
) -> Result<Vec<StreamAppend>, Failure> {
    let mut appends = Vec::with_capacity(events.len());
    for (id, events) in events {
        if events.is_empty() {
            continue;
        }
        let read = days
            .get(&id)
            .map(|d| d.version - events.len())
            .ok_or_else(|| Failure::Refused(ApiError::Internal(format!("places {id} were not read"))))?;
        appends.push(StreamAppend::new::<Places>(id.to_string(), read, &events)?);
    }
    Ok(appends)
}

/// The promotions' write for one day: the reservations named brought in
/// line with what they now are, then the first in line promoted into
/// every free place, each checked against its reservation (one that no
/// longer waits leaves the list instead).
pub struct Settle {
    pub unit_id: Uuid,
    pub date: NaiveDate,
    /// Reservations whose change may have let something go.
    pub changed: Vec<Uuid>,
    pub metadata: Metadata,
}

/// What one settling did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Settled {
    pub promoted: Vec<Uuid>,
}

/// The most promotions one settling makes (the rest on the next change).
const MAX_PROMOTIONS: usize = 500;

impl Write for Settle {
    type Answer = Settled;

    async fn attempt(&mut self, work: &mut Work<'_>) -> Result<Settled, Failure> {
        let commands = work.commands();
        let collectivity = match unit_collectivity(commands, self.unit_id).await? {
            Some(collectivity) => collectivity,
            None => return Ok(Settled::default()),
        };
        let places = collectivity.places_on(self.unit_id, self.date);
        let id = places_id(self.unit_id, self.date);
        let conn = work.transaction().await?;
        let mut days = lock_and_read(commands, conn, &[(self.unit_id, self.date)]).await?;
        let day = days.get_mut(&id).expect("the day was read");
        if day.version == 0 {
            return Ok(Settled::default());
        }
        let mut events = Vec::new();
        let mut reservations: Vec<StreamAppend> = Vec::new();
        let changed: Vec<String> = self.changed.iter().map(Uuid::to_string).collect();
        for (id, loaded) in self
            .changed
            .iter()
            .zip(store::load_many::<Reservation>(&commands.pool, &changed).await?)
        {
            let status = loaded.aggregate.status;
            let command = PlacesCommand::Reconcile {
                reservation_id: *id,
                holds: status.stands(),
                waits: status == ReservationStatus::WaitListed,
            };
            events.extend(decide(day, command).await.map_err(internal)?);
        }
        let now = Utc::now();
        let mut promoted = Vec::new();
        while promoted.len() < MAX_PROMOTIONS {
            let Some(next) = day.aggregate.next(places) else {
                break;
            };
            let loaded = store::load_many::<Reservation>(&commands.pool, &[next.to_string()])
                .await?
                .pop()
                .unwrap_or_default();
            match loaded.aggregate.check_promotion(&collectivity, now) {
                Ok(promotion) => {
                    events.extend(
                        decide(
                            day,
                            PlacesCommand::Promote {
                                reservation_id: next,
                                places,
                            },
                        )
                        .await
                        .map_err(internal)?,
                    );
                    reservations.push(StreamAppend::new::<Reservation>(
                        next.to_string(),
                        loaded.version,
                        &promotion,
                    )?);
                    promoted.push(next);
                }
                Err(ReservationError::NotWaitListed) => {
                    let status = loaded.aggregate.status;
                    events.extend(
                        decide(
                            day,
                            PlacesCommand::Reconcile {
                                reservation_id: next,
                                holds: status.stands(),
                                waits: false,
                            },
                        )
                        .await
                        .map_err(internal)?,
                    );
                }
                // The day closed or its deadline passed: nobody else is
                // promoted into it.
                Err(_) => break,
            }
        }
        let mut streams = appends(&days, HashMap::from([(id, events)]))?;
        streams.extend(reservations);
        work.append(streams, &self.metadata)?;
        Ok(Settled { promoted })
    }

    /// The promotions wait for no read model.
    fn reads(&self) -> Option<&'static [&'static str]> {
        Some(&[])
    }
}

fn internal(error: PlacesError) -> Failure {
    Failure::Refused(ApiError::Internal(error.to_string()))
}

/// The commune of a unit, as it stands, if the unit exists.
async fn unit_collectivity(
    commands: &Commands,
    unit_id: Uuid,
) -> Result<Option<std::sync::Arc<Collectivity>>, Failure> {
    let commune: Option<Uuid> =
        sqlx::query_scalar("SELECT collectivity_id FROM directory_units WHERE unit_id = $1")
            .bind(unit_id)
            .fetch_optional(&commands.pool)
            .await?;
    match commune {
        Some(id) => Ok(Some(commands.current_collectivity(id).await?)),
        None => Ok(None),
    }
}

/// Settles one day (see [`Settle`]).
pub async fn settle(commands: &Commands, settle: Settle) -> Result<Settled, ApiError> {
    commands.write(settle).await
}
