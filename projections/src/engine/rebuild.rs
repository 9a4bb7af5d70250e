//! Rebuilding read models from the first event into a shadow schema,
//! comparing them with the live ones, swapping them in.

use sqlx::{PgConnection, PgPool};

use super::*;
use crate::store::{Position, RecordedEvent, StoreError};

/// What a rebuild did and found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rebuild {
    /// The events read (once) and applied to every projection.
    pub events: usize,
    /// Each projection's comparison, in the order they were given.
    pub reports: Vec<RebuildReport>,
}

/// What a rebuild found for one projection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RebuildReport {
    pub projection: &'static str,
    /// Whether the rebuilt tables held exactly the rows of the live ones.
    pub matched_live: bool,
}

/// Rebuilds projections from position zero into fresh tables, reading the
/// store once for all of them: each up to its live checkpoint, where its
/// tables are compared with the live ones, then all on to the last
/// committed event; then the tables are swapped in and the checkpoints
/// moved, all in one transaction that holds the checkpoints (the live
/// runners wait meanwhile).
#[tracing::instrument(skip_all, fields(projections = projections.len()))]
pub async fn rebuild(pool: &PgPool, projections: &[&dyn Projection]) -> Result<Rebuild, StoreError> {
    rebuild_in_batches(pool, projections, REBUILD_BATCH).await
}

/// [`rebuild`], reading `batch` events at a time (tests use small batches to
/// spread a few events over many).
pub async fn rebuild_in_batches(
    pool: &PgPool,
    projections: &[&dyn Projection],
    batch: i64,
) -> Result<Rebuild, StoreError> {
    let mut names: Vec<&'static str> = projections.iter().map(|p| p.name()).collect();
    names.sort_unstable();
    let mut schema = format!("rebuild_{}", names.join("_"));
    schema.truncate(63);
    let mut tx = pool.begin().await?;
    sqlx::query(
        "INSERT INTO projection_checkpoints (name) SELECT unnest($1::text[]) ON CONFLICT (name) DO NOTHING",
    )
    .bind(&names)
    .execute(&mut *tx)
    .await?;
    let targets = lock_checkpoints(&mut tx, &names, "").await?;
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
        .execute(&mut *tx)
        .await?;
    sqlx::query(&format!("CREATE SCHEMA {schema}"))
        .execute(&mut *tx)
        .await?;
    // Sorts and hashes of the comparison, and the deferred indexes, in
    // memory rather than in temporary files.
    sqlx::query("SET LOCAL work_mem = '256MB'")
        .execute(&mut *tx)
        .await?;
    sqlx::query("SET LOCAL maintenance_work_mem = '256MB'")
        .execute(&mut *tx)
        .await?;
    // The rebuilt tables keep their unique indexes (upserts need them) and
    // get the others once filled: one sorted build instead of a random
    // insert per row.
    sqlx::query("SET LOCAL search_path = pg_catalog")
        .execute(&mut *tx)
        .await?;
    let mut deferred_indexes = Vec::new();
    let mut deferred_keys: Vec<Vec<String>> = vec![Vec::new(); projections.len()];
    for (index, table) in projections
        .iter()
        .enumerate()
        .flat_map(|(index, p)| p.tables().iter().map(move |table| (index, table)))
    {
        sqlx::query(&format!(
            "CREATE TABLE {schema}.{table} (LIKE public.{table} INCLUDING ALL)"
        ))
        .execute(&mut *tx)
        .await?;
        if projections[index].fills_without_keys() {
            let keys: Vec<(String, String)> = sqlx::query_as(
                "SELECT quote_ident(conname), pg_get_constraintdef(oid) FROM pg_constraint
                 WHERE conrelid = $1::regclass AND contype IN ('p', 'u') ORDER BY conname",
            )
            .bind(format!("{schema}.{table}"))
            .fetch_all(&mut *tx)
            .await?;
            for (name, definition) in keys {
                sqlx::query(&format!("ALTER TABLE {schema}.{table} DROP CONSTRAINT {name}"))
                    .execute(&mut *tx)
                    .await?;
                deferred_keys[index].push(format!(
                    "ALTER TABLE {schema}.{table} ADD CONSTRAINT {name} {definition}"
                ));
            }
        }
        let copies: Vec<String> = sqlx::query_scalar(
            "SELECT c.relname::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
             WHERE i.indrelid = $1::regclass AND NOT i.indisunique",
        )
        .bind(format!("{schema}.{table}"))
        .fetch_all(&mut *tx)
        .await?;
        for copy in copies {
            sqlx::query(&format!("DROP INDEX {schema}.{copy}"))
                .execute(&mut *tx)
                .await?;
        }
        let definitions: Vec<String> = sqlx::query_scalar(
            "SELECT pg_get_indexdef(i.indexrelid) FROM pg_index i
             WHERE i.indrelid = $1::regclass AND NOT i.indisunique",
        )
        .bind(format!("public.{table}"))
        .fetch_all(&mut *tx)
        .await?;
        for definition in definitions {
            let live = format!(" ON public.{table} ");
            if !definition.contains(&live) {
                return Err(StoreError::Corrupt(format!(
                    "unexpected index definition: {definition}"
                )));
            }
            deferred_indexes.push(definition.replacen(&live, &format!(" ON {schema}.{table} "), 1));
        }
    }
    sqlx::query(&format!("SET LOCAL search_path = {schema}, public"))
        .execute(&mut *tx)
        .await?;

    // The projections still to compare, the nearest live checkpoint last.
    let mut to_compare: Vec<(Position, usize)> = projections
        .iter()
        .enumerate()
        .map(|(index, p)| (targets.get(p.name()).copied().unwrap_or_default(), index))
        .collect();
    to_compare.sort_unstable_by(|a, b| b.cmp(a));
    let mut matched_live = vec![true; projections.len()];
    let mut after = Position::default();
    let mut applied = 0;
    // The store is read on a second connection, a few batches ahead: the
    // next batch is read and decoded while this one is written. Events
    // below the horizon never change, so the reader needs no snapshot of
    // its own; this transaction is open, so the horizon stays below it.
    let mut batches = read_ahead(pool.acquire().await?, batch, group_metadata(projections));
    loop {
        let events = batches
            .recv()
            .await
            .ok_or_else(|| StoreError::Corrupt("the store reader stopped".into()))??;
        let mut rest = &events[..];
        // A projection is compared once every event up to its live
        // checkpoint is applied, and none after it. Its fill so far is
        // completed, but its keys are built only at the end: built now,
        // each later row would pay an index insert (a calendar behind by a
        // million events: 2.4 s to copy its rows into a keyed table, 0.8 s
        // without the key and with its one sorted build).
        while let Some(&(target, index)) = to_compare.last() {
            let split = rest.partition_point(|e| e.position <= target);
            if split == rest.len() && !events.is_empty() {
                break;
            }
            apply_to_all(&mut tx, projections, &rest[..split]).await?;
            rest = &rest[split..];
            projections[index].settle(&mut tx).await?;
            matched_live[index] = matches_live(&mut tx, projections[index], &schema).await?;
            to_compare.pop();
        }
        apply_to_all(&mut tx, projections, rest).await?;
        applied += events.len();
        match events.last() {
            Some(event) => after = event.position,
            None => break,
        }
    }
    for (projection, keys) in projections.iter().zip(&deferred_keys) {
        settle(&mut tx, *projection, keys).await?;
    }
    for definition in &deferred_indexes {
        sqlx::query(definition).execute(&mut *tx).await?;
    }
    advance_checkpoints(&mut tx, &names, after).await?;
    for table in projections.iter().flat_map(|p| p.tables()) {
        sqlx::query(&format!("DROP TABLE public.{table}"))
            .execute(&mut *tx)
            .await?;
        sqlx::query(&format!("ALTER TABLE {schema}.{table} SET SCHEMA public"))
            .execute(&mut *tx)
            .await?;
    }
    sqlx::query(&format!("DROP SCHEMA {schema}"))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(Rebuild {
        events: applied,
        reports: projections
            .iter()
            .zip(matched_live)
            .map(|(projection, matched_live)| RebuildReport {
                projection: projection.name(),
                matched_live,
            })
            .collect(),
    })
}

