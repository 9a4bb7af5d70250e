//! The command side: runs domain commands against the event store and
//! returns once the read models the caller reads next include them.
//!
//! Collectivity commands go through postgres-es's framework (one aggregate
//! per commit). Family and reservation commands go through the store's own
//! append: a basket commits many reservation streams at once, a family's
//! personal values are encrypted with its key, and an activation commits its
//! event together with the account's password in one transaction.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, AggregateError};
use espace_famille_domain::collectivity::Collectivity;
use espace_famille_domain::family::{Family, FamilyCommand};
use espace_famille_domain::reservation::{Decision, Reservation, Slot};
use espace_famille_projections::store::{self, Metadata, Position, StoreError, StreamAppend};
use espace_famille_projections::{engine, personal};
use postgres_es::{postgres_cqrs, PostgresCqrs};
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::cache::AggregateCache;
use crate::error::ApiError;
use crate::identity::Actor;

/// How many times a command that lost an optimistic-concurrency race is
/// tried again (with fresh state) before the caller gets `CONFLICT`: one
/// policy for every write.
pub(crate) const CONFLICT_RETRIES: usize = 5;

pub struct Commands {
    pub(crate) pool: PgPool,
    collectivities: PostgresCqrs<Collectivity>,
    /// The longest a mutation waits for its read models.
    read_your_writes: Duration,
    /// The read models a mutation waits for: all of them, since any may be
    /// read next.
    read_models: Vec<&'static str>,
    checkpoints: engine::Checkpoints,
    /// Wakes the runners once a mutation's events are committed.
    announcer: engine::Announcer,
    /// Writes single commands, several in one statement when they arrive
    /// together.
    appender: store::Appender,
    collectivities_cache: AggregateCache<Collectivity>,
    families_cache: AggregateCache<Family>,
}

/// How many statements the single commands' writer runs at once.
const APPEND_WRITERS: usize = 4;

/// How many communes, and families, are kept in memory (see [`crate::cache`]).
const CACHED_COLLECTIVITIES: usize = 1_000;
const CACHED_FAMILIES: usize = 20_000;

