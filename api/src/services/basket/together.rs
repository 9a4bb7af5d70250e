//! Baskets that take places, committed together.
//!
//! Bookings of one day are written one transaction after the other, under
//! the day's lock (see `services::places`): when every family books the
//! same Wednesdays, a basket's commit waits for the one before it, and the
//! day's throughput is one commit at a time. So a basket checked outside
//! the lock hands its lines to a writer of its server, which takes every
//! basket waiting at that moment, locks the days they book, reads them
//! once, takes places for each basket in turn (in the order they were
//! handed over), and commits them all in one transaction: one lock, one
//! read, one insert, one commit for as many baskets as arrived meanwhile.
//! Each basket keeps its own events and metadata, receipt and optimistic
//! checks; when the shared transaction fails (a stream that moved, a
//! basket id used twice), its baskets are written again one by one, so
//! each gets its own answer.

use std::collections::{BTreeSet, HashMap};
use std::sync::Weak;

use espace_famille_domain::places::Places;
use espace_famille_projections::store::{self, Loaded, Metadata, Position, StreamAppend};
use tokio::sync::{mpsc, oneshot, Mutex};
use uuid::Uuid;

use super::{finish, status_of, take_on, Basket, BasketOutcome, BasketStatus, Checked, Receipt};
use crate::commands::Commands;
use crate::error::ApiError;
use crate::services::{places, Failure};

/// At most this many baskets share a transaction.
const GROUP: usize = 64;

/// How many writers take baskets from one queue: while one commits,
/// another gathers the next group.
const WRITERS: usize = 2;

/// A basket handed to the writer: its lines as checked.
pub struct Job {
    basket_id: Uuid,
    family_id: Uuid,
    keep_valid_lines: bool,
    checked: Vec<Checked>,
    metadata: Metadata,
}

impl Job {
    pub(super) fn new(basket: &Basket, checked: Vec<Checked>, metadata: &Metadata) -> Job {
        Job {
            basket_id: basket.id,
            family_id: basket.family_id,
            keep_valid_lines: basket.keep_valid_lines,
            checked,
            metadata: metadata.clone(),
        }
    }
}

/// A basket as written: its outcome and its last event's position.
pub struct Written {
    pub outcome: BasketOutcome,
    pub position: Option<Position>,
}

struct Pending {
    job: Job,
    answer: oneshot::Sender<Result<Written, Failure>>,
}

/// The writer of a server's baskets that take places.
pub struct Together {
    queue: mpsc::Sender<Pending>,
}

impl Together {
    /// Starts the writers; they stop when `commands` is dropped.
    pub fn start(commands: Weak<Commands>) -> Together {
        let (queue, taken) = mpsc::channel::<Pending>(4096);
        let taken = std::sync::Arc::new(Mutex::new(taken));
        for _ in 0..WRITERS {
            let (commands, taken) = (commands.clone(), taken.clone());
            tokio::spawn(async move {
                loop {
                    let group = {
                        let mut taken = taken.lock().await;
                        let Some(first) = taken.recv().await else { return };
                        let mut group = vec![first];
                        while group.len() < GROUP {
                            match taken.try_recv() {
                                Ok(next) => group.push(next),
                                Err(_) => break,
                            }
                        }
                        group
                    };
                    let Some(commands) = commands.upgrade() else {
                        return;
                    };
                    write_group(&commands, group).await;
                }
            });
        }
        Together { queue }
    }

    /// Writes one basket, with whichever others are waiting; its outcome
    /// once committed.
    pub async fn write(&self, job: Job) -> Result<Written, Failure> {
        let (answer, answered) = oneshot::channel();
        let stopped = || Failure::Refused(ApiError::Internal("the baskets' writer stopped".into()));
        self.queue
            .send(Pending { job, answer })
            .await
            .map_err(|_| stopped())?;
        answered.await.map_err(|_| stopped())?
    }
}