/// Events read per batch of a rebuild.
pub(super) const REBUILD_BATCH: i64 = 20_000;

/// Batches a rebuild's reader may hold ready.
pub(super) const READ_AHEAD: usize = 2;

/// Reads the whole store in commit order, batch by batch, on its own
/// connection; an empty batch marks the end. Stops when the receiver goes.
///
/// Fetching and decoding are two tasks: the server produces the next batch
/// while this one is decoded. In one task the connection sat idle during
/// each decode, a third of the reader's time (profile of a 1M-event
/// replay: 26 % of the client's samples decoding, 19 % fetching).
pub(super) fn read_ahead(
    mut conn: sqlx::pool::PoolConnection<sqlx::Postgres>,
    batch_size: i64,
    metadata_of: Option<Vec<&'static str>>,
) -> tokio::sync::mpsc::Receiver<Result<Vec<RecordedEvent>, StoreError>> {
    let (rows_sender, mut rows_receiver) = tokio::sync::mpsc::channel(1);
    let (sender, receiver) = tokio::sync::mpsc::channel(READ_AHEAD);
    tokio::spawn(async move {
        let mut after = Position::default();
        loop {
            // The next read starts after the last row; an error ends it.
            let fetched = fetch_after(&mut conn, after, batch_size, metadata_of.as_deref())
                .await
                .and_then(|rows| {
                    let last = rows.last().map(RecordedEvent::position_of_row).transpose()?;
                    Ok((rows, last))
                });
            let (rows, next) = match fetched {
                Ok((rows, last)) => (Ok(rows), last),
                Err(error) => (Err(error), None),
            };
            if rows_sender.send(rows).await.is_err() {
                return;
            }
            match next {
                Some(position) => after = position,
                None => return,
            }
        }
    });
    tokio::spawn(async move {
        while let Some(rows) = rows_receiver.recv().await {
            let batch = rows.and_then(|rows| rows.iter().map(RecordedEvent::from_row).collect());
            if sender.send(batch).await.is_err() {
                return;
            }
        }
    });
    receiver
}

