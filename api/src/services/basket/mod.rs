//! Baskets: a parent validates many booking and cancellation lines at once.
//!
//! Every line is checked first; then the events of all lines are appended in
//! one transaction, each reservation stream with its own optimistic check,
//! together with the basket's outcome under its client-chosen id. So a
//! basket is booked whole or not at all, costs one commit, and a retried
//! basket returns the outcome of the first.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use chrono::{NaiveDate, Utc};
use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use espace_famille_domain::collectivity::Collectivity;
use espace_famille_domain::places::{places_id, Places, PlacesCommand, PlacesEvent};
use espace_famille_domain::reservation::{
    reservation_id, BookingContext, Origin, Reservation, ReservationCommand, ReservationError,
    ReservationEvent,
};
use espace_famille_projections::store::{Alongside, Loaded, Metadata, StreamAppend};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::commands::Commands;
use crate::error::{ApiError, ErrorCode, Refusal};
use crate::i18n::say;
use crate::services::{places, Failure, Work, Write};

mod period;
mod prelude;
mod receipt;
pub mod together;
pub use period::{Period, Weeks, MAX_PERIOD_DAYS, MAX_PERIOD_TARGETS};
use prelude::Prelude;
use receipt::{Receipt, Stored};

/// The most lines one basket may hold (a school year of one unit for one
/// child is about 140 days).
pub const MAX_LINES: usize = 400;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
    /// The day chosen in the calendar, or a day of a period; recorded in
    /// the booking's request.
    pub origin: Origin,
}

