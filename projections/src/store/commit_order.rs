//! Reading the events after a position, in commit order, below the
//! horizon: what the projection engine and a rebuild read.

use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};

use super::*;

/// The next events in commit order, below the horizon: the snapshot's, or
/// the fence when a runner raised it higher (see
/// [`crate::engine::fence`]).
pub const EVENTS_AFTER: &str = "WHERE (e.transaction_id, e.global_position) > ($1::text::xid8, $2)
       AND e.transaction_id < greatest(pg_snapshot_xmin(pg_current_snapshot()),
                                       (SELECT fence FROM events_fence))
     ORDER BY e.transaction_id, e.global_position";

/// Reads up to `limit` events after `after` in commit order, below the
/// snapshot horizon, with the metadata of the events of the types
/// `metadata_of` names (`None`: of every event).
pub async fn read_after(
    conn: &mut PgConnection,
    after: Position,
    limit: i64,
    metadata_of: Option<&[&str]>,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let rows = fetch_after(conn, after, limit, metadata_of).await?;
    rows.iter().map(RecordedEvent::from_row).collect()
}

/// [`read_after`]'s rows, not yet decoded.
pub async fn fetch_after(
    conn: &mut PgConnection,
    after: Position,
    limit: i64,
    metadata_of: Option<&[&str]>,
) -> Result<Vec<PgRow>, StoreError> {
    Ok(sqlx::query(&format!(
        "{} {EVENTS_AFTER} LIMIT $3",
        RecordedEvent::select_with_metadata_of("$4")
    ))
    .bind(after.transaction_id.to_string())
    .bind(after.global_position)
    .bind(limit)
    .bind(metadata_of)
    .fetch_all(&mut *conn)
    .await?)
}

/// How many events a group that reads only some aggregate types may go
/// past in one batch, as a multiple of its batch size. Going past an event
/// costs one entry of an index-only scan; a batch costs a transaction. A
/// group that reads only families' events, woken by its polls during a
/// rush of baskets, would otherwise crawl through the reservations one
/// batch size at a time.
pub const PASS_OVER: i64 = 20;

/// The events after `after` of these aggregate types, at most `limit` of
/// them, among the next `limit * PASS_OVER` events: how many events were
/// passed, the position of the last (whatever its type: where the reader
/// may move to), and the events of these types. The range is fixed first,
/// below the horizon, so no event can still appear inside it when its
/// events of these types are read; when more than `limit` of them are in
/// it, it ends at the last one read.
pub async fn read_after_of_types(
    conn: &mut PgConnection,
    after: Position,
    limit: i64,
    aggregate_types: &[&str],
    metadata_of: Option<&[&str]>,
) -> Result<Passed, StoreError> {
    let end = sqlx::query(&format!(
        "SELECT transaction_id::text::bigint, global_position, count(*) OVER ()
         FROM (SELECT e.transaction_id, e.global_position FROM events e {EVENTS_AFTER} LIMIT $3) range
         ORDER BY transaction_id DESC, global_position DESC LIMIT 1"
    ))
    .bind(after.transaction_id.to_string())
    .bind(after.global_position)
    .bind(limit.saturating_mul(PASS_OVER))
    .fetch_optional(&mut *conn)
    .await?;
    let Some(end) = end else {
        return Ok(Passed::default());
    };
    let count: i64 = end.try_get(2)?;
    let end = Position {
        transaction_id: end.try_get(0)?,
        global_position: end.try_get(1)?,
    };
    let rows = sqlx::query(&format!(
        "{} WHERE (e.transaction_id, e.global_position) > ($1::text::xid8, $2)
           AND (e.transaction_id, e.global_position) <= ($3::text::xid8, $4)
           AND e.aggregate_type = ANY($5)
         ORDER BY e.transaction_id, e.global_position LIMIT $7",
        RecordedEvent::select_with_metadata_of("$6")
    ))
    .bind(after.transaction_id.to_string())
    .bind(after.global_position)
    .bind(end.transaction_id.to_string())
    .bind(end.global_position)
    .bind(aggregate_types)
    .bind(metadata_of)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    let events: Vec<RecordedEvent> = rows
        .iter()
        .map(RecordedEvent::from_row)
        .collect::<Result<_, _>>()?;
    let cut = match events.last() {
        Some(last) if events.len() as i64 >= limit && last.position < end => last.position,
        _ => {
            return Ok(Passed {
                count: count as usize,
                last: Some(end),
                events,
            })
        }
    };
    // A full batch of events it reads: the batch ends at the last of them,
    // the rest of the range is for the next.
    let count: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM events
         WHERE (transaction_id, global_position) > ($1::text::xid8, $2)
           AND (transaction_id, global_position) <= ($3::text::xid8, $4)",
    )
    .bind(after.transaction_id.to_string())
    .bind(after.global_position)
    .bind(cut.transaction_id.to_string())
    .bind(cut.global_position)
    .fetch_one(&mut *conn)
    .await?;
    Ok(Passed {
        count: count as usize,
        last: Some(cut),
        events,
    })
}