/// Fills every projection of a rebuild with a batch.
pub(super) async fn apply_to_all(
    conn: &mut PgConnection,
    projections: &[&dyn Projection],
    events: &[RecordedEvent],
) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    for projection in projections {
        apply_its_events(conn, *projection, events, Mode::Fill).await?;
    }
    Ok(())
}

/// Builds the keys a rebuild deferred for `projection`'s tables, then lets
/// it complete what its fill left.
pub(super) async fn settle(
    conn: &mut PgConnection,
    projection: &dyn Projection,
    deferred_keys: &[String],
) -> Result<(), StoreError> {
    for key in deferred_keys {
        sqlx::query(key).execute(&mut *conn).await?;
    }
    projection.settle(conn).await
}

/// Whether a projection's rebuilt tables hold exactly the rows of its live
/// ones.
///
/// Each side is summed up by its row count and the sum of a 64-bit hash of
/// every row: one scan of each table, each about a quarter of the time of
/// pairing the rows. A difference goes unseen only if the hashes of the differing rows
/// happen to add up to the same sum (a chance of about one in 2^64). When
/// the sums differ, the rows are compared one by one and the differences
/// counted for the log.
pub(super) async fn matches_live(
    conn: &mut PgConnection,
    projection: &dyn Projection,
    schema: &str,
) -> Result<bool, StoreError> {
    let mut matched = true;
    for table in projection.tables() {
        let live = digest(conn, &format!("public.{table}")).await?;
        let rebuilt = digest(conn, &format!("{schema}.{table}")).await?;
        if live == rebuilt {
            continue;
        }
        let differences = count_differences(conn, table, schema).await?;
        tracing::warn!(table, differences, "rebuilt read model differs from the live one");
        matched = false;
    }
    Ok(matched)
}

/// A table's row count and the sum of its rows' hashes (as text: the sum
/// outgrows 64 bits). Rows are hashed value by value, or by their text
/// when a column's type has no hash (`json`): five times slower.
pub(super) async fn digest(conn: &mut PgConnection, table: &str) -> Result<(i64, String), StoreError> {
    let by_values =
        format!("SELECT count(*), coalesce(sum(hash_record_extended(t, 0)), 0)::text FROM {table} t");
    sqlx::query("SAVEPOINT digest").execute(&mut *conn).await?;
    match sqlx::query_as(&by_values).fetch_one(&mut *conn).await {
        Ok(digest) => {
            sqlx::query("RELEASE SAVEPOINT digest")
                .execute(&mut *conn)
                .await?;
            Ok(digest)
        }
        Err(sqlx::Error::Database(error)) if error.code().as_deref() == Some(UNDEFINED_FUNCTION) => {
            sqlx::query("ROLLBACK TO SAVEPOINT digest")
                .execute(&mut *conn)
                .await?;
            let by_text = format!(
                "SELECT count(*), coalesce(sum(hashtextextended(t::text, 0)), 0)::text FROM {table} t"
            );
            Ok(sqlx::query_as(&by_text).fetch_one(&mut *conn).await?)
        }
        Err(error) => Err(error.into()),
    }
}

/// PostgreSQL's error code when a type has no hash function.
pub(super) const UNDEFINED_FUNCTION: &str = "42883";

/// How many rows of the live table and the rebuilt one have no equal on
/// the other side. Rows are compared by their text, which every type has.
pub(super) async fn count_differences(
    conn: &mut PgConnection,
    table: &str,
    schema: &str,
) -> Result<i64, StoreError> {
    let key: Vec<String> = sqlx::query_scalar(
        "SELECT quote_ident(a.attname) FROM pg_index i
         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
         WHERE i.indrelid = $1::regclass AND i.indisprimary ORDER BY a.attnum",
    )
    .bind(format!("public.{table}"))
    .fetch_all(&mut *conn)
    .await?;
    // With a primary key, one join pairs the rows by key (a row missing on
    // one side has a null key there).
    let sql = match key.first() {
        Some(first) => {
            let on: Vec<String> = key.iter().map(|k| format!("l.{k} = r.{k}")).collect();
            format!(
                "SELECT count(*) FROM public.{table} l FULL JOIN {schema}.{table} r ON {}
                 WHERE l.{first} IS NULL OR r.{first} IS NULL OR l::text <> r::text",
                on.join(" AND ")
            )
        }
        None => format!(
            "SELECT count(*) FROM (
               (SELECT l::text FROM public.{table} l EXCEPT ALL SELECT r::text FROM {schema}.{table} r)
               UNION ALL
               (SELECT r::text FROM {schema}.{table} r EXCEPT ALL SELECT l::text FROM public.{table} l)
             ) AS differences"
        ),
    };
    Ok(sqlx::query_scalar(&sql).fetch_one(&mut *conn).await?)
}
