//! Comparing a rebuilt read model with the live one.

use sqlx::PgConnection;

use super::*;

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
