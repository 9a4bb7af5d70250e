//! The shadow schema a rebuild fills, and its steps.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool, Postgres, Transaction};
use tokio::sync::mpsc::Receiver;

use super::*;

/// How far [`Shadow::fill`] goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// Every event up to this position, and none after it.
    Position(Position),
    /// To the last event, applying only those recorded at or before this
    /// instant: the read models as they stood then. A shadow filled so
    /// cannot be swapped in.
    Recorded(DateTime<Utc>),
    /// To the last committed event.
    End,
}

/// Shadow tables of some projections, in a schema of their own, in one
/// transaction that holds the projections' checkpoints (their live
/// runners wait meanwhile), filled from the store read once. A shadow kept
/// for an auditor ([`Shadow::prepare_kept`]) holds no checkpoint: it never
/// replaces the live tables.
pub struct Shadow<'p> {
    tx: Transaction<'static, Postgres>,
    projections: &'p [&'p dyn Projection],
    names: Vec<&'static str>,
    schema: String,
    /// The live checkpoints, held.
    live: HashMap<String, Position>,
    /// Indexes and keys built once the tables are filled (see
    /// [`Projection::fills_without_keys`]).
    deferred_indexes: Vec<String>,
    deferred_keys: Vec<Vec<String>>,
    reader: Receiver<Result<Vec<RecordedEvent>, StoreError>>,
    /// The batch being applied, and how much of it was.
    batch: Vec<RecordedEvent>,
    taken: usize,
    /// The reader reached the last event.
    ended: bool,
    /// The last event applied, the events read, whether some were left out.
    after: Position,
    read: usize,
    applied: usize,
    skipped: bool,
    /// Whether the live checkpoints are held (none for a kept shadow).
    holds_checkpoints: bool,
    /// The time each projection spent applying events.
    applying: Vec<Duration>,
    /// Told how many events each batch read.
    progress: Option<Box<dyn FnMut(u64) + Send + 'p>>,
}

/// A schema [`Shadow::keep`] left for an auditor to read: read models as
/// they stood at an instant.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Kept {
    pub schema_name: String,
    pub until: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    /// The events recorded up to the instant, applied.
    pub events: i64,
    pub read_models: Vec<String>,
}

/// The schemas kept, oldest first.
pub async fn kept(pool: &PgPool) -> Result<Vec<Kept>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT schema_name, until, created_at, events, read_models FROM replay_snapshots ORDER BY created_at, schema_name",
    )
    .fetch_all(pool)
    .await?)
}

/// Drops a schema [`Shadow::keep`] left, and its entry; false when no such
/// schema was kept (nothing else can be dropped this way).
pub async fn drop_kept(pool: &PgPool, schema: &str) -> Result<bool, StoreError> {
    let mut tx = pool.begin().await?;
    let found: Option<String> =
        sqlx::query_scalar("DELETE FROM replay_snapshots WHERE schema_name = $1 RETURNING schema_name")
            .bind(schema)
            .fetch_optional(&mut *tx)
            .await?;
    let Some(name) = found else {
        return Ok(false);
    };
    sqlx::query(&format!("DROP SCHEMA IF EXISTS {} CASCADE", quoted(&name)))
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(true)
}

/// Whether `name` can be the schema of a kept shadow: lower-case letters,
/// digits and underscores, a letter first, at most 63 bytes, and none of
/// the names PostgreSQL or the rebuild use.
pub fn valid_schema_name(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.starts_with("pg_")
        && !name.starts_with("rebuild_")
        && !matches!(name, "public" | "information_schema")
}

fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl<'p> Shadow<'p> {
    /// Locks the projections' checkpoints and creates their tables, empty,
    /// in a schema of their own; the store will be read `batch` events at
    /// a time.
    pub async fn prepare(
        pool: &PgPool,
        projections: &'p [&'p dyn Projection],
        batch: i64,
    ) -> Result<Shadow<'p>, StoreError> {
        let mut names: Vec<&'static str> = projections.iter().map(|p| p.name()).collect();
        names.sort_unstable();
        let mut schema = format!("rebuild_{}", names.join("_"));
        schema.truncate(63);
        Self::open(pool, projections, batch, schema, true).await
    }

    /// Creates the projections' tables, empty, in the schema `schema`
    /// (which must not exist: see [`valid_schema_name`]), holding no
    /// checkpoint: a shadow to fill as of an instant and [`Shadow::keep`]
    /// for an auditor.
    pub async fn prepare_kept(
        pool: &PgPool,
        projections: &'p [&'p dyn Projection],
        batch: i64,
        schema: &str,
    ) -> Result<Shadow<'p>, StoreError> {
        if !valid_schema_name(schema) {
            return Err(StoreError::Corrupt(format!(
                "{schema:?} cannot name a kept schema (lower-case letters, digits, underscores, a letter first)"
            )));
        }
        Self::open(pool, projections, batch, schema.to_string(), false).await
    }

    async fn open(
        pool: &PgPool,
        projections: &'p [&'p dyn Projection],
        batch: i64,
        schema: String,
        hold_checkpoints: bool,
    ) -> Result<Shadow<'p>, StoreError> {
        let mut names: Vec<&'static str> = projections.iter().map(|p| p.name()).collect();
        names.sort_unstable();
        let mut tx = pool.begin().await?;
        let live = if hold_checkpoints {
            sqlx::query(
                "INSERT INTO projection_checkpoints (name) SELECT unnest($1::text[]) ON CONFLICT (name) DO NOTHING",
            )
            .bind(&names)
            .execute(&mut *tx)
            .await?;
            let live = lock_checkpoints(&mut tx, &names, "").await?;
            sqlx::query(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
                .execute(&mut *tx)
                .await?;
            live
        } else {
            HashMap::new()
        };
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
        sqlx::query("SET LOCAL search_path = pg_catalog")
            .execute(&mut *tx)
            .await?;
        let mut deferred_indexes = Vec::new();
        let mut deferred_keys: Vec<Vec<String>> = vec![Vec::new(); projections.len()];
        for (index, projection) in projections.iter().enumerate() {
            for table in projection.tables() {
                let (keys, indexes) =
                    shadow_table(&mut tx, &schema, table, projection.fills_without_keys()).await?;
                deferred_keys[index].extend(keys);
                deferred_indexes.extend(indexes);
            }
        }
        sqlx::query(&format!("SET LOCAL search_path = {schema}, public"))
            .execute(&mut *tx)
            .await?;
        // The store is read on a second connection, a few batches ahead:
        // the next batch is read and decoded while this one is written.
        // Events below the horizon never change, so the reader needs no
        // snapshot of its own; this transaction is open, so the horizon
        // stays below it.
        let reader = read_ahead(pool.acquire().await?, batch, group_metadata(projections));
        Ok(Shadow {
            tx,
            projections,
            names,
            schema,
            live,
            deferred_indexes,
            deferred_keys,
            reader,
            batch: Vec::new(),
            taken: 0,
            ended: false,
            after: Position::default(),
            read: 0,
            applied: 0,
            skipped: false,
            holds_checkpoints: hold_checkpoints,
            applying: vec![Duration::ZERO; projections.len()],
            progress: None,
        })
    }

    /// Tells `progress` how many events each batch read, as it is applied.
    pub fn on_progress(&mut self, progress: impl FnMut(u64) + Send + 'p) {
        self.progress = Some(Box::new(progress));
    }

    /// The time each projection (in the order prepared) spent applying
    /// events so far.
    pub fn applying(&self) -> &[Duration] {
        &self.applying
    }

    /// The schema the shadow tables are in.
    pub fn schema(&self) -> &str {
        &self.schema
    }

    /// A projection's live checkpoint, as held.
    pub fn live_checkpoint(&self, name: &str) -> Position {
        self.live.get(name).copied().unwrap_or_default()
    }

    /// The events read so far, applied or left out.
    pub fn events_read(&self) -> usize {
        self.read
    }

    /// Applies the next events to every projection's shadow tables, as far
    /// as `until` says.
    pub async fn fill(&mut self, until: Until) -> Result<(), StoreError> {
        loop {
            if self.taken == self.batch.len() {
                if self.ended {
                    return Ok(());
                }
                self.batch = self
                    .reader
                    .recv()
                    .await
                    .ok_or_else(|| StoreError::Corrupt("the store reader stopped".into()))??;
                self.taken = 0;
                if self.batch.is_empty() {
                    self.ended = true;
                    return Ok(());
                }
            }
            let rest = &self.batch[self.taken..];
            let split = match until {
                Until::Position(bound) => rest.partition_point(|e| e.position <= bound),
                Until::Recorded(_) | Until::End => rest.len(),
            };
            let part = &rest[..split];
            match until {
                Until::Recorded(instant) if part.iter().any(|e| e.recorded_at > instant) => {
                    let kept: Vec<RecordedEvent> = part
                        .iter()
                        .filter(|e| e.recorded_at <= instant)
                        .cloned()
                        .collect();
                    apply_to_all(&mut self.tx, self.projections, &kept, &mut self.applying).await?;
                    self.applied += kept.len();
                    self.skipped = true;
                }
                _ => {
                    apply_to_all(&mut self.tx, self.projections, part, &mut self.applying).await?;
                    self.applied += part.len();
                }
            }
            if let Some(last) = part.last() {
                self.after = last.position;
            }
            self.read += split;
            self.taken += split;
            if let Some(progress) = self.progress.as_mut() {
                progress(split as u64);
            }
            if self.taken < self.batch.len() {
                // The next event is past the bound.
                return Ok(());
            }
        }
    }

    /// How the projection's shadow tables (the `index`-th of those
    /// prepared) differ from its live ones, once it completed what its
    /// fill left.
    pub async fn compare(&mut self, index: usize) -> Result<Comparison, StoreError> {
        let projection = self.projections[index];
        projection.settle(&mut self.tx).await?;
        compare_with_live(&mut self.tx, projection, &self.schema).await
    }

    /// Builds the deferred keys and indexes, puts the shadow tables in
    /// place of the live ones, moves the checkpoints to the last event and
    /// commits. Only a shadow filled to the last event, none left out.
    pub async fn swap(mut self) -> Result<(), StoreError> {
        if !self.ended || self.skipped || !self.holds_checkpoints {
            self.tx.rollback().await?;
            return Err(StoreError::Corrupt(
                "only read models filled with every event can replace the live ones".into(),
            ));
        }
        for (projection, keys) in self.projections.iter().zip(&self.deferred_keys) {
            settle(&mut self.tx, *projection, keys).await?;
        }
        for definition in &self.deferred_indexes {
            sqlx::query(definition).execute(&mut *self.tx).await?;
        }
        advance_checkpoints(&mut self.tx, &self.names, self.after).await?;
        let schema = &self.schema;
        for table in self.projections.iter().flat_map(|p| p.tables()) {
            sqlx::query(&format!("DROP TABLE public.{table}"))
                .execute(&mut *self.tx)
                .await?;
            sqlx::query(&format!("ALTER TABLE {schema}.{table} SET SCHEMA public"))
                .execute(&mut *self.tx)
                .await?;
        }
        sqlx::query(&format!("DROP SCHEMA {schema}"))
            .execute(&mut *self.tx)
            .await?;
        self.tx.commit().await?;
        Ok(())
    }

    /// Builds the deferred keys and indexes and commits the shadow tables
    /// where they are, for an auditor to read; records them with the
    /// instant they were filled as of. Only a shadow [`Shadow::prepare_kept`]
    /// made, filled to the last event.
    pub async fn keep(mut self, until: DateTime<Utc>) -> Result<Kept, StoreError> {
        if self.holds_checkpoints || !self.ended {
            self.tx.rollback().await?;
            return Err(StoreError::Corrupt(
                "only a kept shadow filled to the last event can be kept".into(),
            ));
        }
        for (projection, keys) in self.projections.iter().zip(&self.deferred_keys) {
            settle(&mut self.tx, *projection, keys).await?;
        }
        for definition in &self.deferred_indexes {
            sqlx::query(definition).execute(&mut *self.tx).await?;
        }
        let names: Vec<String> = self.names.iter().map(|n| n.to_string()).collect();
        let kept: Kept = sqlx::query_as(
            "INSERT INTO replay_snapshots (schema_name, until, events, read_models) VALUES ($1, $2, $3, $4)
             RETURNING schema_name, until, created_at, events, read_models",
        )
        .bind(&self.schema)
        .bind(until)
        .bind(self.applied as i64)
        .bind(&names)
        .fetch_one(&mut *self.tx)
        .await?;
        self.tx.commit().await?;
        Ok(kept)
    }

    /// Drops the shadow tables and lets the checkpoints go; the live read
    /// models are as they were.
    pub async fn discard(self) -> Result<(), StoreError> {
        self.tx.rollback().await?;
        Ok(())
    }

    /// Completes what each projection's fill left so far, and gives the
    /// transaction the shadow lives in, its tables first on the search
    /// path: to read them as filled (as of an instant, say) before they
    /// are swapped in or dropped.
    pub async fn read(&mut self) -> Result<&mut PgConnection, StoreError> {
        for projection in self.projections {
            projection.settle(&mut self.tx).await?;
        }
        Ok(&mut self.tx)
    }
}

