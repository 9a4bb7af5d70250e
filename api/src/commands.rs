//! What every use case shares: the store's pool, the communes and
//! families kept in memory, the appender of single commands, and the wait
//! for read models after a write. The write path itself is
//! [`crate::services::write`]; the reads of aggregates are here.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use cqrs_es::Aggregate;
use espace_famille_domain::collectivity::Collectivity;
use espace_famille_domain::family::Family;
use espace_famille_domain::places::Places;
use espace_famille_domain::reservation::{Reservation, Slot};
use espace_famille_projections::store::{self, Metadata, Position};
use espace_famille_projections::{engine, personal};
use sqlx::PgPool;
use uuid::Uuid;

use crate::auth::identity::Actor;
use crate::cache::AggregateCache;
use crate::error::ApiError;
use crate::i18n::say;
use crate::unseen::{Reader, Unseen};

pub struct Commands {
    pub(crate) pool: PgPool,
    /// The longest a mutation waits for its read models.
    read_your_writes: Duration,
    /// Every read model, with the aggregate types it reads (`None`: all).
    read_models: Vec<(&'static str, Option<&'static [&'static str]>)>,
    checkpoints: engine::Checkpoints,
    /// Wakes the runners once a mutation's events are committed.
    announcer: engine::Announcer,
    /// Writes single commands, several in one statement when they arrive
    /// together.
    pub(crate) appender: store::Appender,
    collectivities_cache: AggregateCache<Collectivity>,
    families_cache: AggregateCache<Family>,
    /// The days' places a rush books into (see `services::places`).
    places_cache: AggregateCache<Places>,
    /// Commits the baskets that take places, several at once.
    together: crate::services::basket::together::Together,
    /// What writes left for their readers' next query (see [`crate::unseen`]).
    unseen: Unseen,
}

/// How many statements the single commands' writer runs at once.
const APPEND_WRITERS: usize = 4;

/// How many communes, and families, are kept in memory (see [`crate::cache`]).
const CACHED_COLLECTIVITIES: usize = 1_000;
const CACHED_FAMILIES: usize = 20_000;
const CACHED_PLACES: usize = 2_000;

/// Metadata for the events of one user request.
pub fn metadata(actor: Actor, correlation_id: Option<Uuid>) -> Metadata {
    let command_id = Uuid::new_v4();
    crate::logs::record_correlation(correlation_id.unwrap_or(command_id));
    Metadata {
        actor_id: actor.account_id.to_string(),
        actor_role: actor.role.to_string(),
        correlation_id: correlation_id.unwrap_or(command_id),
        causation_id: command_id,
        command_id,
        requested_at: Utc::now(),
    }
}

impl Commands {
    pub fn new(pool: PgPool, read_your_writes: Duration) -> Arc<Self> {
        Arc::new_cyclic(|commands| Commands {
            together: crate::services::basket::together::Together::start(commands.clone()),
            checkpoints: engine::Checkpoints::watch(pool.clone()),
            announcer: engine::Announcer::start(pool.clone()),
            appender: store::Appender::start(pool.clone(), APPEND_WRITERS),
            collectivities_cache: AggregateCache::new(CACHED_COLLECTIVITIES),
            families_cache: AggregateCache::new(CACHED_FAMILIES),
            places_cache: AggregateCache::new(CACHED_PLACES),
            pool,
            read_your_writes,
            unseen: Unseen::new(read_your_writes),
            read_models: espace_famille_projections::read_models()
                .iter()
                .map(|p| (p.name(), p.aggregate_types()))
                .collect(),
        })
    }

    /// Announces committed events of these aggregate types to the
    /// projection runners, then waits (bounded) until the read models that
    /// read them, among `reads` (none given: any), include `position`.
    /// The others that read them are left for the next query of `readers`
    /// (see [`crate::unseen`]). Every write calls it after its commit. A
    /// timeout is not an error: the write is committed, the answer may lag.
    pub async fn wait_for_read_models(
        &self,
        position: Position,
        written: &[&'static str],
        reads: Option<&[&str]>,
        readers: &[Reader],
    ) {
        self.announcer.announce(written);
        let waited = waited_for(&self.read_models, written, reads);
        if reads.is_some() {
            let unseen: Vec<&'static str> = waited_for(&self.read_models, written, None)
                .into_iter()
                .filter(|name| !waited.contains(name))
                .collect();
            self.unseen.remember(readers, position, &unseen);
        }
        if waited.is_empty() {
            return;
        }
        let reached = self
            .checkpoints
            .wait_for(position, &waited, self.read_your_writes)
            .await;
        if !reached {
            tracing::warn!(?position, "read models did not catch up in time");
        }
    }

    /// Waits (bounded, as a write does) until the read models include what
    /// these readers' writes left unseen: before a query, so that the
    /// screen after a write that did not wait shows it.
    pub async fn wait_for_unseen(&self, readers: &[Reader]) {
        let Some(pending) = self.unseen.pending(readers) else {
            return;
        };
        if self
            .checkpoints
            .wait_for(pending.position, &pending.read_models, self.read_your_writes)
            .await
        {
            self.unseen.seen(readers, pending.position);
        } else {
            tracing::warn!(position = ?pending.position, "read models did not catch up in time");
        }
    }

    /// Waits (bounded, as a write does) until these read models include
    /// every event committed so far: for a use case that reads a read
    /// model to decide. False when they did not catch up in time.
    pub async fn wait_for_everything(&self, read_models: &[&str]) -> Result<bool, ApiError> {
        let Some(head) = store::head(&self.pool).await? else {
            return Ok(true);
        };
        Ok(self
            .checkpoints
            .wait_for(head, read_models, self.read_your_writes)
            .await)
    }

    /// The writer of the baskets that take places.
    pub fn together(&self) -> &crate::services::basket::together::Together {
        &self.together
    }

    /// The places of a day kept in memory, with their version: a caller
    /// that reads the events after it brings them up to date.
    pub fn places_kept(&self, id: Uuid) -> Option<(usize, Arc<Places>)> {
        self.places_cache.latest(id)
    }

    /// Keeps the places of a day, as committed at `version`.
    pub fn keep_places(&self, id: Uuid, version: usize, places: &Places) {
        if version > 0 {
            self.places_cache.put(id, version, Arc::new(places.clone()));
        }
    }

    /// Drops a family kept in memory (once erased).
    pub fn forget_family(&self, id: Uuid) {
        self.families_cache.forget(id);
    }

    /// A commune as its events built it, for reading.
    pub async fn load_collectivity(&self, id: Uuid) -> Result<Collectivity, ApiError> {
        Ok((*self.current_collectivity(id).await?).clone())
    }

    /// A family as its events built it, for reading.
    pub async fn load_family(&self, id: Uuid) -> Result<Family, ApiError> {
        Ok((*self.current_family(id).await?).clone())
    }

    /// A commune at its current version, shared.
    pub async fn current_collectivity(&self, id: Uuid) -> Result<Arc<Collectivity>, ApiError> {
        let version = store::stream_version(&self.pool, Collectivity::TYPE, &id.to_string()).await?;
        self.collectivity_at(id, version).await
    }

    /// A family at its current version, shared.
    pub async fn current_family(&self, id: Uuid) -> Result<Arc<Family>, ApiError> {
        let version = store::stream_version(&self.pool, Family::TYPE, &id.to_string()).await?;
        self.family_at(id, version).await
    }

    /// A commune whose stream the caller has just seen at `version`: from
    /// the cache when it holds exactly that version, else loaded (and then
    /// possibly newer).
    pub async fn collectivity_at(&self, id: Uuid, version: usize) -> Result<Arc<Collectivity>, ApiError> {
        self.cached(
            &self.collectivities_cache,
            id,
            version,
            Collectivity::exists,
            "collectivity",
        )
        .await
    }

    /// A family whose stream the caller has just seen at `version`; as
    /// [`Commands::collectivity_at`].
    pub async fn family_at(&self, id: Uuid, version: usize) -> Result<Arc<Family>, ApiError> {
        self.cached(&self.families_cache, id, version, Family::exists, "family")
            .await
    }

    /// The family's kept state and its version (0 when none): a caller
    /// that reads the events after it hands them to [`Commands::family_after`].
    pub fn family_kept(&self, id: Uuid) -> (usize, Option<Arc<Family>>) {
        match self.families_cache.latest(id) {
            Some((version, state)) => (version, Some(state)),
            None => (0, None),
        }
    }

    /// The family brought up to date from `kept` (what
    /// [`Commands::family_kept`] returned) with the events that followed
    /// it, read by the caller along with the family's key. An erased family
    /// is loaded afresh instead: its kept state still holds the values
    /// the erasure made unreadable.
    pub async fn family_after(
        &self,
        id: Uuid,
        kept: (usize, Option<Arc<Family>>),
        events: Vec<store::StoredEvent>,
        key: Option<Vec<u8>>,
    ) -> Result<Arc<Family>, ApiError> {
        let (version, state) = kept;
        if events.is_empty() {
            return match state {
                Some(state) if version > 0 => Ok(state),
                _ => Err(ApiError::NotFound(say("api.no_family", &[("id", &id)]))),
            };
        }
        let key = key
            .map(|bytes| personal::FamilyKey::from_bytes(id, &bytes))
            .transpose()?;
        let mut loaded = store::Loaded {
            aggregate: state.map(|s| (*s).clone()).unwrap_or_default(),
            version,
        };
        loaded.apply_stored(&id.to_string(), events, key.as_ref())?;
        if loaded.aggregate.erased {
            self.families_cache.forget(id);
            return self.current_family(id).await;
        }
        if !Family::exists(&loaded.aggregate) {
            return Err(ApiError::NotFound(say("api.no_family", &[("id", &id)])));
        }
        let state = Arc::new(loaded.aggregate);
        self.families_cache.put(id, loaded.version, state.clone());
        Ok(state)
    }

    async fn cached<A: Aggregate>(
        &self,
        cache: &AggregateCache<A>,
        id: Uuid,
        version: usize,
        exists: fn(&A) -> bool,
        kind: &str,
    ) -> Result<Arc<A>, ApiError> {
        if version > 0 {
            if let Some(cached) = cache.get(id, version) {
                return Ok(cached);
            }
        }
        let loaded = store::load::<A>(&self.pool, &id.to_string()).await?;
        if !exists(&loaded.aggregate) {
            return Err(ApiError::NotFound(say(&format!("api.no_{kind}"), &[("id", &id)])));
        }
        let state = Arc::new(loaded.aggregate);
        cache.put(id, loaded.version, state.clone());
        Ok(state)
    }

    /// Refuses an id chosen by the client that already names something,
    /// whatever it names and whoever chose it. The events that introduce
    /// ids claim them in their own transaction (see the `claimed_ids`
    /// migration): this check gives the clear answer, the claim makes it
    /// hold under a race.
    pub async fn ensure_unclaimed(&self, id: Uuid) -> Result<(), ApiError> {
        if store::id_claimed(&self.pool, id).await? {
            return Err(ApiError::Conflict(say("api.id_used", &[("id", &id)])));
        }
        Ok(())
    }

    /// What a reservation is about, for authorising a request on it.
    pub async fn reservation_slot(&self, id: Uuid) -> Result<Slot, ApiError> {
        let loaded = store::load::<Reservation>(&self.pool, &id.to_string()).await?;
        loaded
            .aggregate
            .slot
            .ok_or_else(|| ApiError::NotFound(say("api.no_reservation", &[("id", &id)])))
    }
}

/// The read models a write of `written` aggregate types waits for: those
/// handed events of any of them, among `reads` (none given: any).
fn waited_for(
    read_models: &[(&'static str, Option<&'static [&'static str]>)],
    written: &[&str],
    reads: Option<&[&str]>,
) -> Vec<&'static str> {
    read_models
        .iter()
        .filter(|(_, types)| types.is_none_or(|types| types.iter().any(|t| written.contains(t))))
        .map(|(name, _)| *name)
        .filter(|name| reads.is_none_or(|reads| reads.contains(name)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::waited_for;

    #[test]
    fn a_write_waits_only_for_the_read_models_of_what_it_wrote_that_its_answer_reads() {
        let models: Vec<_> = espace_famille_projections::read_models()
            .iter()
            .map(|p| (p.name(), p.aggregate_types()))
            .collect();
        assert_eq!(waited_for(&models, &["Family"], None), ["directory"]);
        assert_eq!(
            waited_for(&models, &["Reservation"], None),
            ["calendar", "agent_work_queue", "attendance"]
        );
        assert_eq!(
            waited_for(&models, &["Reservation"], Some(&["calendar"])),
            ["calendar"]
        );
        assert!(waited_for(&models, &["Family"], Some(&["calendar"])).is_empty());
        // A read model that reads every type is waited for by every write.
        let everything = [("audit", None)];
        assert_eq!(waited_for(&everything, &["Family"], None), ["audit"]);
    }
}