/// Metadata for the events of one user request.
pub fn metadata(actor: Actor, correlation_id: Option<Uuid>) -> Metadata {
    let command_id = Uuid::new_v4();
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
        Arc::new(Commands {
            collectivities: postgres_cqrs(pool.clone(), vec![], ()),
            checkpoints: engine::Checkpoints::watch(pool.clone()),
            announcer: engine::Announcer::start(pool.clone()),
            appender: store::Appender::start(pool.clone(), APPEND_WRITERS),
            collectivities_cache: AggregateCache::new(CACHED_COLLECTIVITIES),
            families_cache: AggregateCache::new(CACHED_FAMILIES),
            pool,
            read_your_writes,
            read_models: espace_famille_projections::read_models()
                .iter()
                .map(|p| p.name())
                .collect(),
        })
    }

    pub async fn collectivity(
        &self,
        id: Uuid,
        command: <Collectivity as Aggregate>::Command,
        metadata: &Metadata,
    ) -> Result<(), ApiError> {
        self.execute(&self.collectivities, id, command, metadata).await
    }

    /// Runs a family command in its own transaction.
    pub async fn family(
        &self,
        id: Uuid,
        command: <Family as Aggregate>::Command,
        metadata: &Metadata,
    ) -> Result<(), ApiError> {
        for _ in 0..CONFLICT_RETRIES {
            let mut tx = self.pool.begin().await?;
            match self.family_in(&mut tx, id, command.clone(), metadata).await {
                Ok(position) => {
                    tx.commit().await?;
                    if let Some(position) = position {
                        self.wait_for_read_models(position, &[Family::TYPE]).await?;
                    }
                    return Ok(());
                }
                Err(Failure::Store(StoreError::Conflict)) => continue,
                Err(failure) => return Err(failure.into()),
            }
        }
        Err(ApiError::Conflict(format!(
            "family {id} kept changing; try again"
        )))
    }

    /// Runs a family command inside the caller's transaction; its personal
    /// values are encrypted with the family's key.
    pub async fn family_in(
        &self,
        conn: &mut PgConnection,
        id: Uuid,
        command: <Family as Aggregate>::Command,
        metadata: &Metadata,
    ) -> Result<Option<Position>, Failure> {
        let loaded = store::load::<Family>(&self.pool, &id.to_string()).await?;
        let mut family = loaded.aggregate;
        let sink = EventSink::default();
        family
            .handle(command, &(), &sink)
            .await
            .map_err(|e| Failure::Refused(e.into()))?;
        let events = sink.collect().await;
        let stream = StreamAppend::new::<Family>(id.to_string(), loaded.version, &events)?.sealed_for(id);
        Ok(store::append(conn, &[stream], metadata).await?)
    }

    async fn execute<A>(
        &self,
        framework: &PostgresCqrs<A>,
        id: Uuid,
        command: A::Command,
        metadata: &Metadata,
    ) -> Result<(), ApiError>
    where
        A: Aggregate,
        A::Command: Clone,
        ApiError: From<A::Error>,
    {
        let id = id.to_string();
        for _ in 0..CONFLICT_RETRIES {
            match framework
                .execute_with_metadata(&id, command.clone(), metadata.to_map())
                .await
            {
                Ok(()) => {
                    if let Some(position) = store::stream_position(&self.pool, A::TYPE, &id).await? {
                        self.wait_for_read_models(position, &[A::TYPE]).await?;
                    }
                    return Ok(());
                }
                Err(AggregateError::UserError(error)) => return Err(error.into()),
                Err(AggregateError::AggregateConflict) => continue,
                Err(other) => return Err(ApiError::Internal(other.to_string())),
            }
        }
        Err(ApiError::Conflict(format!(
            "{} {id} kept changing; try again",
            A::TYPE
        )))
    }

    /// Announces committed events of these aggregate types to the
    /// projection runners, then waits (bounded) until the read models
    /// include `position`. Every writer calls it after its commit. A timeout
    /// is not an error: the command is committed, the answer may lag.
    pub async fn wait_for_read_models(
        &self,
        position: Position,
        written: &[&'static str],
    ) -> Result<(), ApiError> {
        self.announcer.announce(written);
        let reached = self
            .checkpoints
            .wait_for(position, &self.read_models, self.read_your_writes)
            .await;
        if !reached {
            tracing::warn!(?position, "read models did not catch up in time");
        }
        Ok(())
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
        events: Vec<(i64, String)>,
        key: Option<Vec<u8>>,
    ) -> Result<Arc<Family>, ApiError> {
        let (version, state) = kept;
        if events.is_empty() {
            return match state {
                Some(state) if version > 0 => Ok(state),
                _ => Err(ApiError::NotFound(format!("no family {id}"))),
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
            return Err(ApiError::NotFound(format!("no family {id}")));
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
            return Err(ApiError::NotFound(format!("no {kind} {id}")));
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
            return Err(ApiError::Conflict(format!("the id {id} is already used")));
        }
        Ok(())
    }

    /// Joins a family to a commune with the code its guardian gave (see
    /// [`crate::join_codes`]): the code is used and the membership recorded
    /// in one transaction, so a refused join leaves the code usable.
    /// Returns the family.
    pub async fn join_family(
        &self,
        collectivity_id: Uuid,
        code: &str,
        family_ref: &str,
        metadata: &Metadata,
    ) -> Result<Uuid, ApiError> {
        for _ in 0..CONFLICT_RETRIES {
            let mut tx = self.pool.begin().await?;
            let family_id = crate::join_codes::consume(&mut tx, code, collectivity_id).await?;
            let command = FamilyCommand::JoinCollectivity {
                collectivity_id,
                family_ref: family_ref.to_string(),
            };
            match self.family_in(&mut tx, family_id, command, metadata).await {
                Ok(position) => {
                    tx.commit().await?;
                    if let Some(position) = position {
                        self.wait_for_read_models(position, &[Family::TYPE]).await?;
                    }
                    return Ok(family_id);
                }
                Err(Failure::Store(StoreError::Conflict)) => continue,
                Err(failure) => return Err(failure.into()),
            }
        }
        Err(ApiError::Conflict("the family kept changing; try again".into()))
    }

    /// Erases a family (GDPR): records `FamilyErased`, destroys the family's
    /// key and forgets its guardians' accounts and messages, in one
    /// transaction. Returns the guardians' accounts, whose sessions ended.
    pub async fn erase_family(&self, family_id: Uuid, metadata: &Metadata) -> Result<Vec<Uuid>, ApiError> {
        for _ in 0..CONFLICT_RETRIES {
            let mut tx = self.pool.begin().await?;
            let position = match self
                .family_in(&mut tx, family_id, FamilyCommand::Erase, metadata)
                .await
            {
                Ok(position) => position,
                Err(Failure::Store(StoreError::Conflict)) => continue,
                Err(failure) => return Err(failure.into()),
            };
            personal::erase_family_key(&mut tx, family_id).await?;
            let guardians = crate::accounts::forget_family(&mut tx, family_id).await?;
            tx.commit().await?;
            self.families_cache.forget(family_id);
            if let Some(position) = position {
                self.wait_for_read_models(position, &[Family::TYPE]).await?;
            }
            return Ok(guardians);
        }
        Err(ApiError::Conflict(format!(
            "family {family_id} kept changing; try again"
        )))
    }

    /// What a reservation is about, for authorising a request on it.
    pub async fn reservation_slot(&self, id: Uuid) -> Result<Slot, ApiError> {
        let loaded = store::load::<Reservation>(&self.pool, &id.to_string()).await?;
        loaded
            .aggregate
            .slot
            .ok_or_else(|| ApiError::NotFound(format!("no reservation {id}")))
    }

    /// An agent's decision on one reservation (approve or reject a
    /// cancellation). `authorise` sees what the reservation is about and
    /// answers with the metadata of the caller allowed to decide, or a
    /// refusal. A decision needs the reservation alone: one read, then one
    /// insert, atomic on its own.
    pub async fn decide(
        &self,
        reservation_id: Uuid,
        decision: Decision,
        authorise: impl Fn(&Slot) -> Result<Metadata, ApiError>,
    ) -> Result<Reservation, ApiError> {
        let id = reservation_id.to_string();
        for _ in 0..CONFLICT_RETRIES {
            let loaded = store::load_many::<Reservation>(&self.pool, std::slice::from_ref(&id))
                .await?
                .pop()
                .ok_or_else(|| ApiError::Internal(format!("reservation {id} was not loaded")))?;
            let slot = loaded
                .aggregate
                .slot
                .ok_or_else(|| ApiError::NotFound(format!("no reservation {reservation_id}")))?;
            let metadata = authorise(&slot)?;
            let event = loaded.aggregate.check_decision(decision.clone())?;
            let stream =
                StreamAppend::new::<Reservation>(id.clone(), loaded.version, std::slice::from_ref(&event))?;
            match self.appender.append(vec![stream], metadata).await {
                Ok(position) => {
                    if let Some(position) = position {
                        self.wait_for_read_models(position, &[Reservation::TYPE]).await?;
                    }
                    let mut decided = loaded.aggregate;
                    decided.apply(event);
                    return Ok(decided);
                }
                Err(StoreError::Conflict) => continue,
                Err(other) => return Err(other.into()),
            }
        }
        Err(ApiError::Conflict(format!(
            "reservation {reservation_id} kept changing; try again"
        )))
    }
}

/// Why a command inside a caller's transaction did not go through.
#[derive(Debug)]
pub enum Failure {
    /// The domain refused it.
    Refused(ApiError),
    /// The store failed; [`StoreError::Conflict`] means "load and try again".
    Store(StoreError),
}

impl From<StoreError> for Failure {
    fn from(error: StoreError) -> Self {
        Failure::Store(error)
    }
}

impl From<sqlx::Error> for Failure {
    fn from(error: sqlx::Error) -> Self {
        Failure::Store(StoreError::Database(error))
    }
}

impl From<Failure> for ApiError {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Refused(error) => error,
            Failure::Store(error) => error.into(),
        }
    }
}
