//! The store read for [`super::verify`]: in commit order, in chunks that
//! two connections read at once from one snapshot, each chunk's contents
//! hashed by the task that read it.
//!
//! One connection alone spent most of a million-event verification in
//! PostgreSQL sending the rows; two send them on two cores. The chunks'
//! bounds come from a sample of the commit order, so that they hold about
//! [`CHUNK`] events each whatever the transactions were.

use sha2::{Digest, Sha256};
use sqlx::postgres::PgRow;
use sqlx::{Connection, PgConnection, PgPool, Row};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::{Position, StoreError};

/// About how many events a chunk holds (some 15 MB of rows).
pub(super) const CHUNK: u64 = 20_000;

/// The connections reading at once.
const READERS: usize = 2;

/// Samples of the commit order taken per chunk to place its bounds.
const SAMPLES_PER_CHUNK: u64 = 50;

/// The events after one position and up to another, in commit order, as
/// the verification reads them.
pub(super) const EVENTS_BETWEEN: &str =
    "SELECT aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata,
        event_id, transaction_id, global_position, content_hash, chain_hash
 FROM events
 WHERE (transaction_id, global_position) > ($1::text::xid8, $2)
   AND (transaction_id, global_position) <= ($3::text::xid8, $4)
 ORDER BY transaction_id, global_position";

/// Past every position.
const END: Position = Position {
    transaction_id: i64::MAX,
    global_position: i64::MAX,
};

/// A chunk of rows in commit order, with what the reader found of each:
/// whether its content still gives its content hash, and its stream's key.
pub(super) struct Chunk {
    pub rows: Vec<PgRow>,
    pub intact: Vec<bool>,
    pub keys: Vec<u128>,
}

/// The readers under way; [`Chunks::next`] gives their chunks in order.
pub(super) struct Chunks {
    /// Holds the snapshot the readers share while they read.
    _snapshot: sqlx::Transaction<'static, sqlx::Postgres>,
    received: Vec<mpsc::Receiver<Result<Chunk, StoreError>>>,
    readers: Vec<JoinHandle<()>>,
    next: usize,
    count: usize,
    /// The streams begun in the snapshot, to size the pass's map once.
    pub streams: usize,
}

impl Chunks {
    /// Exports a snapshot, places the chunks' bounds and starts the
    /// readers on it.
    pub(super) async fn start(pool: &PgPool, chunk: u64) -> Result<Chunks, StoreError> {
        let mut snapshot = pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *snapshot)
            .await?;
        let id: String = sqlx::query_scalar("SELECT pg_export_snapshot()")
            .fetch_one(&mut *snapshot)
            .await?;
        let (bounds, streams) = bounds(&mut snapshot, chunk.max(1)).await?;
        let count = bounds.len() - 1;
        let mut received = Vec::with_capacity(READERS);
        let mut readers = Vec::with_capacity(READERS);
        for first in 0..READERS.min(count) {
            let (chunks, receiver) = mpsc::channel(1);
            let mut conn = pool.acquire().await?.detach();
            let bounds = bounds.clone();
            let id = id.clone();
            readers.push(tokio::spawn(async move {
                let read = read(&mut conn, &id, &bounds, first, &chunks).await;
                if let Err(error) = read {
                    let _ = chunks.send(Err(error)).await;
                }
                let _ = conn.close().await;
            }));
            received.push(receiver);
        }
        Ok(Chunks {
            _snapshot: snapshot,
            received,
            readers,
            next: 0,
            count,
            streams,
        })
    }

    /// The next chunk in commit order; `None` after the last.
    pub(super) async fn next(&mut self) -> Result<Option<Chunk>, StoreError> {
        if self.next == self.count {
            return Ok(None);
        }
        let reader = self.next % self.received.len();
        self.next += 1;
        match self.received[reader].recv().await {
            Some(chunk) => chunk.map(Some),
            None => Err(StoreError::Corrupt("a reader of the verification stopped".into())),
        }
    }

    /// Waits for the readers and lets the snapshot go.
    pub(super) async fn finish(self) -> Result<(), StoreError> {
        drop(self.received);
        for reader in self.readers {
            reader
                .await
                .map_err(|e| StoreError::Corrupt(format!("a reader of the verification failed: {e}")))?;
        }
        self._snapshot.commit().await?;
        Ok(())
    }
}

