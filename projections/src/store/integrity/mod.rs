//! Tamper evidence: the events' hash chains and the seals over them (see
//! the `event_chain` migration), and their verification.
//!
//! [`verify`] reads the store once, in commit order: each event's content
//! is checked against its hash, its link against the event read before it
//! in its stream, and each sealed range's count and digest are recomputed;
//! the last event a broken seal recorded per stream is then looked up.
//! Between them they name the event edited (its content), rehashed or
//! moved (its link), deleted (a missing sequence, or a sealed last event
//! gone), reordered (stream order against commit order) or inserted by
//! hand (without hashes, or after a sealed last event inside the sealed
//! range).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

use bytes::Bytes;
use futures::TryStreamExt;
use sha2::{Digest, Sha256};
use sqlx::{PgPool, Row};
use uuid::Uuid;

use super::{Position, StoreError};

mod tuples;

/// One seal, as it is exported and kept elsewhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Seal {
    pub seal: i64,
    pub sealed_at: DateTime<Utc>,
    /// The last event sealed, in commit order.
    pub up_to: Position,
    /// The events since the previous seal.
    pub events: i64,
    pub total_events: i64,
    /// Hexadecimal SHA-256.
    pub digest: String,
}

/// How many events the store holds (for a progress bar).
pub async fn count(pool: &PgPool) -> Result<u64, StoreError> {
    let count: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(pool)
        .await?;
    Ok(count.max(0) as u64)
}

/// Seals the events committed since the last seal; `None` when there was
/// none.
pub async fn seal(pool: &PgPool) -> Result<Option<Seal>, StoreError> {
    let sealed: Option<i64> = sqlx::query_scalar("SELECT events_seal()").fetch_one(pool).await?;
    match sealed {
        None => Ok(None),
        Some(id) => Ok(seals(pool, id - 1).await?.into_iter().next()),
    }
}

/// The seals after `after` (0: all of them), in order.
pub async fn seals(pool: &PgPool, after: i64) -> Result<Vec<Seal>, StoreError> {
    let rows = sqlx::query(
        "SELECT seal_id, sealed_at, up_to_transaction_id::text::bigint AS tx, up_to_global_position,
                events, total_events, encode(digest, 'hex') AS digest
         FROM event_seals WHERE seal_id > $1 ORDER BY seal_id",
    )
    .bind(after)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(Seal {
                seal: row.try_get("seal_id")?,
                sealed_at: row.try_get("sealed_at")?,
                up_to: Position {
                    transaction_id: row.try_get("tx")?,
                    global_position: row.try_get("up_to_global_position")?,
                },
                events: row.try_get("events")?,
                total_events: row.try_get("total_events")?,
                digest: row.try_get("digest")?,
            })
        })
        .collect()
}

/// What was found wrong with the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Tampering {
    /// The event's content no longer matches its hash.
    Edited,
    /// The event has no hash: it was written around the database's trigger.
    Unhashed,
    /// The link to the previous event of its stream is broken: its hash was
    /// recomputed, or its place in the commit order changed, or the event
    /// before it was replaced.
    Unlinked,
    /// Events of the stream are missing before this one.
    Deleted,
    /// The stream's order and the commit order disagree.
    Reordered,
    /// A sealed range's events no longer give its count or digest.
    SealBroken,
    /// The last event a seal recorded for a stream is gone or changed.
    SealedEventGone,
    /// An event follows, inside a sealed range, the last event the seal
    /// recorded for its stream: it was inserted.
    InsertedInSeal,
    /// A seal kept elsewhere is missing from the store or differs from it.
    SealDiffers,
}

/// One finding, with what locates it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub tampering: Tampering,
    /// `type/id` of the stream, when one is known.
    pub stream: Option<String>,
    pub sequence: Option<i64>,
    pub event_id: Option<Uuid>,
    pub position: Option<Position>,
    pub seal: Option<i64>,
    pub detail: String,
}

/// The outcome of [`verify`].
#[derive(Debug, Default, Serialize)]
pub struct Verification {
    pub events: u64,
    pub streams: u64,
    pub seals: u64,
    /// Events committed after the last seal: chained, not yet sealed.
    pub unsealed: u64,
    pub findings: Vec<Finding>,
}

