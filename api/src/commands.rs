//! The command side: runs domain commands against the event store and
//! returns once the read models the caller reads next include them.
//!
//! Collectivity and family commands go through postgres-es's framework (one
//! aggregate per commit). Reservation commands go through the multi-stream
//! append, so that a basket of many reservations commits once.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, AggregateError};
use espace_famille_domain::collectivity::Collectivity;
use espace_famille_domain::family::Family;
use espace_famille_domain::reservation::{BookingContext, Reservation, ReservationCommand, Slot};
use espace_famille_projections::engine;
use espace_famille_projections::store::{self, Metadata, Position, StoreError, StreamAppend};
use postgres_es::{postgres_cqrs, PostgresCqrs};
use sqlx::PgPool;
use uuid::Uuid;

use crate::error::ApiError;
use crate::identity::Identity;

/// How many times a command that lost an optimistic-concurrency race is
/// tried again (with fresh state) before the caller gets `CONFLICT`.
const CONFLICT_RETRIES: usize = 5;

pub struct Commands {
    pub(crate) pool: PgPool,
    collectivities: PostgresCqrs<Collectivity>,
    families: PostgresCqrs<Family>,
    /// The longest a mutation waits for its read models.
    read_your_writes: Duration,
    /// The read models a mutation waits for: all of them, since any may be
    /// read next.
    read_models: Vec<&'static str>,
}

/// Metadata for the events of one user request.
pub fn metadata(identity: Identity, correlation_id: Option<Uuid>) -> Metadata {
    let command_id = Uuid::new_v4();
    Metadata {
        actor_id: identity.actor_id(),
        actor_role: identity.role().to_string(),
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
            families: postgres_cqrs(pool.clone(), vec![], ()),
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

    pub async fn family(
        &self,
        id: Uuid,
        command: <Family as Aggregate>::Command,
        metadata: &Metadata,
    ) -> Result<(), ApiError> {
        self.execute(&self.families, id, command, metadata).await
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
                        self.wait_for_read_models(position).await?;
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

    /// Waits (bounded) until the read models include `position`. A timeout
    /// is not an error: the command is committed, the answer may lag.
    pub async fn wait_for_read_models(&self, position: Position) -> Result<(), ApiError> {
        let reached =
            engine::wait_for(&self.pool, position, &self.read_models, self.read_your_writes).await?;
        if !reached {
            tracing::warn!(?position, "read models did not catch up in time");
        }
        Ok(())
    }

    pub async fn load_collectivity(&self, id: Uuid) -> Result<Collectivity, ApiError> {
        let loaded = store::load::<Collectivity>(&self.pool, &id.to_string()).await?;
        if !loaded.aggregate.exists() {
            return Err(ApiError::NotFound(format!("no collectivity {id}")));
        }
        Ok(loaded.aggregate)
    }

    pub async fn load_family(&self, id: Uuid) -> Result<Family, ApiError> {
        let loaded = store::load::<Family>(&self.pool, &id.to_string()).await?;
        if !loaded.aggregate.exists() {
            return Err(ApiError::NotFound(format!("no family {id}")));
        }
        Ok(loaded.aggregate)
    }

    /// What a reservation is about, for authorising a decision on it.
    pub async fn reservation_slot(&self, id: Uuid) -> Result<Slot, ApiError> {
        let loaded = store::load::<Reservation>(&self.pool, &id.to_string()).await?;
        loaded
            .aggregate
            .slot
            .ok_or_else(|| ApiError::NotFound(format!("no reservation {id}")))
    }

    /// An agent's decision on one reservation (approve or reject a
    /// cancellation).
    pub async fn decide(
        &self,
        reservation_id: Uuid,
        command: ReservationCommand,
        metadata: &Metadata,
    ) -> Result<(), ApiError> {
        for _ in 0..CONFLICT_RETRIES {
            let loaded = store::load::<Reservation>(&self.pool, &reservation_id.to_string()).await?;
            let slot = loaded
                .aggregate
                .slot
                .ok_or_else(|| ApiError::NotFound(format!("no reservation {reservation_id}")))?;
            let context = BookingContext {
                now: Utc::now(),
                collectivity: Arc::new(self.load_collectivity(slot.collectivity_id).await?),
                family: Arc::new(self.load_family(slot.family_id).await?),
            };
            let mut reservation = loaded.aggregate;
            let sink = EventSink::default();
            reservation.handle(command.clone(), &context, &sink).await?;
            let events = sink.collect().await;
            let stream =
                StreamAppend::new::<Reservation>(reservation_id.to_string(), loaded.version, &events)?;
            let mut tx = self.pool.begin().await?;
            match store::append(&mut tx, &[stream], metadata).await {
                Ok(position) => {
                    tx.commit().await?;
                    if let Some(position) = position {
                        self.wait_for_read_models(position).await?;
                    }
                    return Ok(());
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
