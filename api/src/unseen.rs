//! Read-your-writes at the next read: what a write's answer did not wait
//! for, kept for the queries of those it concerns.
//!
//! A write waits only for the read models its answer reads
//! ([`crate::services::write::Write::reads`]). An agent's decision answers
//! with the reservation as decided, folded from its events: it need not
//! wait for the work queue or the calendar, and during a morning of
//! approvals that wait, one projection batch after each commit, was most
//! of a decision's time. The screens that show it still must: the agent's
//! next look at the work queue, the family's at its calendar, a colleague's
//! at the commune's. So the write leaves its position here for each reader
//! it concerns (its own account, and the family and commune the use case
//! names), and a query of one of them first waits, bounded as a write's
//! wait is, until those read models include it.
//!
//! Kept in this process: with several servers, route an account to one
//! server (see `docs/operations.md`), or another server's query may not
//! wait.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use espace_famille_projections::store::Position;
use uuid::Uuid;

use crate::auth::accounts::Grant;
use crate::auth::identity::Identity;

/// Who may read what a write changed, and so waits for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reader {
    Account(Uuid),
    /// The guardians of a family.
    Family(Uuid),
    /// A commune's agents and auditors.
    Collectivity(Uuid),
}

impl Reader {
    /// The readers a caller's query is one of: its account and what its
    /// grants let it read.
    pub fn of(identity: &Identity) -> Vec<Reader> {
        let mut readers = vec![Reader::Account(identity.account_id)];
        readers.extend(identity.grants.iter().filter_map(|grant| match grant {
            Grant::Parent(family) => Some(Reader::Family(*family)),
            Grant::Agent(collectivity) | Grant::Auditor(Some(collectivity)) => {
                Some(Reader::Collectivity(*collectivity))
            }
            Grant::Admin | Grant::Auditor(None) => None,
        }));
        readers
    }
}

/// What one reader's next query waits for.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    pub position: Position,
    pub read_models: Vec<&'static str>,
    since: Instant,
}

/// The readers with writes their read models may not show yet.
pub struct Unseen {
    pending: Mutex<Kept>,
    /// How long an entry is kept: a query waits no longer than a write
    /// would have, so an older one has nothing left to wait for.
    keep: Duration,
}

/// The entries, and how many there may be before the old ones are
/// dropped: twice as many as stayed the last time, so that a rush of
/// fresh entries costs a pass over them now and then, not at each write.
struct Kept {
    entries: HashMap<Reader, Pending>,
    prune_above: usize,
}

/// The fewest entries the old ones are dropped past.
const PRUNE_ABOVE: usize = 10_000;

impl Unseen {
    pub fn new(keep: Duration) -> Unseen {
        Unseen {
            pending: Mutex::new(Kept {
                entries: HashMap::new(),
                prune_above: PRUNE_ABOVE,
            }),
            keep,
        }
    }