impl Verification {
    pub fn clean(&self) -> bool {
        self.findings.is_empty()
    }
}

/// Checks every chain and every seal, and the seals `kept` elsewhere;
/// `progress` is told how many events were checked since it was last
/// told.
///
/// One pass in commit order: the database only reads, the hashing is
/// done here. A task receives the rows, as a binary copy, while this one
/// checks them, so that the protocol and the hashing run on two cores.
/// Its memory grows with the number of streams (each one's last sequence
/// and hash), not with the events.
pub async fn verify(
    pool: &PgPool,
    kept: &[Seal],
    progress: impl Fn(u64),
) -> Result<Verification, StoreError> {
    let stored = seals(pool, 0).await?;
    let streams = sealed_streams(pool).await?;
    let (batches, mut received) = tokio::sync::mpsc::channel::<Vec<Bytes>>(8);
    let mut reading = pool.acquire().await?;
    let reader = tokio::spawn(async move {
        let mut rows = reading.copy_out_raw(EVERY_EVENT).await?;
        let mut batch = Vec::with_capacity(BATCH);
        while let Some(row) = rows.try_next().await? {
            batch.push(row);
            if batch.len() == BATCH {
                let full = std::mem::replace(&mut batch, Vec::with_capacity(BATCH));
                if batches.send(full).await.is_err() {
                    return Ok(());
                }
            }
        }
        if !batch.is_empty() {
            let _ = batches.send(batch).await;
        }
        Ok::<(), StoreError>(())
    });
    let mut pass = Pass::new(&stored, streams);
    let mut copy = tuples::Reader::default();
    while let Some(batch) = received.recv().await {
        let mut events = 0;
        for message in &batch {
            let tuples::Message::Row(row) = copy.read(message)? else {
                continue;
            };
            let event = Checked::from_row(&row)?;
            while let Some(seal) = pass.seal_ending_before(event.position) {
                pass.close_seal(pool, seal).await?;
            }
            pass.check(&event);
            events += 1;
        }
        progress(events);
    }
    reader
        .await
        .map_err(|e| StoreError::Corrupt(format!("the verification's reader stopped: {e}")))??;
    while let Some(seal) = pass.seal_ending_before(Position {
        transaction_id: i64::MAX,
        global_position: i64::MAX,
    }) {
        pass.close_seal(pool, seal).await?;
    }
    let mut verification = pass.finish();
    check_kept(&stored, kept, &mut verification);
    Ok(verification)
}

/// How many streams the seals name: the size the pass's map will
/// likely reach, reserved at once rather than grown by doubling.
async fn sealed_streams(pool: &PgPool) -> Result<usize, StoreError> {
    let heads: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM event_seal_heads
         WHERE seal_id = (SELECT max(seal_id) FROM event_seal_heads)",
    )
    .fetch_one(pool)
    .await?;
    Ok(heads.clamp(0, 1 << 24) as usize)
}

/// Every event, in commit order, as the verification reads it.
const EVERY_EVENT: &str =
    "COPY (SELECT aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata,
              event_id, transaction_id, global_position, content_hash, chain_hash
       FROM events ORDER BY transaction_id, global_position) TO STDOUT (FORMAT binary)";

/// How many rows the reader hands over at a time.
const BATCH: usize = 2_000;

/// One event as the pass reads it, borrowed from its row.
struct Checked<'r> {
    aggregate_type: &'r [u8],
    aggregate_id: &'r [u8],
    sequence: i64,
    event_id: Uuid,
    position: Position,
    /// Whether its content still gives its content hash.
    intact: bool,
    content_hash: Option<&'r [u8]>,
    chain_hash: Option<&'r [u8]>,
}