impl BasketLine {
    /// A line of a period: a day the unit is closed is skipped (listed
    /// with its reason) rather than refused.
    pub fn skip_if_closed(&self) -> bool {
        self.origin == Origin::Period
    }
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

impl Basket {
    /// The units its lines name, each once.
    fn unit_ids(&self) -> Vec<Uuid> {
        let units: HashSet<Uuid> = self.lines.iter().map(|l| l.unit_id).collect();
        units.into_iter().collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BasketStatus {
    /// Every line was written.
    Accepted,
    /// Some lines were refused; the valid ones were written, as asked.
    Partial,
    /// Nothing was written.
    Rejected,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineOutcome {
    /// The line's place in the submitted basket, from 0.
    pub index: i32,
    pub action: BasketAction,
    pub child_id: Uuid,
    pub unit_id: Uuid,
    pub date: NaiveDate,
    pub reservation_id: Uuid,
    pub accepted: bool,
    /// Why the line was refused, or skipped.
    pub refusal: Option<Refusal>,
    /// A day of a period the unit is closed: not written, and it refuses
    /// nothing.
    #[serde(default)]
    pub skipped: bool,
    /// Accepted on a full day: on the waiting list, at this position.
    #[serde(default)]
    pub waiting_position: Option<u32>,
    /// Booked in a prepaid unit: held until its prepayment invoice is paid.
    #[serde(default)]
    pub awaiting_payment: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BasketOutcome {
    pub basket_id: Uuid,
    pub family_id: Uuid,
    pub status: BasketStatus,
    pub lines: Vec<LineOutcome>,
    /// The prepayment invoices of its prepaid lines, one per commune: paid
    /// within the hour, or the lines are released. Not kept in the receipt
    /// (their ids follow from the basket's).
    #[serde(default, skip)]
    pub prepayment_invoices: Vec<Uuid>,
}

/// A line's verdict before anything is written.
#[derive(Clone)]
struct Checked {
    outcome: LineOutcome,
    append: Option<StreamAppend>,
    /// A booking of a day that counts its places: what taking one, or a
    /// ticket on the waiting list, needs.
    counted: Option<Counted>,
}

/// A booking's reservation as it was checked, the context it was checked
/// in and what it asks of the day's places.
#[derive(Clone)]
struct Counted {
    reservation: Reservation,
    version: usize,
    context: BookingContext,
    asks: Asks,
    origin: Origin,
}

/// What a booking asks of its day's places.
#[derive(Clone, Copy)]
enum Asks {
    /// One of so many places, or a ticket on the waiting list.
    Place(u32),
    /// To be counted in the run of an allocated window.
    Allocation(Uuid),
}

pub async fn submit(
    commands: &Commands,
    basket: Basket,
    metadata: &Metadata,
) -> Result<BasketOutcome, ApiError> {
    if basket.lines.is_empty() {
        return Err(ApiError::Validation(say("api.basket_empty", &[])));
    }
    if basket.lines.len() > MAX_LINES {
        return Err(ApiError::Validation(say(
            "api.basket_too_big",
            &[("max", &MAX_LINES), ("count", &basket.lines.len())],
        )));
    }
    let ids = basket
        .lines
        .iter()
        .map(|l| reservation_id(l.child_id, l.unit_id, l.date))
        .collect();
    // A basket that only books is first checked as if its reservations
    // were new, as they are when bookings open: its prelude then reads the
    // family and the units, not the reservations. That check stands only
    // if it accepts every line and its write goes through. Writing the
    // first event of a reservation that exists, or a receipt under a
    // basket id already used, breaks a unique key and the basket is read
    // again in full; a refusal may owe its reason to a reservation's real
    // state, so it is checked again in full as well.
    let presume_new = basket.lines.iter().all(|l| l.action == BasketAction::Book);
    let replayed = std::sync::atomic::AtomicBool::new(false);
    let outcome = commands
        .write(Submit {
            basket: &basket,
            ids,
            presume_new,
            metadata,
            replayed: &replayed,
        })
        .await;
    counted(&outcome, replayed.into_inner());
    outcome
}

/// Counts a basket by its answer, and the lines it wrote (none when it
/// answered as the first submission of its id did).
fn counted(outcome: &Result<BasketOutcome, ApiError>, replayed: bool) {
    let status = match outcome {
        Ok(_) if replayed => "replayed",
        Ok(outcome) => match outcome.status {
            BasketStatus::Accepted => "accepted",
            BasketStatus::Partial => "partial",
            BasketStatus::Rejected => "rejected",
        },
        Err(_) => "error",
    };
    metrics::counter!(crate::metrics::BASKETS, "status" => status).increment(1);
    if let (Ok(outcome), false) = (outcome, replayed) {
        let written = match outcome.status {
            BasketStatus::Rejected => 0,
            _ => outcome.lines.iter().filter(|l| l.accepted && !l.skipped).count(),
        };
        metrics::counter!(crate::metrics::LINES_WRITTEN).increment(written as u64);
    }
}

/// A basket's validation, as the write path attempts it.
struct Submit<'a> {
    basket: &'a Basket,
    /// Each line's reservation.
    ids: Vec<Uuid>,
    presume_new: bool,
    metadata: &'a Metadata,
    /// Set when the basket answers as its id's first submission did.
    replayed: &'a std::sync::atomic::AtomicBool,
}

impl Write for Submit<'_> {
    type Answer = BasketOutcome;

    async fn attempt(&mut self, work: &mut Work<'_>) -> Result<BasketOutcome, Failure> {
        let (commands, basket, ids) = (work.commands(), self.basket, &self.ids);
        let presumed = self.presume_new && work.attempt() == 0;
        let prelude = if presumed {
            Prelude::presuming_new(commands, basket, ids).await?
        } else {
            Prelude::read(commands, basket, ids).await?
        };
        if let Some(stored) = prelude.stored {
            if stored.family_id != basket.family_id {
                return Err(ApiError::Conflict(say("api.basket_id_used", &[("id", &basket.id)])).into());
            }
            self.replayed.store(true, std::sync::atomic::Ordering::Relaxed);
            return Ok(stored);
        }
        let checked = check(commands, basket, ids, prelude).await?;
        if presumed && refused(&checked) > 0 {
            return Err(Failure::Again);
        }
        // The days that count their places are taken last, under their
        // locks, by the writer that commits baskets of the same days
        // together, and only for a basket that will be written.
        if status_of(&checked, basket.keep_valid_lines) != BasketStatus::Rejected
            && checked.iter().any(|c| c.counted.is_some())
        {
            let job = together::Job::new(basket, checked, self.metadata);
            let written = commands.together().write(job).await?;
            work.committed(written.position, &[Reservation::TYPE, Places::TYPE]);
            return Ok(written.outcome);
        }
        let (outcome, streams) = finish(basket.id, basket.family_id, basket.keep_valid_lines, checked);
        if outcome.status == BasketStatus::Rejected {
            return Ok(outcome);
        }
        work.append(streams, self.metadata)?;
        // The receipt commits with the lines, in their statement: a
        // basket retried, or submitted twice at once, answers as the first.
        let receipt = sqlx::types::Json(Receipt::from(&outcome));
        let (basket_id, family_id) = (outcome.basket_id, outcome.family_id);
        work.alongside(Alongside {
            statement: "INSERT INTO baskets (basket_id, family_id, outcome) VALUES ($8, $9, $10)",
            bind: Box::new(move |query| query.bind(basket_id).bind(family_id).bind(receipt)),
        });
        Ok(outcome)
    }

    fn contended(&self) -> String {
        format!(
            "basket {} kept conflicting with other bookings; try again",
            self.basket.id
        )
    }
}

/// The lines refused. A skipped day owes its reason to the calendar, never
/// to a reservation's state: it needs no second look, and refuses nothing.
fn refused(checked: &[Checked]) -> usize {
    checked
        .iter()
        .filter(|c| !c.outcome.accepted && !c.outcome.skipped)
        .count()
}

/// What becomes of a basket whose lines are so checked.
fn status_of(checked: &[Checked], keep_valid_lines: bool) -> BasketStatus {
    let kept = checked.iter().filter(|c| c.outcome.accepted).count();
    match refused(checked) {
        _ if kept == 0 => BasketStatus::Rejected,
        0 => BasketStatus::Accepted,
        _ if keep_valid_lines => BasketStatus::Partial,
        _ => BasketStatus::Rejected,
    }
}

/// The basket's outcome and the reservations' events to append (none
/// when it is rejected).
fn finish(
    basket_id: Uuid,
    family_id: Uuid,
    keep_valid_lines: bool,
    checked: Vec<Checked>,
) -> (BasketOutcome, Vec<StreamAppend>) {
    let status = status_of(&checked, keep_valid_lines);
    let (outcomes, appends): (Vec<_>, Vec<_>) = checked.into_iter().map(|c| (c.outcome, c.append)).unzip();
    let outcome = BasketOutcome {
        basket_id,
        family_id,
        status,
        lines: outcomes,
        prepayment_invoices: Vec::new(),
    };
    let streams = match status {
        BasketStatus::Rejected => Vec::new(),
        _ => appends.into_iter().flatten().collect(),
    };
    (outcome, streams)
}

/// A basket's outcome as `baskets` keeps it.
pub(crate) fn outcome_of(stored: serde_json::Value) -> Result<BasketOutcome, ApiError> {
    serde_json::from_value::<Stored>(stored)
        .map(BasketOutcome::from)
        .map_err(|e| ApiError::Internal(format!("a basket's receipt: {e}")))
}

/// Checks every line against the state the prelude saw; nothing is
/// written.
async fn check(
    commands: &Commands,
    basket: &Basket,
    ids: &[Uuid],
    prelude: Prelude,
) -> Result<Vec<Checked>, ApiError> {
    let Prelude {
        family,
        family_events,
        family_key,
        units,
        reservations: mut loaded,
        ..
    } = prelude;
    let family = commands
        .family_after(basket.family_id, family, family_events, family_key)
        .await?;
    // The communes come from the cache at the versions just read.
    let mut unit_collectivity: HashMap<Uuid, Uuid> = HashMap::with_capacity(units.len());
    let mut collectivities: BTreeMap<Uuid, Arc<Collectivity>> = BTreeMap::new();
    for (unit_id, collectivity_id, version) in units {
        unit_collectivity.insert(unit_id, collectivity_id);
        if let std::collections::btree_map::Entry::Vacant(entry) = collectivities.entry(collectivity_id) {
            entry.insert(commands.collectivity_at(collectivity_id, version).await?);
        }
    }
    // What the family owes past due, read only at communes with a debt
    // rule.
    let mut overdue: HashMap<Uuid, i64> = HashMap::new();
    for (id, collectivity) in &collectivities {
        if collectivity.payment_rules.debt_limit_cents.is_some() {
            let owed =
                crate::services::billing::overdue_for(commands, basket.family_id, collectivity).await?;
            overdue.insert(*id, owed);
        }
    }

    let now = Utc::now();
    let mut checked = Vec::with_capacity(basket.lines.len());
    for (index, (line, &id)) in basket.lines.iter().zip(ids).enumerate() {
        let mut outcome = LineOutcome {
            index: index as i32,
            action: line.action,
            child_id: line.child_id,
            unit_id: line.unit_id,
            date: line.date,
            reservation_id: id,
            accepted: false,
            refusal: None,
            skipped: false,
            waiting_position: None,
            awaiting_payment: false,
        };
        // Taking the reservation out means a second line on the same slot
        // finds nothing: it is refused as a duplicate.
        let Some(current) = loaded.remove(&id) else {
            outcome.refusal = Some(Refusal::new(
                ErrorCode::DuplicateLine,
                say("api.duplicate_line", &[]),
            ));
            checked.push(Checked {
                outcome,
                append: None,
                counted: None,
            });
            continue;
        };
        let current_version = current.version;
        let mut counted: Option<Counted> = None;
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
                    overdue_cents: collectivity
                        .id
                        .and_then(|id| overdue.get(&id).copied())
                        .unwrap_or(0),
                };
                let places = collectivity.places_on(line.unit_id, line.date);
                let counts = line.action == BasketAction::Book
                    && (places.is_some() || collectivity.collecting(line.unit_id, line.date, now).is_some());
                if counts {
                    counted = Some(Counted {
                        reservation: current.aggregate.clone(),
                        version: current_version,
                        context: context.clone(),
                        asks: Asks::Place(places.unwrap_or(u32::MAX)),
                        origin: line.origin,
                    });
                }
                run(current.aggregate, command_of(line), &context).await
            }
        };
        match result {
            Ok(events) => {
                outcome.accepted = true;
                outcome.awaiting_payment = events.last() == Some(&ReservationEvent::PaymentAwaited);
                if let Some(ReservationEvent::AllocationRequested { window_id, .. }) = events.last() {
                    if let Some(counted) = counted.as_mut() {
                        counted.asks = Asks::Allocation(*window_id);
                    }
                }
                let append = StreamAppend::new::<Reservation>(id.to_string(), current_version, &events)?;
                checked.push(Checked {
                    outcome,
                    append: Some(append),
                    counted,
                });
            }
            Err(error) => {
                outcome.skipped =
                    line.skip_if_closed() && matches!(error, ReservationError::UnitClosed { .. });
                outcome.refusal = Some(Refusal::from(&error));
                checked.push(Checked {
                    outcome,
                    append: None,
                    counted: None,
                });
            }
        }
    }
    Ok(checked)
}

