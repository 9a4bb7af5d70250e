//! The write path: every command of every aggregate goes through
//! [`Commands::write`].
//!
//! A use case ([`Write`]) makes one attempt against fresh state: it loads
//! what it needs and decides, through [`Work`] ([`Work::execute`] runs one
//! aggregate's command). Its events are then appended, each stream after
//! the version it was decided on. A lost race (a stream that moved, an id
//! taken meanwhile) makes a new attempt on fresh state, under one policy,
//! [`CONFLICT_RETRIES`]. How the events reach the store is the work's
//! business, not the use case's:
//!
//! - work that opened a transaction ([`Work::transaction`]: a join code, a
//!   password or an erased key that commits with the events) appends in
//!   it;
//! - work with a row to commit beside its events ([`Work::alongside`]: a
//!   basket's receipt) appends in one statement with it;
//! - any other goes to the shared appender, where commands that arrive
//!   together share one statement.
//!
//! Once committed, the mutation waits (bounded) for the read models that
//! read what it wrote and that its answer, or the caller's next screen,
//! reads ([`Write::reads`]). A use case that names them leaves the others
//! to the next query of its readers ([`crate::unseen`]).

use std::future::Future;
use std::time::Duration;

use cqrs_es::event_sink::EventSink;
use cqrs_es::Aggregate;
use espace_famille_domain::collectivity::Collectivity;
use espace_famille_domain::family::Family;
use espace_famille_domain::reservation::Reservation;
use espace_famille_projections::store::{
    self, Alongside, Loaded, Metadata, Position, StoreError, StreamAppend,
};
use sqlx::{PgConnection, Postgres, Transaction};
use uuid::Uuid;

use crate::commands::Commands;
use crate::error::ApiError;
use crate::i18n::say;
use crate::unseen::Reader;

/// How many times a write that lost an optimistic-concurrency race is tried
/// again (with fresh state) before the caller gets `CONFLICT`: one policy
/// for every write.
pub const CONFLICT_RETRIES: usize = 5;

/// The longest pause, in milliseconds, before the first retry; it doubles
/// with each race lost (at most 16 ms before the last).
const RETRY_PAUSE_MS: u64 = 1;

/// A use case that writes: one attempt of it, against fresh state.
pub trait Write: Send {
    type Answer: Send;

    /// Loads and decides through `work`; what it queued is appended once
    /// this returns. [`Failure::Store`] with [`StoreError::Conflict`] (a
    /// race lost while loading or deciding) and [`Failure::Again`] make
    /// another attempt; anything else is the caller's answer.
    fn attempt(&mut self, work: &mut Work<'_>) -> impl Future<Output = Result<Self::Answer, Failure>> + Send;

    /// The read models the answer, or the caller's next screen, reads;
    /// `None`, the default: any of them. The write waits only for those
    /// among them that read what it wrote; the others that read it are
    /// waited for by the next query of the acting account and of the
    /// readers named with [`Work::concerns`].
    fn reads(&self) -> Option<&'static [&'static str]> {
        None
    }

    /// The caller's answer when every attempt lost its race.
    fn contended(&self) -> String {
        say("api.contended", &[])
    }
}

/// Why an attempt did not go through.
#[derive(Debug)]
pub enum Failure {
    /// The domain, or the caller's rights, refused it: the answer.
    Refused(ApiError),
    /// The store failed; [`StoreError::Conflict`] means "try again".
    Store(StoreError),
    /// The attempt decided on a presumption that did not hold (a basket
    /// checked as if its reservations were new): once per write, another
    /// attempt that does not count as a lost race.
    Again,
}

impl From<ApiError> for Failure {
    fn from(error: ApiError) -> Self {
        Failure::Refused(error)
    }
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
            Failure::Again => ApiError::Conflict(say("api.contended", &[])),
        }
    }
}

/// How an aggregate's streams are stored.
pub trait Stored: Aggregate {
    /// Whether its events may carry personal values, sealed with the key of
    /// a family (see `personal`).
    const PERSONAL: bool = false;