/// Creates the shadow of a live table with the same columns and unique
/// indexes (upserts need them); the other indexes are built once it is
/// filled (one sorted build instead of a random insert per row), and its
/// keys too for a projection that fills without them. Returns the keys and
/// indexes deferred.
async fn shadow_table(
    tx: &mut PgConnection,
    schema: &str,
    table: &str,
    without_keys: bool,
) -> Result<(Vec<String>, Vec<String>), StoreError> {
    sqlx::query(&format!(
        "CREATE TABLE {schema}.{table} (LIKE public.{table} INCLUDING ALL)"
    ))
    .execute(&mut *tx)
    .await?;
    let mut deferred_keys = Vec::new();
    if without_keys {
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
            deferred_keys.push(format!(
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
    let mut deferred_indexes = Vec::new();
    for definition in definitions {
        let live = format!(" ON public.{table} ");
        if !definition.contains(&live) {
            return Err(StoreError::Corrupt(format!(
                "unexpected index definition: {definition}"
            )));
        }
        deferred_indexes.push(definition.replacen(&live, &format!(" ON {schema}.{table} "), 1));
    }
    Ok((deferred_keys, deferred_indexes))
}

/// Fills every projection of a rebuild with a batch, adding the time each
/// took to `applying`.
pub(super) async fn apply_to_all(
    conn: &mut PgConnection,
    projections: &[&dyn Projection],
    events: &[RecordedEvent],
    applying: &mut [Duration],
) -> Result<(), StoreError> {
    if events.is_empty() {
        return Ok(());
    }
    for (projection, spent) in projections.iter().zip(applying) {
        let started = Instant::now();
        apply_its_events(conn, *projection, events, Mode::Fill).await?;
        *spent += started.elapsed();
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