    /// Records that these readers' next query waits until `read_models`
    /// include `position` (with what each already waits for).
    pub fn remember(&self, readers: &[Reader], position: Position, read_models: &[&'static str]) {
        if readers.is_empty() || read_models.is_empty() {
            return;
        }
        let now = Instant::now();
        let mut kept = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if kept.entries.len() > kept.prune_above {
            kept.entries.retain(|_, p| now - p.since < self.keep);
            kept.prune_above = PRUNE_ABOVE.max(2 * kept.entries.len());
        }
        for reader in readers {
            let entry = kept.entries.entry(*reader).or_insert_with(|| Pending {
                position,
                read_models: Vec::new(),
                since: now,
            });
            entry.position = entry.position.max(position);
            entry.since = now;
            for name in read_models {
                if !entry.read_models.contains(name) {
                    entry.read_models.push(name);
                }
            }
        }
    }

    /// What a query of these readers waits for: the furthest position any
    /// of them left, and every read model named.
    pub fn pending(&self, readers: &[Reader]) -> Option<Pending> {
        let now = Instant::now();
        let mut kept = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        let mut merged: Option<Pending> = None;
        for reader in readers {
            let Some(entry) = kept.entries.get(reader) else {
                continue;
            };
            if now - entry.since >= self.keep {
                kept.entries.remove(reader);
                continue;
            }
            match &mut merged {
                None => merged = Some(entry.clone()),
                Some(merged) => {
                    merged.position = merged.position.max(entry.position);
                    for name in &entry.read_models {
                        if !merged.read_models.contains(name) {
                            merged.read_models.push(name);
                        }
                    }
                }
            }
        }
        merged
    }

    /// Forgets what these readers waited for once their read models
    /// include `position`; an entry moved past it since stays.
    pub fn seen(&self, readers: &[Reader], position: Position) {
        let mut kept = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        for reader in readers {
            if kept.entries.get(reader).is_some_and(|p| p.position <= position) {
                kept.entries.remove(reader);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(global_position: i64) -> Position {
        Position {
            transaction_id: global_position,
            global_position,
        }
    }

    #[test]
    fn a_query_waits_for_the_furthest_write_of_any_reader_it_is() {
        let unseen = Unseen::new(Duration::from_secs(5));
        let (agent, family, other) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        unseen.remember(
            &[Reader::Account(agent), Reader::Family(family)],
            at(10),
            &["calendar"],
        );
        unseen.remember(&[Reader::Account(agent)], at(12), &["agent_work_queue"]);
        let waited = unseen.pending(&[Reader::Account(agent)]).unwrap();
        assert_eq!(waited.position, at(12));
        assert_eq!(waited.read_models, ["calendar", "agent_work_queue"]);
        let waited = unseen
            .pending(&[Reader::Account(other), Reader::Family(family)])
            .unwrap();
        assert_eq!((waited.position, waited.read_models), (at(10), vec!["calendar"]));
        assert_eq!(unseen.pending(&[Reader::Account(other)]), None);

        // Seen up to 10: the family has nothing left, the agent still 12.
        let readers = [Reader::Account(agent), Reader::Family(family)];
        unseen.seen(&readers, at(10));
        assert_eq!(unseen.pending(&[Reader::Family(family)]), None);
        assert_eq!(unseen.pending(&readers).unwrap().position, at(12));
    }

    #[test]
    fn an_entry_older_than_a_write_would_wait_is_dropped() {
        let unseen = Unseen::new(Duration::ZERO);
        let agent = Uuid::new_v4();
        unseen.remember(&[Reader::Account(agent)], at(1), &["calendar"]);
        assert_eq!(unseen.pending(&[Reader::Account(agent)]), None);
    }

    #[test]
    fn old_entries_are_dropped_past_a_bound_that_grows_with_the_fresh_ones() {
        let unseen = Unseen::new(Duration::from_millis(300));
        let families: Vec<Reader> = (0..=PRUNE_ABOVE)
            .map(|_| Reader::Family(Uuid::new_v4()))
            .collect();
        unseen.remember(&families, at(1), &["calendar"]);
        std::thread::sleep(Duration::from_millis(350));
        // Fresh ones past the bound: the old are dropped, the fresh stay,
        // and the next pass waits for twice as many.
        let fresh: Vec<Reader> = (0..10).map(|_| Reader::Family(Uuid::new_v4())).collect();
        unseen.remember(&fresh, at(2), &["calendar"]);
        let kept = unseen.pending.lock().unwrap();
        assert_eq!(kept.entries.len(), fresh.len());
        assert_eq!(kept.prune_above, PRUNE_ABOVE);
        drop(kept);
        let many: Vec<Reader> = (0..=PRUNE_ABOVE)
            .map(|_| Reader::Family(Uuid::new_v4()))
            .collect();
        unseen.remember(&many, at(3), &["calendar"]);
        unseen.remember(&[Reader::Account(Uuid::new_v4())], at(4), &["calendar"]);
        let kept = unseen.pending.lock().unwrap();
        assert_eq!(kept.entries.len(), fresh.len() + many.len() + 1);
        assert_eq!(kept.prune_above, 2 * (fresh.len() + many.len()));
    }
}