    /// The family whose key seals stream `id`'s personal values, as the
    /// state after its events names it.
    fn sealed_for(_id: Uuid, _state: &Self) -> Option<Uuid> {
        None
    }
}

impl Stored for Collectivity {}

impl Stored for Family {
    const PERSONAL: bool = true;

    /// A family's stream is sealed for itself.
    fn sealed_for(id: Uuid, _: &Self) -> Option<Uuid> {
        Some(id)
    }
}

impl Stored for espace_famille_domain::request::Request {
    const PERSONAL: bool = true;

    /// A request's stream is sealed for the family that sent it.
    fn sealed_for(_: Uuid, request: &Self) -> Option<Uuid> {
        request.submitted.as_ref().map(|s| s.family_id)
    }
}

impl Stored for Reservation {}

impl Stored for espace_famille_domain::places::Places {}

impl Stored for espace_famille_domain::invoice::Invoice {}

impl Stored for espace_famille_domain::invoice::InvoiceNumbers {}

impl Stored for espace_famille_domain::payment::Payment {}

/// One attempt's unit of work: what it loaded, decided and must commit.
pub struct Work<'c> {
    commands: &'c Commands,
    attempt: usize,
    transaction: Option<Transaction<'static, Postgres>>,
    streams: Vec<StreamAppend>,
    metadata: Option<Metadata>,
    alongside: Option<Alongside>,
    /// Committed by the use case itself, through a writer that shares one
    /// transaction between several (see `basket::together`): where, and
    /// the types written.
    committed: Option<(Option<Position>, Vec<&'static str>)>,
    /// Files this attempt wrote to the files' folder: removed, before its
    /// transaction ends, if it does not commit.
    placed: Vec<std::path::PathBuf>,
    /// Who else reads what this attempt changes, beside the acting
    /// account (see [`crate::unseen`]).
    concerned: Vec<Reader>,
}

impl<'c> Work<'c> {
    fn new(commands: &'c Commands, attempt: usize) -> Self {
        Work {
            commands,
            attempt,
            transaction: None,
            streams: Vec::new(),
            metadata: None,
            alongside: None,
            committed: None,
            placed: Vec::new(),
            concerned: Vec::new(),
        }
    }

    /// Names a reader of what this attempt changes (the family of the
    /// reservation decided, its commune): its next query waits for the
    /// read models the answer did not wait for.
    pub fn concerns(&mut self, reader: Reader) {
        if !self.concerned.contains(&reader) {
            self.concerned.push(reader);
        }
    }

    /// The readers of what was written: the acting account, and those the
    /// use case named.
    fn readers(&self) -> Vec<Reader> {
        let acting = self
            .metadata
            .as_ref()
            .and_then(|m| Uuid::parse_str(&m.actor_id).ok())
            .map(Reader::Account);
        acting.into_iter().chain(self.concerned.iter().copied()).collect()
    }

    /// A file this attempt wrote to the files' folder (see `files`).
    pub fn placed_file(&mut self, path: std::path::PathBuf) {
        self.placed.push(path);
    }

    /// Removes the files this attempt wrote: it will not commit.
    fn discard_placed(&mut self) {
        remove_placed(&std::mem::take(&mut self.placed));
    }

    /// The use case's events were committed by another writer, at
    /// `position`: nothing is left to append, and the read models of
    /// `types` are waited for as after any write.
    pub fn committed(&mut self, position: Option<Position>, types: &[&'static str]) {
        self.committed = Some((position, types.to_vec()));
    }

    /// Which attempt of the write this is, from 0.
    pub fn attempt(&self) -> usize {
        self.attempt
    }

    pub fn commands(&self) -> &'c Commands {
        self.commands
    }

    /// The transaction the events will commit in, opened on first use: for
    /// work that must commit with them (a join code used, a password set).
    pub async fn transaction(&mut self) -> Result<&mut PgConnection, Failure> {
        if self.transaction.is_none() {
            self.transaction = Some(self.commands.pool.begin().await?);
        }
        Ok(self
            .transaction
            .as_deref_mut()
            .expect("the transaction was just opened"))
    }