async fn write_group(commands: &Commands, group: Vec<Pending>) {
    if group.len() > 1 {
        let jobs: Vec<&Job> = group.iter().map(|p| &p.job).collect();
        match write_jobs(commands, &jobs, true).await {
            Ok(written) => {
                for (pending, written) in group.into_iter().zip(written) {
                    let _ = pending.answer.send(Ok(written));
                }
                return;
            }
            Err(error) => tracing::debug!(
                ?error,
                baskets = group.len(),
                "shared basket write failed; one by one"
            ),
        }
    }
    for pending in group {
        let written = write_jobs(commands, &[&pending.job], false).await;
        let _ = pending.answer.send(written.map(|mut w| w.remove(0)));
    }
}

/// Writes `jobs` in one transaction: their days locked and read once,
/// places taken basket after basket, every basket's events and receipt in
/// one insert each. `shared`: a basket refused whole after taking places
/// (a full waiting list) fails the group, to be written alone.
async fn write_jobs(commands: &Commands, jobs: &[&Job], shared: bool) -> Result<Vec<Written>, Failure> {
    let days: Vec<(uuid::Uuid, chrono::NaiveDate)> = jobs
        .iter()
        .flat_map(|job| job.checked.iter())
        .filter(|c| c.counted.is_some())
        .map(|c| (c.outcome.unit_id, c.outcome.date))
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut transaction = commands.pool.begin().await?;
    let mut read: HashMap<Uuid, Loaded<Places>> =
        places::lock_and_read(commands, &mut transaction, &days).await?;
    let mut outcomes = Vec::with_capacity(jobs.len());
    let mut streams: Vec<Vec<StreamAppend>> = Vec::with_capacity(jobs.len());
    for job in jobs {
        let mut checked = job.checked.clone();
        let taken = take_on(&mut read, &mut checked).await?;
        let status = status_of(&checked, job.keep_valid_lines);
        if shared && status == BasketStatus::Rejected && taken.values().any(|(_, events)| !events.is_empty())
        {
            return Err(Failure::Again);
        }
        let (outcome, mut appends) = finish(job.basket_id, job.family_id, job.keep_valid_lines, checked);
        if status != BasketStatus::Rejected {
            for (id, (version, events)) in taken {
                if !events.is_empty() {
                    appends.push(StreamAppend::new::<Places>(id.to_string(), version, &events)?);
                }
            }
        }
        outcomes.push(outcome);
        streams.push(appends);
    }
    let written: Vec<usize> = (0..jobs.len())
        .filter(|&n| outcomes[n].status != BasketStatus::Rejected)
        .collect();
    let commands_rows: Vec<(&[StreamAppend], &Metadata)> = written
        .iter()
        .map(|&n| (streams[n].as_slice(), &jobs[n].metadata))
        .collect();
    let positions = store::append_many(&mut transaction, &commands_rows).await?;
    // The receipts commit with the lines: a basket retried, or submitted
    // twice at once, answers as the first.
    let receipts: Vec<sqlx::types::Json<Receipt>> = written
        .iter()
        .map(|&n| sqlx::types::Json(Receipt::from(&outcomes[n])))
        .collect();
    let ids: Vec<Uuid> = written.iter().map(|&n| jobs[n].basket_id).collect();
    let families: Vec<Uuid> = written.iter().map(|&n| jobs[n].family_id).collect();
    if !ids.is_empty() {
        sqlx::query(
            "INSERT INTO baskets (basket_id, family_id, outcome)
             SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::jsonb[])",
        )
        .bind(&ids)
        .bind(&families)
        .bind(&receipts)
        .execute(&mut *transaction)
        .await
        .map_err(store::conflict_or_database)?;
    }
    transaction.commit().await.map_err(store::conflict_or_database)?;
    let mut at: HashMap<usize, Option<Position>> = written.into_iter().zip(positions).collect();
    Ok(outcomes
        .into_iter()
        .enumerate()
        .map(|(n, outcome)| Written {
            outcome,
            position: at.remove(&n).flatten(),
        })
        .collect())
}
