//! The places of a unit on a day: who holds one and who waits, in order.
//!
//! A unit that counts its places (see `Collectivity::places_on`) has one
//! stream per day, whose id is derived from the unit and the date. Every
//! booking of that day takes a place or a ticket on the waiting list in
//! this stream, in the same transaction as the reservation's own events:
//! the stream's optimistic check is what keeps two bookings from taking
//! the last place, and its order is the order in which places were given.
//! The reservations stay the truth of what a family booked; the stream is
//! brought in line with them when they change (see [`PlacesCommand::Reconcile`]).

use std::collections::{BTreeSet, VecDeque};

use chrono::NaiveDate;
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::allocation::{draw, seed_to_hex, Criterion, Request};

/// Namespace of the places' stream ids; never change it.
const PLACES_NAMESPACE: Uuid = Uuid::from_u128(0x2b9e_47d1_c3a0_4f86_8e15_7a6c_d902_3b48);

/// The id of the stream of `unit`'s places on `date`.
pub fn places_id(unit_id: Uuid, date: NaiveDate) -> Uuid {
    let mut name = Vec::with_capacity(26);
    name.extend_from_slice(unit_id.as_bytes());
    name.extend_from_slice(date.format("%Y-%m-%d").to_string().as_bytes());
    Uuid::new_v5(&PLACES_NAMESPACE, &name)
}

/// The longest waiting list of a day.
pub const MAX_WAITING: usize = 5_000;

/// One booking waiting, with its ticket: the how-manieth it joined the
/// list of that day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Waiting {
    pub reservation_id: Uuid,
    pub ticket: u32,
}

/// A request collected by an allocated window, not served yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Collected {
    pub reservation_id: Uuid,
    pub window_id: Uuid,
}