impl<'r> Checked<'r> {
    /// Reads the columns by place, in their binary form: the texts and
    /// the JSON as the bytes they are, the numbers and the transaction id
    /// as 64-bit integers.
    fn from_row(row: &tuples::Tuple<'r>) -> Result<Self, StoreError> {
        let aggregate_type = row.required(0)?;
        let aggregate_id = row.required(1)?;
        let sequence = row.int8(2)?;
        let event_id = row.uuid(7)?;
        let content_hash = row.bytes(10)?;
        // As `events_content_hash` computes it.
        let mut hasher = Sha256::new();
        let mut number = itoa::Buffer::new();
        let mut uuid = Uuid::encode_buffer();
        let parts: [&[u8]; 8] = [
            aggregate_type,
            aggregate_id,
            number.format(sequence).as_bytes(),
            row.required(3)?,
            row.required(4)?,
            row.required(5)?,
            row.required(6)?,
            event_id.hyphenated().encode_lower(&mut uuid).as_bytes(),
        ];
        for (n, part) in parts.iter().enumerate() {
            if n > 0 {
                hasher.update([0x1f]);
            }
            hasher.update(part);
        }
        let intact = content_hash == Some(hasher.finalize().as_slice());
        Ok(Checked {
            aggregate_type,
            aggregate_id,
            sequence,
            event_id,
            position: Position {
                transaction_id: row.int8(8)?,
                global_position: row.int8(9)?,
            },
            intact,
            content_hash,
            chain_hash: row.bytes(11)?,
        })
    }

    fn finding(&self, tampering: Tampering, detail: String) -> Finding {
        Finding {
            tampering,
            stream: Some(format!(
                "{}/{}",
                String::from_utf8_lossy(self.aggregate_type),
                String::from_utf8_lossy(self.aggregate_id)
            )),
            sequence: Some(self.sequence),
            event_id: Some(self.event_id),
            position: Some(self.position),
            seal: None,
            detail,
        }
    }
}

/// The key of a stream in the pass's map: 128 bits of a SHA-256 of its
/// type and id, a quarter of the memory of the names.
fn stream_key(aggregate_type: &[u8], aggregate_id: &[u8]) -> u128 {
    let mut hasher = Sha256::new();
    hasher.update(aggregate_type);
    hasher.update([0x1f]);
    hasher.update(aggregate_id);
    let digest = hasher.finalize();
    u128::from_be_bytes(digest[..16].try_into().unwrap_or_default())
}

/// An event's chain hash, as `events_link` computes it.
fn link(previous: &[u8], content_hash: &[u8], position: Position) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(previous);
    hasher.update(content_hash);
    hasher.update(position.transaction_id.to_be_bytes());
    hasher.update(position.global_position.to_be_bytes());
    hasher.finalize().into()
}

/// What the pass knows of a stream: its highest sequence read, that
/// event's chain hash and place, and the sequences skipped on the way.
struct Stream {
    last: i64,
    chain: [u8; 32],
    /// Missing sequences `from..=to`, and the event read after them:
    /// boxed, a pointer in the map for the streams without any.
    #[allow(clippy::box_collection)]
    gaps: Option<Box<Vec<Gap>>>,
}

type Gap = (i64, i64, Finding);

/// The verification under way.
struct Pass<'s> {
    seals: &'s [Seal],
    /// The seal whose range the pass is in, its digest so far, its events.
    open: usize,
    digest: Sha256,
    sealed: i64,
    streams: HashMap<u128, Stream, foldhash::fast::RandomState>,
    verification: Verification,
}

impl<'s> Pass<'s> {
    fn new(seals: &'s [Seal], streams: usize) -> Self {
        Pass {
            seals,
            open: 0,
            digest: Sha256::new(),
            sealed: 0,
            streams: HashMap::with_capacity_and_hasher(streams, Default::default()),
            verification: Verification::default(),
        }
    }