/// What a line asks of its reservation.
fn command_of(line: &BasketLine) -> ReservationCommand {
    match line.action {
        BasketAction::Book => ReservationCommand::Request {
            child_id: line.child_id,
            unit_id: line.unit_id,
            date: line.date,
            origin: line.origin,
        },
        BasketAction::Cancel => ReservationCommand::Cancel,
    }
}

/// The bookings of days that count their places take a place each, or a
/// ticket on the day's waiting list (their reservations' events then say
/// so), and the requests of an allocated window are collected for its run,
/// on the days as read under their locks (see `services::places`): each
/// day's events, after the version it was at. A line the day cannot take
/// (its waiting list is full, its allocation has just run) is refused.
async fn take_on(
    read: &mut HashMap<Uuid, Loaded<Places>>,
    checked: &mut [Checked],
) -> Result<HashMap<Uuid, (usize, Vec<PlacesEvent>)>, Failure> {
    let mut taken: HashMap<Uuid, (usize, Vec<PlacesEvent>)> = HashMap::new();
    for line in checked.iter_mut() {
        let Some(counted) = line.counted.take() else {
            continue;
        };
        let outcome = &mut line.outcome;
        let id = places_id(outcome.unit_id, outcome.date);
        let day = read
            .get_mut(&id)
            .ok_or_else(|| Failure::Refused(ApiError::Internal(format!("places {id} were not read"))))?;
        let before = day.version;
        let take = match counted.asks {
            Asks::Place(places) => PlacesCommand::Take {
                reservation_id: outcome.reservation_id,
                unit_id: outcome.unit_id,
                date: outcome.date,
                places,
            },
            Asks::Allocation(window_id) => PlacesCommand::Collect {
                reservation_id: outcome.reservation_id,
                unit_id: outcome.unit_id,
                date: outcome.date,
                window_id,
            },
        };
        let events = match places::decide(day, take).await {
            Ok(events) => events,
            Err(error) => {
                outcome.accepted = false;
                outcome.refusal = Some(Refusal::from(&ReservationError::from(error)));
                line.append = None;
                continue;
            }
        };
        if let Some(&PlacesEvent::WaitListJoined { ticket, position, .. }) = events.last() {
            let join = ReservationCommand::JoinWaitingList {
                child_id: outcome.child_id,
                unit_id: outcome.unit_id,
                date: outcome.date,
                origin: counted.origin,
                ticket,
                position,
            };
            // The checks of the request, in the same context: they passed.
            let waiting = run(counted.reservation, join, &counted.context)
                .await
                .map_err(|e| {
                    Failure::Refused(ApiError::Internal(format!(
                        "a checked booking failed to wait: {e}"
                    )))
                })?;
            line.append = Some(StreamAppend::new::<Reservation>(
                outcome.reservation_id.to_string(),
                counted.version,
                &waiting,
            )?);
            outcome.waiting_position = Some(position);
        }
        taken
            .entry(id)
            .or_insert_with(|| (before, Vec::new()))
            .1
            .extend(events);
    }
    Ok(taken)
}

/// Runs a command on a line's reservation; the events to append, or the
/// domain's refusal.
async fn run(
    mut reservation: Reservation,
    command: ReservationCommand,
    context: &BookingContext,
) -> Result<Vec<ReservationEvent>, ReservationError> {
    let sink = EventSink::default();
    reservation.handle(command, context, &sink).await?;
    Ok(sink.collect().await)
}