/// The chunks' bounds, from the start of the commit order to its end (a
/// chunk holds the events after one bound and up to the next), and how
/// many streams begin.
async fn bounds(snapshot: &mut PgConnection, chunk: u64) -> Result<(Vec<Position>, usize), StoreError> {
    let (total, streams): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(*) FILTER (WHERE sequence = 1) FROM events")
            .fetch_one(&mut *snapshot)
            .await?;
    let chunks = (total.max(0) as u64).div_ceil(chunk).max(1);
    let mut bounds = vec![Position::default()];
    if chunks > 1 {
        // A sample of pages, sorted: every so many samples, a bound.
        let percent = (100.0 * (chunks * SAMPLES_PER_CHUNK) as f64 / total as f64).min(100.0);
        let mut sampled: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT transaction_id::text::bigint, global_position FROM events TABLESAMPLE SYSTEM ($1)",
        )
        .bind(percent)
        .fetch_all(&mut *snapshot)
        .await?;
        sampled.sort_unstable();
        let every = (sampled.len() as u64 / chunks).max(1) as usize;
        bounds.extend(
            sampled
                .iter()
                .skip(every)
                .step_by(every)
                .map(|&(transaction_id, global_position)| Position {
                    transaction_id,
                    global_position,
                }),
        );
        bounds.dedup();
    }
    bounds.push(END);
    Ok((bounds, streams.max(0) as usize))
}

/// Reads chunks `first`, `first + READERS`, ... on a connection of its own
/// in the exported snapshot, hashing each one's contents.
async fn read(
    conn: &mut PgConnection,
    snapshot: &str,
    bounds: &[Position],
    first: usize,
    chunks: &mpsc::Sender<Result<Chunk, StoreError>>,
) -> Result<(), StoreError> {
    sqlx::query("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .execute(&mut *conn)
        .await?;
    sqlx::query(&format!(
        "SET TRANSACTION SNAPSHOT '{}'",
        snapshot.replace('\'', "")
    ))
    .execute(&mut *conn)
    .await?;
    for chunk in (first..bounds.len() - 1).step_by(READERS) {
        let (after, upto) = (bounds[chunk], bounds[chunk + 1]);
        let rows = sqlx::query(EVENTS_BETWEEN)
            .bind(after.transaction_id.to_string())
            .bind(after.global_position)
            .bind(if upto == END {
                u64::MAX.to_string()
            } else {
                upto.transaction_id.to_string()
            })
            .bind(upto.global_position)
            .fetch_all(&mut *conn)
            .await?;
        let mut intact = Vec::with_capacity(rows.len());
        let mut keys = Vec::with_capacity(rows.len());
        for row in &rows {
            intact.push(content_intact(row)?);
            keys.push(stream_key(row.try_get(0)?, row.try_get(1)?));
        }
        if chunks.send(Ok(Chunk { rows, intact, keys })).await.is_err() {
            break;
        }
    }
    sqlx::query("COMMIT").execute(&mut *conn).await?;
    Ok(())
}

/// Whether a row's content still gives its content hash, as
/// `events_content_hash` computes it.
fn content_intact(row: &PgRow) -> Result<bool, StoreError> {
    let content_hash: Option<&[u8]> = row.try_get(10)?;
    let event_id: Uuid = row.try_get(7)?;
    let mut hasher = Sha256::new();
    let mut number = itoa::Buffer::new();
    let mut uuid = Uuid::encode_buffer();
    // The text columns as the bytes they are sent as: hashed, not read,
    // so not checked as UTF-8.
    let bytes = |column: usize| -> Result<&[u8], StoreError> {
        let value = row.try_get_raw(column)?;
        value
            .as_bytes()
            .map_err(|e| StoreError::Corrupt(format!("column {column}: {e}")))
    };
    let parts: [&[u8]; 8] = [
        bytes(0)?,
        bytes(1)?,
        number.format(row.try_get::<i64, _>(2)?).as_bytes(),
        bytes(3)?,
        bytes(4)?,
        bytes(5)?,
        bytes(6)?,
        event_id.hyphenated().encode_lower(&mut uuid).as_bytes(),
    ];
    for (n, part) in parts.iter().enumerate() {
        if n > 0 {
            hasher.update([0x1f]);
        }
        hasher.update(part);
    }
    Ok(content_hash == Some(hasher.finalize().as_slice()))
}

/// The key of a stream in the pass's map: 128 bits of a SHA-256 of its
/// type and id, a quarter of the memory of the names.
pub(super) fn stream_key(aggregate_type: &str, aggregate_id: &str) -> u128 {
    let mut hasher = Sha256::new();
    hasher.update(aggregate_type.as_bytes());
    hasher.update([0x1f]);
    hasher.update(aggregate_id.as_bytes());
    let digest = hasher.finalize();
    u128::from_be_bytes(digest[..16].try_into().unwrap_or_default())
}