/// A unit's places on a day, as their events built them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Places {
    /// The reservations that hold a place.
    pub holders: BTreeSet<Uuid>,
    /// Those waiting, first first.
    pub waiting: VecDeque<Waiting>,
    /// Tickets given so far.
    pub tickets: u32,
    /// Requests collected for an allocation, in the order they came.
    pub collected: Vec<Collected>,
    /// The allocated windows whose run for this day took place.
    pub runs: BTreeSet<Uuid>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PlacesCommand {
    /// A booking asks for one of `places`: it takes one if one is free and
    /// nobody waits, or joins the waiting list.
    Take {
        reservation_id: Uuid,
        unit_id: Uuid,
        date: NaiveDate,
        places: u32,
    },
    /// The reservation, as it stands now, holds a booking (`holds`) or
    /// waits (`waits`), or neither: what it held that it no longer does is
    /// let go.
    Reconcile {
        reservation_id: Uuid,
        holds: bool,
        waits: bool,
    },
    /// The first one waiting takes a free place of `places` (`None`: no
    /// limit any more).
    Promote {
        reservation_id: Uuid,
        places: Option<u32>,
    },
    /// A request made while an allocated window is open: kept for its run.
    Collect {
        reservation_id: Uuid,
        unit_id: Uuid,
        date: NaiveDate,
        window_id: Uuid,
    },
    /// The window's run for this day: `requests` (those collected that
    /// still ask, with the criteria each meets) ranked by [`draw`], the
    /// free places of `places` given in that order, the rest waiting in it.
    Allocate {
        run_id: Uuid,
        window_id: Uuid,
        unit_id: Uuid,
        date: NaiveDate,
        seed: Vec<u8>,
        criteria: Vec<Criterion>,
        places: Option<u32>,
        requests: Vec<Request>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PlacesEvent {
    /// A booking took a place: `holders` of `places` are now taken.
    PlaceTaken {
        reservation_id: Uuid,
        unit_id: Uuid,
        date: NaiveDate,
        holders: u32,
        places: u32,
    },
    /// Every place was taken, or others were waiting: the booking waits,
    /// `position`th, with the day's `ticket`th ticket.
    WaitListJoined {
        reservation_id: Uuid,
        unit_id: Uuid,
        date: NaiveDate,
        ticket: u32,
        position: u32,
    },
    /// A holder let its place go (cancelled, refused by an agent...).
    PlaceFreed { reservation_id: Uuid },
    /// A booking no longer waits (withdrawn, the day closed...).
    WaitListLeft { reservation_id: Uuid },
    /// The first one waiting took a free place: `holders` are now taken.
    Promoted {
        reservation_id: Uuid,
        holders: u32,
        places: Option<u32>,
    },
    /// A request collected for the allocation of `window_id`.
    RequestCollected {
        reservation_id: Uuid,
        unit_id: Uuid,
        date: NaiveDate,
        window_id: Uuid,
    },
    /// An allocation run, with all it took to make it (the seed revealed,
    /// the criteria, the requests and what each met) and its outcome: the
    /// first `placed` of `order` hold a place, the others wait in order
    /// from `first_ticket` on. Anyone recomputes `order` with [`draw`].
    AllocationRun {
        run_id: Uuid,
        window_id: Uuid,
        unit_id: Uuid,
        date: NaiveDate,
        seed: String,
        criteria: Vec<Criterion>,
        places: Option<u32>,
        requests: Vec<Request>,
        order: Vec<Uuid>,
        placed: u32,
        first_ticket: u32,
    },
}

impl DomainEvent for PlacesEvent {
    fn event_type(&self) -> String {
        match self {
            PlacesEvent::PlaceTaken { .. } => "PlaceTaken",
            PlacesEvent::WaitListJoined { .. } => "WaitListJoined",
            PlacesEvent::PlaceFreed { .. } => "PlaceFreed",
            PlacesEvent::WaitListLeft { .. } => "WaitListLeft",
            PlacesEvent::Promoted { .. } => "Promoted",
            PlacesEvent::RequestCollected { .. } => "RequestCollected",
            PlacesEvent::AllocationRun { .. } => "AllocationRun",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlacesError {
    #[error("the waiting list of this day is full ({MAX_WAITING})")]
    WaitingListFull,
    #[error("{0} is not first on the waiting list, or no place is free")]
    NotNext(Uuid),
    #[error("the allocation of this day has taken place: requests are no longer collected")]
    AllocationClosed,
}

impl From<PlacesError> for crate::reservation::ReservationError {
    fn from(error: PlacesError) -> Self {
        match error {
            PlacesError::WaitingListFull => crate::reservation::ReservationError::WaitingListFull,
            PlacesError::NotNext(_) => crate::reservation::ReservationError::NotWaitListed,
            PlacesError::AllocationClosed => crate::reservation::ReservationError::AllocationClosed,
        }
    }
}

impl Places {
    fn count(n: usize) -> u32 {
        u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// Whether a place is free among `places` (`None`: no limit).
    pub fn has_room(&self, places: Option<u32>) -> bool {
        places.is_none_or(|places| Self::count(self.holders.len()) < places)
    }

    /// The first one waiting, if a place is free for it.
    pub fn next(&self, places: Option<u32>) -> Option<Uuid> {
        self.waiting
            .front()
            .filter(|_| self.has_room(places))
            .map(|w| w.reservation_id)
    }

    /// Where `reservation_id` waits, from 1.
    pub fn position(&self, reservation_id: Uuid) -> Option<u32> {
        self.waiting
            .iter()
            .position(|w| w.reservation_id == reservation_id)
            .map(|i| Self::count(i + 1))
    }

    /// What letting go of what `reservation_id` no longer holds records.
    fn reconcile(&self, reservation_id: Uuid, holds: bool, waits: bool) -> Option<PlacesEvent> {
        if !holds && self.holders.contains(&reservation_id) {
            return Some(PlacesEvent::PlaceFreed { reservation_id });
        }
        if !waits && self.position(reservation_id).is_some() {
            return Some(PlacesEvent::WaitListLeft { reservation_id });
        }
        None
    }
}

impl Aggregate for Places {
    const TYPE: &'static str = "Places";
    type Command = PlacesCommand;
    type Event = PlacesEvent;
    type Error = PlacesError;
    type Services = ();

    async fn handle(
        &mut self,
        command: PlacesCommand,
        _: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), PlacesError> {
        match command {
            PlacesCommand::Take {
                reservation_id,
                unit_id,
                date,
                places,
            } => {
                // What it held before, not yet let go, is a booking since
                // cancelled: booked again, it goes to the back. Every check
                // comes before the first event.
                let stale = self.reconcile(reservation_id, false, false);
                let (holders, waiting) = match stale {
                    Some(PlacesEvent::PlaceFreed { .. }) => (self.holders.len() - 1, self.waiting.len()),
                    Some(_) => (self.holders.len(), self.waiting.len() - 1),
                    None => (self.holders.len(), self.waiting.len()),
                };
                let takes = waiting == 0 && Self::count(holders) < places;
                if !takes && waiting >= MAX_WAITING {
                    return Err(PlacesError::WaitingListFull);
                }
                if let Some(event) = stale {
                    sink.write(event, self).await;
                }
                let event = if takes {
                    PlacesEvent::PlaceTaken {
                        reservation_id,
                        unit_id,
                        date,
                        holders: Self::count(holders + 1),
                        places,
                    }
                } else {
                    PlacesEvent::WaitListJoined {
                        reservation_id,
                        unit_id,
                        date,
                        ticket: self.tickets + 1,
                        position: Self::count(waiting + 1),
                    }
                };
                sink.write(event, self).await;
            }
            PlacesCommand::Reconcile {
                reservation_id,
                holds,
                waits,
            } => {
                if let Some(event) = self.reconcile(reservation_id, holds, waits) {
                    sink.write(event, self).await;
                }
            }
            PlacesCommand::Collect {
                reservation_id,
                unit_id,
                date,
                window_id,
            } => {
                if self.runs.contains(&window_id) {
                    return Err(PlacesError::AllocationClosed);
                }
                if !self.collected.iter().any(|c| c.reservation_id == reservation_id) {
                    sink.write(
                        PlacesEvent::RequestCollected {
                            reservation_id,
                            unit_id,
                            date,
                            window_id,
                        },
                        self,
                    )
                    .await;
                }
            }
            PlacesCommand::Allocate {
                run_id,
                window_id,
                unit_id,
                date,
                seed,
                criteria,
                places,
                requests,
            } => {
                // Run once.
                if self.runs.contains(&window_id) {
                    return Ok(());
                }
                let order = draw(&seed, &criteria, &requests);
                // Free places go to the draw only if nobody waits already.
                let free = match places {
                    _ if !self.waiting.is_empty() => 0,
                    Some(places) => places.saturating_sub(Self::count(self.holders.len())),
                    None => Self::count(order.len()),
                };
                let placed = free.min(Self::count(order.len()));
                if self.waiting.len() + order.len() - placed as usize > MAX_WAITING {
                    return Err(PlacesError::WaitingListFull);
                }
                let event = PlacesEvent::AllocationRun {
                    run_id,
                    window_id,
                    unit_id,
                    date,
                    seed: seed_to_hex(&seed),
                    criteria,
                    places,
                    requests,
                    order,
                    placed,
                    first_ticket: self.tickets + 1,
                };
                sink.write(event, self).await;
            }
            PlacesCommand::Promote {
                reservation_id,
                places,
            } => {
                if self.next(places) != Some(reservation_id) {
                    return Err(PlacesError::NotNext(reservation_id));
                }
                let event = PlacesEvent::Promoted {
                    reservation_id,
                    holders: Self::count(self.holders.len() + 1),
                    places,
                };
                sink.write(event, self).await;
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: PlacesEvent) {
        match event {
            PlacesEvent::PlaceTaken { reservation_id, .. } => {
                self.holders.insert(reservation_id);
            }
            PlacesEvent::WaitListJoined {
                reservation_id,
                ticket,
                ..
            } => {
                self.tickets = self.tickets.max(ticket);
                self.waiting.push_back(Waiting {
                    reservation_id,
                    ticket,
                });
            }
            PlacesEvent::PlaceFreed { reservation_id } => {
                self.holders.remove(&reservation_id);
            }
            PlacesEvent::WaitListLeft { reservation_id } => {
                self.waiting.retain(|w| w.reservation_id != reservation_id);
            }
            PlacesEvent::Promoted { reservation_id, .. } => {
                self.waiting.retain(|w| w.reservation_id != reservation_id);
                self.holders.insert(reservation_id);
            }
            PlacesEvent::RequestCollected {
                reservation_id,
                window_id,
                ..
            } => self.collected.push(Collected {
                reservation_id,
                window_id,
            }),
            PlacesEvent::AllocationRun {
                window_id,
                order,
                placed,
                first_ticket,
                ..
            } => {
                self.runs.insert(window_id);
                self.collected.retain(|c| c.window_id != window_id);
                let placed = placed as usize;
                self.holders.extend(order.iter().take(placed).copied());
                for (offset, reservation_id) in order.into_iter().skip(placed).enumerate() {
                    let ticket = first_ticket + Self::count(offset);
                    self.waiting.push_back(Waiting {
                        reservation_id,
                        ticket,
                    });
                    self.tickets = self.tickets.max(ticket);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