/// What one read of a batch went past.
#[derive(Debug, Default)]
pub struct Passed {
    /// How many events the read went past, read or not.
    pub count: usize,
    /// The last of them.
    pub last: Option<Position>,
    /// Those the reader reads.
    pub events: Vec<RecordedEvent>,
}

impl Passed {
    pub fn all(events: Vec<RecordedEvent>) -> Passed {
        Passed {
            count: events.len(),
            last: events.last().map(|e| e.position),
            events,
        }
    }
}

/// Whether any event, committed or not yet visible, follows `after` in
/// commit order: one probe of the commit-order index. An EXISTS was
/// planned as a sequential scan expecting an early match (the planner
/// drops an ORDER BY inside EXISTS), reading the whole table when there
/// was none: 50-100 ms on every idle poll.
pub async fn has_events_after(conn: &mut PgConnection, after: Position) -> Result<bool, StoreError> {
    Ok(sqlx::query(
        "SELECT 1 FROM events WHERE (transaction_id, global_position) > ($1::text::xid8, $2)
         ORDER BY transaction_id, global_position LIMIT 1",
    )
    .bind(after.transaction_id.to_string())
    .bind(after.global_position)
    .fetch_optional(&mut *conn)
    .await?
    .is_some())
}

/// The first event of each of these streams of one type, as (stream id,
/// payload brought up to its current version): one index lookup per stream.
pub async fn first_events(
    conn: &mut PgConnection,
    aggregate_type: &str,
    aggregate_ids: &[String],
) -> Result<Vec<(String, Value)>, StoreError> {
    let rows = sqlx::query(
        "SELECT first.aggregate_id, first.event_type, first.event_version, first.payload
         FROM unnest($2::text[]) AS wanted(id),
           LATERAL (SELECT aggregate_id, event_type, event_version, payload FROM events
                    WHERE aggregate_type = $1 AND aggregate_id = wanted.id AND sequence = 1
                    OFFSET 0) AS first",
    )
    .bind(aggregate_type)
    .bind(aggregate_ids)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|row| {
            let id: String = row.try_get(0)?;
            let event_type: String = row.try_get(1)?;
            let version: String = row.try_get(2)?;
            let mut payload: Value = row.try_get(3)?;
            espace_famille_domain::upcast::upcast(aggregate_type, &event_type, &version, &mut payload)
                .map_err(super::load::upcast_failed(&id, 1))?;
            Ok((id, payload))
        })
        .collect()
}

/// Whether every committed event is below the snapshot's horizon, where
/// readers in commit order see it.
pub async fn all_below_horizon(pool: &sqlx::PgPool) -> Result<bool, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT coalesce(max(transaction_id) < pg_snapshot_xmin(pg_current_snapshot()), true) FROM events",
    )
    .fetch_one(pool)
    .await?)
}

/// The position of the last event committed and visible now; `None` for an
/// empty store.
pub async fn head(pool: &sqlx::PgPool) -> Result<Option<Position>, StoreError> {
    let row = sqlx::query(
        "SELECT transaction_id::text::bigint AS transaction_id, global_position FROM events
         ORDER BY transaction_id DESC, global_position DESC LIMIT 1",
    )
    .fetch_optional(pool)
    .await?;
    row.map(|row| {
        Ok(Position {
            transaction_id: row.try_get("transaction_id")?,
            global_position: row.try_get("global_position")?,
        })
    })
    .transpose()
}

/// Where a projection stands against the store.
#[derive(Debug, Clone, PartialEq)]
pub struct Behind {
    pub projection: String,
    /// The global position of the last event it applied.
    pub position: i64,
    /// The events committed after its checkpoint, counted up to the cap.
    pub events: i64,
    /// How long ago the first of them was recorded, in seconds (0: none).
    pub seconds: f64,
    /// Whether it stopped at an event it cannot apply.
    pub stopped: bool,
}

/// Every projection's standing: what `/metrics` shows. Counting stops at
/// `cap` events behind, so a projection far behind costs no long scan.
pub async fn projections_behind(pool: &sqlx::PgPool, cap: i64) -> Result<Vec<Behind>, StoreError> {
    let rows = sqlx::query(
        "SELECT c.name, c.last_position,
                (SELECT count(*) FROM (SELECT 1 FROM events e
                   WHERE (e.transaction_id, e.global_position) > (c.last_transaction_id, c.last_position)
                   LIMIT $1) behind) AS events,
                coalesce(extract(epoch FROM now() - (SELECT e.recorded_at FROM events e
                   WHERE (e.transaction_id, e.global_position) > (c.last_transaction_id, c.last_position)
                   ORDER BY e.transaction_id, e.global_position LIMIT 1)), 0)::float8 AS seconds,
                EXISTS (SELECT 1 FROM projection_failures f WHERE f.projection = c.name) AS stopped
         FROM projection_checkpoints c ORDER BY c.name",
    )
    .bind(cap)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(Behind {
                projection: row.try_get("name")?,
                position: row.try_get("last_position")?,
                events: row.try_get("events")?,
                seconds: row.try_get::<f64, _>("seconds")?.max(0.0),
                stopped: row.try_get("stopped")?,
            })
        })
        .collect()
}
