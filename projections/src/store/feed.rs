//! The auditor's feed: every event of one commune, in commit order, below
//! the horizon (so that a page read after a cursor never misses an event
//! that commits later at a lower position).
//!
//! An event is the commune's when its stream is the commune's own, or its
//! stream's first event names the commune (a reservation, an invoice, a
//! payment, a family opened there), or it is a day's places of one of the
//! commune's units, or its invoice numbers; a family's events are those
//! of a family that belongs to the commune, naming it or no commune.
//! "Names" reads the payload's text, as compact as the store writes it
//! (`"collectivity_id":"…"`): a text search, not a parse of every event.

use chrono::{DateTime, Utc};
use sqlx::{PgPool, Row};
use uuid::Uuid;

use super::*;

/// What a page of the feed reads.
#[derive(Debug, Clone, Default)]
pub struct FeedFilter {
    pub aggregate_types: Option<Vec<String>>,
    pub event_types: Option<Vec<String>>,
    /// Recorded at or after.
    pub from: Option<DateTime<Utc>>,
    /// Recorded before.
    pub to: Option<DateTime<Utc>>,
}

/// Who the commune is, as its events name it: its id, its units' ids (a
/// day's places name only the unit) and its invoice numbers' streams.
#[derive(Debug, Clone)]
pub struct Commune {
    pub collectivity_id: Uuid,
    pub unit_ids: Vec<Uuid>,
    pub numbers_ids: Vec<Uuid>,
}

/// How many events, in commit order, one read of the feed goes through
/// whatever it finds: a commune's events may be few among many, and a
/// filtered scan of the whole store for one page took a second.
pub const WINDOW: i64 = 20_000;

/// What one read of the feed found.
#[derive(Debug, Default)]
pub struct Window {
    pub events: Vec<RecordedEvent>,
    /// Where the next read starts; `None`: the store ends here.
    pub next: Option<Position>,
}

/// Up to `limit` events of `commune` among the next [`WINDOW`] events
/// after `after`, in commit order, below the horizon.
pub async fn commune_events(
    pool: &PgPool,
    commune: &Commune,
    after: Position,
    limit: i64,
    filter: &FeedFilter,
) -> Result<Window, StoreError> {
    let end = sqlx::query(
        "SELECT transaction_id::text::bigint, global_position, count(*) OVER ()
         FROM (SELECT e.transaction_id, e.global_position FROM events e
               WHERE (e.transaction_id, e.global_position) > ($1::text::xid8, $2)
                 AND e.transaction_id < greatest(pg_snapshot_xmin(pg_current_snapshot()),
                                                 (SELECT fence FROM events_fence))
               ORDER BY e.transaction_id, e.global_position LIMIT $3) window_
         ORDER BY transaction_id DESC, global_position DESC LIMIT 1",
    )
    .bind(after.transaction_id.to_string())
    .bind(after.global_position)
    .bind(WINDOW)
    .fetch_optional(pool)
    .await?;
    let Some(end) = end else {
        return Ok(Window::default());
    };
    let scanned: i64 = end.try_get(2)?;
    let end = Position {
        transaction_id: end.try_get(0)?,
        global_position: end.try_get(1)?,
    };
    let events = in_window(pool, commune, after, end, limit, filter).await?;
    let next = match events.last() {
        Some(last) if events.len() as i64 >= limit => Some(last.position),
        _ if scanned < WINDOW => None,
        _ => Some(end),
    };
    Ok(Window { events, next })
}

/// The events of `commune` in `(after, end]`, at most `limit`. Each
/// stream's first event is looked up by its key, as a scalar: written as
/// `EXISTS`, it was planned as a hash of every first event of the store,
/// built again for every window (0.85 s on a million events).
async fn in_window(
    pool: &PgPool,
    commune: &Commune,
    after: Position,
    end: Position,
    limit: i64,
    filter: &FeedFilter,
) -> Result<Vec<RecordedEvent>, StoreError> {
    let names = format!("%\"collectivity_id\":\"{}\"%", commune.collectivity_id);
    let units: Vec<String> = commune.unit_ids.iter().map(Uuid::to_string).collect();
    let numbers: Vec<String> = commune.numbers_ids.iter().map(Uuid::to_string).collect();
    let sql = format!(
        "{} WHERE (e.transaction_id, e.global_position) > ($2::text::xid8, $3)
           AND (e.transaction_id, e.global_position) <= ($12::text::xid8, $13)
           AND ($5::text[] IS NULL OR e.aggregate_type = ANY($5))
           AND ($6::text[] IS NULL OR e.event_type = ANY($6))
           AND ($7::timestamptz IS NULL OR e.recorded_at >= $7)
           AND ($8::timestamptz IS NULL OR e.recorded_at < $8)
           AND CASE e.aggregate_type
               WHEN 'Collectivity' THEN e.aggregate_id = $1
               WHEN 'InvoiceNumbers' THEN e.aggregate_id = ANY($10)
               WHEN 'Places' THEN coalesce((
                   SELECT substring(f.payload::text FROM '\"unit_id\":\"([0-9a-f-]{{36}})\"') = ANY($9)
                   FROM events f
                   WHERE f.aggregate_type = 'Places' AND f.aggregate_id = e.aggregate_id AND f.sequence = 1), false)
               WHEN 'Family' THEN
                   (e.payload::text LIKE $4 OR e.payload::text NOT LIKE '%\"collectivity_id\":%')
                   AND (SELECT true FROM events j
                        WHERE j.aggregate_type = 'Family' AND j.aggregate_id = e.aggregate_id
                          AND j.event_type IN ('FamilyAccountOpened', 'JoinedCollectivity')
                          AND j.payload::text LIKE $4
                        LIMIT 1) IS NOT NULL
               ELSE CASE WHEN e.sequence = 1 THEN e.payload::text LIKE $4
                    ELSE coalesce((
                        SELECT f.payload::text LIKE $4 FROM events f
                        WHERE f.aggregate_type = e.aggregate_type AND f.aggregate_id = e.aggregate_id
                          AND f.sequence = 1), false) END
               END
         ORDER BY e.transaction_id, e.global_position LIMIT $11",
        RecordedEvent::SELECT
    );
    let rows = sqlx::query(&sql)
        .bind(commune.collectivity_id.to_string())
        .bind(after.transaction_id.to_string())
        .bind(after.global_position)
        .bind(&names)
        .bind(filter.aggregate_types.as_deref())
        .bind(filter.event_types.as_deref())
        .bind(filter.from)
        .bind(filter.to)
        .bind(&units)
        .bind(&numbers)
        .bind(limit)
        .bind(end.transaction_id.to_string())
        .bind(end.global_position)
        .fetch_all(pool)
        .await?;
    rows.iter().map(RecordedEvent::from_row).collect()
}
