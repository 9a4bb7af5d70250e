//! Comparing a rebuilt read model with the live one.

use sqlx::PgConnection;

use super::*;

/// How many differing rows of each table a comparison reports by key; the
/// others are counted.
pub const SHOWN_PER_TABLE: usize = 20;

/// One row that differs between a live table and its rebuilt copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Difference {
    pub table: &'static str,
    /// The row's primary key, column by column (`None` for a table
    /// without one: its rows are compared whole).
    pub key: Option<Vec<(String, String)>>,
    /// The row as the live table holds it, and as rebuilt, column by
    /// column; `None` for a row on one side only.
    pub live: Option<serde_json::Map<String, serde_json::Value>>,
    pub rebuilt: Option<serde_json::Map<String, serde_json::Value>>,
}

impl Difference {
    /// The columns whose values differ, with the live value and the
    /// rebuilt one (every column of a row on one side only).
    pub fn columns(&self) -> Vec<(&str, Option<&serde_json::Value>, Option<&serde_json::Value>)> {
        let (live, rebuilt) = (self.live.as_ref(), self.rebuilt.as_ref());
        let mut names: Vec<&str> = live
            .into_iter()
            .chain(rebuilt)
            .flat_map(|row| row.keys().map(String::as_str))
            .collect();
        names.sort_unstable();
        names.dedup();
        names
            .into_iter()
            .map(|name| {
                (
                    name,
                    live.and_then(|row| row.get(name)),
                    rebuilt.and_then(|row| row.get(name)),
                )
            })
            .filter(|(_, live, rebuilt)| live != rebuilt)
            .collect()
    }
}

/// What comparing a projection's rebuilt tables with its live ones found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Comparison {
    /// The rows with no equal on the other side, every table together.
    pub differing_rows: i64,
    /// The first [`SHOWN_PER_TABLE`] of them in each table, by key.
    pub differences: Vec<Difference>,
}

/// Compares a projection's rebuilt tables with its live ones.
///
/// Each side is summed up by its row count and the sum of a 64-bit hash of
/// every row: one scan of each table, each about a quarter of the time of
/// pairing the rows. A difference goes unseen only if the hashes of the
/// differing rows happen to add up to the same sum (a chance of about one
/// in 2^64). When the sums differ, the rows are paired by key and the
/// differing ones counted and listed.
pub(super) async fn compare_with_live(
    conn: &mut PgConnection,
    projection: &dyn Projection,
    schema: &str,
) -> Result<Comparison, StoreError> {
    let mut comparison = Comparison::default();
    for table in projection.tables() {
        let live = digest(conn, &format!("public.{table}")).await?;
        let rebuilt = digest(conn, &format!("{schema}.{table}")).await?;
        if live == rebuilt {
            continue;
        }
        let (count, differences) = differences(conn, table, schema).await?;
        tracing::warn!(
            table,
            differences = count,
            "rebuilt read model differs from the live one"
        );
        comparison.differing_rows += count;
        comparison.differences.extend(differences);
    }
    Ok(comparison)
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
/// the other side, and the first [`SHOWN_PER_TABLE`] of them by key. Rows
/// are compared by their text, which every type has, and reported as JSON
/// objects, column by column.
pub(super) async fn differences(
    conn: &mut PgConnection,
    table: &'static str,
    schema: &str,
) -> Result<(i64, Vec<Difference>), StoreError> {
    let key: Vec<String> = sqlx::query_scalar(
        "SELECT a.attname::text FROM pg_index i
         JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
         WHERE i.indrelid = $1::regclass AND i.indisprimary ORDER BY a.attnum",
    )
    .bind(format!("public.{table}"))
    .fetch_all(&mut *conn)
    .await?;
    let shown = SHOWN_PER_TABLE as i64;
    // With a primary key, one join pairs the rows by key (a row missing on
    // one side has a null key there, and a null row).
    let sql = if key.is_empty() {
        // Compared by their text, shown as the live table's rows again.
        format!(
            "SELECT NULL::text[],
                    CASE WHEN live THEN to_jsonb(t::public.{table}) END,
                    CASE WHEN NOT live THEN to_jsonb(t::public.{table}) END,
                    count(*) OVER ()
             FROM (
               (SELECT true AS live, t FROM (SELECT l::text AS t FROM public.{table} l
                 EXCEPT ALL SELECT r::text FROM {schema}.{table} r) AS only_live)
               UNION ALL
               (SELECT false, t FROM (SELECT r::text AS t FROM {schema}.{table} r
                 EXCEPT ALL SELECT l::text FROM public.{table} l) AS only_rebuilt)
             ) AS differences ORDER BY t, live LIMIT {shown}"
        )
    } else {
        let quoted: Vec<String> = key
            .iter()
            .map(|k| format!("\"{}\"", k.replace('"', "\"\"")))
            .collect();
        let on: Vec<String> = quoted.iter().map(|k| format!("l.{k} = r.{k}")).collect();
        let key_text: Vec<String> = quoted
            .iter()
            .map(|k| format!("coalesce(l.{k}, r.{k})::text"))
            .collect();
        let first = &quoted[0];
        format!(
            "SELECT ARRAY[{keys}], to_jsonb(l), to_jsonb(r), count(*) OVER ()
             FROM public.{table} l FULL JOIN {schema}.{table} r ON {on}
             WHERE l.{first} IS NULL OR r.{first} IS NULL OR l::text <> r::text
             ORDER BY {order} LIMIT {shown}",
            keys = key_text.join(", "),
            on = on.join(" AND "),
            order = key_text.join(", "),
        )
    };
    type Row = (
        Option<Vec<String>>,
        Option<serde_json::Value>,
        Option<serde_json::Value>,
        i64,
    );
    let rows: Vec<Row> = sqlx::query_as(&sql).fetch_all(&mut *conn).await?;
    let count = rows.first().map_or(0, |row| row.3);
    let object = |value: Option<serde_json::Value>| match value {
        Some(serde_json::Value::Object(map)) => Some(map),
        _ => None,
    };
    let differences = rows
        .into_iter()
        .map(|(values, live, rebuilt, _)| Difference {
            table,
            key: values.map(|values| key.iter().cloned().zip(values).collect()),
            live: object(live),
            rebuilt: object(rebuilt),
        })
        .collect();
    Ok((count, differences))
}
