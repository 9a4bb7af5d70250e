//! Aggregates kept in memory, by stream version.
//!
//! A commune's rules and a family's children are read by every basket and
//! every calendar query, and change rarely. Loading them means reading and
//! decoding their whole stream (and, for a family, fetching its key to open
//! its personal values). The cache keeps the last state built per stream
//! with the sequence of its last event: the caller learns the stream's
//! current version (one index probe, often folded into a query it makes
//! anyway) and gets the cached state only if it is exactly that version. A
//! cached state is never newer or older than the store says.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use uuid::Uuid;

pub struct AggregateCache<A> {
    entries: Mutex<HashMap<Uuid, (usize, Arc<A>)>>,
    capacity: usize,
}

impl<A> AggregateCache<A> {
    pub fn new(capacity: usize) -> Self {
        AggregateCache {
            entries: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    /// The state of stream `id` at `version`, if that is what is cached. A
    /// state of another version is dropped: it will not be served again, and
    /// an erased family's values do not linger in memory.
    pub fn get(&self, id: Uuid, version: usize) -> Option<Arc<A>> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        match entries.get(&id) {
            Some((cached, state)) if *cached == version => Some(state.clone()),
            Some(_) => {
                entries.remove(&id);
                None
            }
            None => None,
        }
    }

    /// Whatever state of stream `id` is kept, with its version: a caller
    /// that reads the events after that version brings it up to date.
    pub fn latest(&self, id: Uuid) -> Option<(usize, Arc<A>)> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.get(&id).map(|(version, state)| (*version, state.clone()))
    }

    /// Keeps the state of stream `id` at `version`, unless a later version
    /// is already kept. When full, an arbitrary other stream makes room.
    pub fn put(&self, id: Uuid, version: usize, state: Arc<A>) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.get(&id).is_some_and(|(cached, _)| *cached > version) {
            return;
        }
        if !entries.contains_key(&id) && entries.len() >= self.capacity {
            if let Some(victim) = entries.keys().next().copied() {
                entries.remove(&victim);
            }
        }
        entries.insert(id, (version, state));
    }

    /// Forgets stream `id` (an erased family, say).
    pub fn forget(&self, id: Uuid) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.remove(&id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_is_returned_only_at_its_exact_version() {
        let cache = AggregateCache::new(10);
        let id = Uuid::new_v4();
        cache.put(id, 3, Arc::new("three"));
        assert_eq!(cache.get(id, 3).as_deref(), Some(&"three"));
        assert_eq!(cache.get(id, 4), None, "the stream moved on");
        assert_eq!(cache.get(id, 3), None, "a stale state is dropped when found");
        assert_eq!(cache.get(Uuid::new_v4(), 3), None);
    }

    #[test]
    fn an_older_state_never_replaces_a_newer_one() {
        let cache = AggregateCache::new(10);
        let id = Uuid::new_v4();
        cache.put(id, 5, Arc::new("five"));
        cache.put(id, 4, Arc::new("four"));
        assert_eq!(cache.get(id, 5).as_deref(), Some(&"five"), "kept, not replaced");
        cache.put(id, 6, Arc::new("six"));
        assert_eq!(cache.get(id, 6).as_deref(), Some(&"six"));
        assert_eq!(cache.latest(id).map(|(v, s)| (v, *s)), Some((6, "six")));
        cache.forget(id);
        assert_eq!(cache.get(id, 6), None);
        assert!(cache.latest(id).is_none());
    }

    #[test]
    fn the_cache_holds_at_most_its_capacity() {
        let cache = AggregateCache::new(3);
        let ids: Vec<Uuid> = (0..5).map(|_| Uuid::new_v4()).collect();
        for (n, id) in ids.iter().enumerate() {
            cache.put(*id, 1, Arc::new(n));
        }
        let kept = ids.iter().filter(|id| cache.get(**id, 1).is_some()).count();
        assert_eq!(kept, 3);
        assert!(cache.get(ids[4], 1).is_some(), "the last one put is kept");
    }
}