    /// Loads an aggregate. Outside any transaction: the expected version
    /// its events are appended after is what keeps the decision sound.
    pub async fn load<A: Stored>(&self, id: Uuid) -> Result<Loaded<A>, Failure> {
        let id = id.to_string();
        let pool = &self.commands.pool;
        if A::PERSONAL {
            return Ok(store::load::<A>(pool, &id).await?);
        }
        // One stream without personal values: a statement planned once
        // per connection.
        store::load_many::<A>(pool, std::slice::from_ref(&id))
            .await?
            .pop()
            .ok_or_else(|| Failure::Store(StoreError::Corrupt(format!("{} {id} was not loaded", A::TYPE))))
    }

    /// Loads the aggregate, runs the command on it and queues its events:
    /// the state after them.
    pub async fn execute<A: Stored>(
        &mut self,
        id: Uuid,
        command: A::Command,
        services: &A::Services,
        metadata: &Metadata,
    ) -> Result<A, Failure>
    where
        ApiError: From<A::Error>,
    {
        let loaded = self.load::<A>(id).await?;
        self.decide(id, loaded, command, services, metadata).await
    }

    /// Runs the command on a loaded aggregate and queues its events: the
    /// state after them.
    pub async fn decide<A: Stored>(
        &mut self,
        id: Uuid,
        loaded: Loaded<A>,
        command: A::Command,
        services: &A::Services,
        metadata: &Metadata,
    ) -> Result<A, Failure>
    where
        ApiError: From<A::Error>,
    {
        let Loaded {
            mut aggregate,
            version,
        } = loaded;
        let sink = EventSink::default();
        aggregate
            .handle(command, services, &sink)
            .await
            .map_err(|e| Failure::Refused(e.into()))?;
        let events = sink.collect().await;
        let mut stream = StreamAppend::new::<A>(id.to_string(), version, &events)?;
        for event in events {
            aggregate.apply(event);
        }
        if let Some(family_id) = A::sealed_for(id, &aggregate) {
            stream = stream.sealed_for(family_id);
        }
        self.append(vec![stream], metadata)?;
        Ok(aggregate)
    }

    /// Queues streams decided by the use case itself (a basket's lines).
    /// One write carries one metadata.
    pub fn append(&mut self, streams: Vec<StreamAppend>, metadata: &Metadata) -> Result<(), Failure> {
        match &self.metadata {
            Some(signed) if signed != metadata => {
                return Err(Failure::Refused(ApiError::Internal(
                    "one write carries the metadata of one request".into(),
                )))
            }
            Some(_) => {}
            None => self.metadata = Some(metadata.clone()),
        }
        self.streams
            .extend(streams.into_iter().filter(|s| !s.events.is_empty()));
        Ok(())
    }

    /// A row committed in the same statement as the events.
    pub fn alongside(&mut self, row: Alongside) {
        self.alongside = Some(row);
    }

    /// The aggregate types written, each once.
    fn written(&self) -> Vec<&'static str> {
        if let Some((_, types)) = &self.committed {
            return types.clone();
        }
        let mut types: Vec<&'static str> = self.streams.iter().map(|s| s.aggregate_type).collect();
        types.sort_unstable();
        types.dedup();
        types
    }

    /// Commits what the attempt queued; the position of its last event.
    async fn commit(self) -> Result<Option<Position>, StoreError> {
        let Work {
            commands,
            transaction,
            streams,
            metadata,
            alongside,
            committed,
            placed,
            ..
        } = self;
        if let Some((position, _)) = committed {
            return Ok(position);
        }
        let metadata = match metadata {
            Some(metadata) => metadata,
            None if streams.is_empty() => {
                if let Some(transaction) = transaction {
                    transaction.commit().await.map_err(store::conflict_or_database)?;
                }
                return Ok(None);
            }
            None => return Err(StoreError::Corrupt("events queued without metadata".into())),
        };
        match (transaction, alongside) {
            (Some(mut transaction), alongside) => {
                let appended = match alongside {
                    Some(row) => store::append_alongside(&mut transaction, &streams, &metadata, row).await,
                    None => store::append(&mut transaction, &streams, &metadata).await,
                };
                let position = match appended {
                    Ok(position) => position,
                    Err(e) => {
                        // Before the transaction ends: no other writer of
                        // these files could take them meanwhile.
                        remove_placed(&placed);
                        return Err(e);
                    }
                };
                transaction.commit().await.map_err(store::conflict_or_database)?;
                Ok(position)
            }
            (None, Some(row)) => {
                let mut conn = commands.pool.acquire().await?;
                store::append_alongside(&mut conn, &streams, &metadata, row).await
            }
            (None, None) if streams.is_empty() => Ok(None),
            (None, None) => commands.appender.append(streams, metadata).await,
        }
    }
}