    /// The open seal, if it ends before `position`.
    fn seal_ending_before(&self, position: Position) -> Option<&'s Seal> {
        self.seals.get(self.open).filter(|seal| seal.up_to < position)
    }

    fn check(&mut self, event: &Checked) {
        self.verification.events += 1;
        if self.open < self.seals.len() {
            self.sealed += 1;
            if let Some(chain) = &event.chain_hash {
                self.digest.update(chain);
            }
        } else {
            self.verification.unsealed += 1;
        }
        let findings = &mut self.verification.findings;
        let (Some(content_hash), Some(chain_hash)) = (event.content_hash, event.chain_hash) else {
            // Not part of any chain: the stream goes on without it.
            findings.push(event.finding(
                Tampering::Unhashed,
                "written without the database's hashes".into(),
            ));
            return;
        };
        if !event.intact {
            findings.push(event.finding(Tampering::Edited, "its content no longer matches its hash".into()));
        }
        let chain: [u8; 32] = chain_hash.try_into().unwrap_or_default();
        let key = stream_key(event.aggregate_type, event.aggregate_id);
        let Some(stream) = self.streams.get_mut(&key) else {
            let mut gaps = None;
            if event.sequence > 1 {
                let missing = event.finding(Tampering::Deleted, String::new());
                gaps = Some(Box::new(vec![(1, event.sequence - 1, missing)]));
            } else if link(&[], content_hash, event.position) != chain_hash {
                findings.push(event.finding(Tampering::Unlinked, UNLINKED.into()));
            }
            let last = event.sequence;
            self.streams.insert(key, Stream { last, chain, gaps });
            return;
        };
        if event.sequence < stream.last {
            // It fills a gap: committed after an event it precedes.
            let gaps = stream.gaps.get_or_insert_with(Default::default);
            let gap = gaps
                .iter()
                .position(|(from, to, _)| (*from..=*to).contains(&event.sequence));
            let ahead = gap.map(|g| {
                let (from, to, jumper) = gaps.remove(g);
                if event.sequence > from {
                    gaps.push((from, event.sequence - 1, jumper.clone()));
                }
                if event.sequence < to {
                    gaps.push((event.sequence + 1, to, jumper.clone()));
                }
                jumper
            });
            if let Some(mut jumper) = ahead {
                jumper.tampering = Tampering::Reordered;
                jumper.detail = format!(
                    "committed before event {} of its stream, which it follows",
                    event.sequence
                );
                if !findings.contains(&jumper) {
                    findings.push(jumper.clone());
                }
                findings.push(event.finding(
                    Tampering::Reordered,
                    format!(
                        "committed after event {} of its stream, which follows it",
                        jumper.sequence.unwrap_or_default()
                    ),
                ));
            }
            return;
        }
        if event.sequence > stream.last + 1 {
            let missing = event.finding(Tampering::Deleted, String::new());
            let gaps = stream.gaps.get_or_insert_with(Default::default);
            gaps.push((stream.last + 1, event.sequence - 1, missing));
        } else if link(&stream.chain, content_hash, event.position) != chain_hash {
            findings.push(event.finding(Tampering::Unlinked, UNLINKED.into()));
        }
        stream.last = event.sequence;
        stream.chain = chain;
    }

    /// Ends the open seal's range: its count and digest against the
    /// events read, and the last event it recorded per stream against the
    /// stream as read up to there.
    async fn close_seal(&mut self, pool: &PgPool, seal: &Seal) -> Result<(), StoreError> {
        let digest = hex::encode(std::mem::take(&mut self.digest).finalize());
        let findings = &mut self.verification.findings;
        // An intact range holds the very chain hashes sealed, in their
        // order: every last event it recorded is there, and any change to
        // one shows on that event itself. Its heads only name what a
        // broken range lost or gained.
        let intact = self.sealed == seal.events && digest == seal.digest;
        if !intact {
            findings.push(Finding {
                tampering: Tampering::SealBroken,
                stream: None,
                sequence: None,
                event_id: None,
                position: Some(seal.up_to),
                seal: Some(seal.seal),
                detail: format!(
                    "seal {} (up to {}/{}): {} events sealed, {} found{}",
                    seal.seal,
                    seal.up_to.transaction_id,
                    seal.up_to.global_position,
                    seal.events,
                    self.sealed,
                    if digest == seal.digest {
                        ""
                    } else {
                        ", digest differs"
                    }
                ),
            });
        }
        if !intact {
            self.name_heads(pool, seal).await?;
        }
        self.open += 1;
        self.sealed = 0;
        self.digest = Sha256::new();
        self.digest.update(hex::decode(&seal.digest).unwrap_or_default());
        Ok(())
    }

    /// The last event the broken `seal` recorded per stream, against the
    /// stream as read up to there.
    async fn name_heads(&mut self, pool: &PgPool, seal: &Seal) -> Result<(), StoreError> {
        let findings = &mut self.verification.findings;
        let mut heads = sqlx::query(
            "SELECT aggregate_type, aggregate_id, sequence, event_id,
                    transaction_id::text::bigint AS tx, global_position, chain_hash
             FROM event_seal_heads WHERE seal_id = $1",
        )
        .bind(seal.seal)
        .fetch(pool);
        while let Some(head) = heads.try_next().await? {
            let aggregate_type: &str = head.try_get("aggregate_type")?;
            let aggregate_id: &str = head.try_get("aggregate_id")?;
            let sequence: i64 = head.try_get("sequence")?;
            let chain: &[u8] = head.try_get("chain_hash")?;
            let stream = || Some(format!("{aggregate_type}/{aggregate_id}"));
            match self
                .streams
                .get(&stream_key(aggregate_type.as_bytes(), aggregate_id.as_bytes()))
            {
                Some(read) if read.last == sequence && read.chain == chain => {}
                Some(read) if read.last > sequence => {
                    let inserted: Option<(Uuid, i64, i64)> = sqlx::query_as(
                        "SELECT event_id, transaction_id::text::bigint, global_position FROM events
                         WHERE aggregate_type = $1 AND aggregate_id = $2 AND sequence = $3",
                    )
                    .bind(aggregate_type)
                    .bind(aggregate_id)
                    .bind(read.last)
                    .fetch_optional(pool)
                    .await?;
                    findings.push(Finding {
                        tampering: Tampering::InsertedInSeal,
                        stream: stream(),
                        sequence: Some(read.last),
                        event_id: inserted.map(|i| i.0),
                        position: inserted.map(|(_, transaction_id, global_position)| Position {
                            transaction_id,
                            global_position,
                        }),
                        seal: Some(seal.seal),
                        detail: format!(
                            "seal {} recorded event {sequence} as the last of its stream, yet event {} is inside its range",
                            seal.seal, read.last
                        ),
                    })
                }
                _ => findings.push(Finding {
                    tampering: Tampering::SealedEventGone,
                    stream: stream(),
                    sequence: Some(sequence),
                    event_id: Some(head.try_get("event_id")?),
                    position: Some(Position {
                        transaction_id: head.try_get("tx")?,
                        global_position: head.try_get("global_position")?,
                    }),
                    seal: Some(seal.seal),
                    detail: format!(
                        "seal {} recorded event {sequence} as the last of its stream: it is gone or changed",
                        seal.seal
                    ),
                }),
            }
        }
        Ok(())
    }

    /// The sequences still missing are deleted events.
    fn finish(mut self) -> Verification {
        self.verification.streams = self.streams.len() as u64;
        for stream in self.streams.into_values() {
            for (from, to, mut after) in stream.gaps.map(|gaps| *gaps).unwrap_or_default() {
                after.detail = format!("events {from} to {to} are missing before it");
                self.verification.findings.push(after);
            }
        }
        self.verification.seals = self.seals.len() as u64;
        self.verification
    }
}

const UNLINKED: &str =
    "its link to the event before it is broken: rehashed, moved, or the event before it replaced";

/// Each seal kept elsewhere against the store's.
fn check_kept(stored: &[Seal], kept: &[Seal], verification: &mut Verification) {
    for copy in kept {
        let detail = match stored.iter().find(|s| s.seal == copy.seal) {
            None => format!("seal {} is no longer in the store", copy.seal),
            Some(seal)
                if seal.up_to != copy.up_to || seal.events != copy.events || seal.digest != copy.digest =>
            {
                format!(
                    "seal {} differs from the copy kept since {}: the sealed events were rewritten, seals included",
                    copy.seal,
                    copy.sealed_at.format("%Y-%m-%d %H:%M UTC")
                )
            }
            Some(_) => continue,
        };
        verification.findings.push(Finding {
            tampering: Tampering::SealDiffers,
            stream: None,
            sequence: None,
            event_id: None,
            position: Some(copy.up_to),
            seal: Some(copy.seal),
            detail,
        });
    }
}