/// Removes files written by a write that does not commit.
fn remove_placed(paths: &[std::path::PathBuf]) {
    for path in paths {
        if let Err(e) = std::fs::remove_file(path) {
            tracing::warn!(path = %path.display(), error = %e, "a file of a write that failed stays");
        }
    }
}

impl Commands {
    /// The write path (see the module's documentation): attempts the use
    /// case until its events are committed, a lost race at a time, then
    /// waits for the read models its answer reads.
    pub async fn write<W: Write>(&self, mut use_case: W) -> Result<W::Answer, ApiError> {
        let mut lost: u32 = 0;
        let mut presumed_again = false;
        let mut attempt = 0;
        loop {
            let mut work = Work::new(self, attempt);
            attempt += 1;
            match use_case.attempt(&mut work).await {
                Ok(answer) => {
                    let written = work.written();
                    let readers = work.readers();
                    match work.commit().await {
                        Ok(position) => {
                            if let Some(position) = position {
                                self.wait_for_read_models(position, &written, use_case.reads(), &readers)
                                    .await;
                            }
                            return Ok(answer);
                        }
                        Err(StoreError::Conflict) => {}
                        Err(other) => return Err(other.into()),
                    }
                }
                Err(Failure::Again) if !presumed_again => {
                    work.discard_placed();
                    presumed_again = true;
                    continue;
                }
                Err(Failure::Store(StoreError::Conflict) | Failure::Again) => work.discard_placed(),
                Err(failure) => {
                    work.discard_placed();
                    return Err(failure.into());
                }
            }
            lost += 1;
            if lost as usize >= CONFLICT_RETRIES {
                metrics::counter!(crate::metrics::CONFLICTS_GIVEN_UP).increment(1);
                return Err(ApiError::Conflict(use_case.contended()));
            }
            metrics::counter!(crate::metrics::CONFLICTS_RETRIED).increment(1);
            // Writers that collided would collide again if they came back
            // together: each waits a moment of its own, longer each time.
            let pause = rand::Rng::gen_range(&mut rand::thread_rng(), 0..=RETRY_PAUSE_MS << lost);
            tokio::time::sleep(Duration::from_millis(pause)).await;
        }
    }

    /// Runs one aggregate's command: the state after it.
    pub async fn execute<A>(&self, id: Uuid, command: A::Command, metadata: &Metadata) -> Result<A, ApiError>
    where
        A: Stored,
        A::Command: Clone + Send + Sync,
        A::Services: Default + Send + Sync,
        ApiError: From<A::Error>,
    {
        self.write(Execute::<A> {
            id,
            command,
            metadata: metadata.clone(),
        })
        .await
    }
}

/// One aggregate's command, as [`Commands::execute`] runs it.
struct Execute<A: Aggregate> {
    id: Uuid,
    command: A::Command,
    metadata: Metadata,
}

impl<A> Write for Execute<A>
where
    A: Stored,
    A::Command: Clone + Send + Sync,
    A::Services: Default + Send + Sync,
    ApiError: From<A::Error>,
{
    type Answer = A;

    async fn attempt(&mut self, work: &mut Work<'_>) -> Result<A, Failure> {
        work.execute::<A>(
            self.id,
            self.command.clone(),
            &A::Services::default(),
            &self.metadata,
        )
        .await
    }

    fn contended(&self) -> String {
        say(
            "api.contended_stream",
            &[("what", &A::TYPE.to_lowercase()), ("id", &self.id)],
        )
    }
}
