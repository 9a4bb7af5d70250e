//! `replay`: every read model rebuilt from the first event and compared
//! with the live one, row by row, then swapped in on request; or rebuilt
//! as it stood at an instant into a schema an auditor reads, kept until
//! dropped.

use std::io::Write;
use std::process::ExitCode;
use std::time::Instant;

use chrono::{DateTime, Utc};
use espace_famille_projections::engine::{self, Difference, Then};
use espace_famille_projections::store::integrity;

use super::audit::events_bar;
use super::migrated;
use crate::app::Settings;

/// Rebuilds every read model and compares it with the live one, writing
/// to `out` each row that differs (read model, table, key, the columns
/// live and rebuilt); with `swap`, the rebuilt tables then replace the
/// live ones, otherwise they are dropped and nothing live changes. Exits
/// 1 when a live read model differed.
pub async fn compare(settings: &Settings, swap: bool, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let pool = migrated(settings).await?;
    let read_models = espace_famille_projections::read_models();
    let projections: Vec<&dyn engine::Projection> = read_models.iter().map(|p| p.as_ref()).collect();
    let bar = events_bar(integrity::count(&pool).await?);
    let started = Instant::now();
    let then = if swap { Then::Swap } else { Then::Discard };
    let progress = bar.clone();
    let rebuild = engine::replay(&pool, &projections, engine::REBUILD_BATCH, then, move |n| {
        progress.inc(n)
    })
    .await?;
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    writeln!(
        out,
        "{} events read once in {seconds:.2} s ({:.0} events/s), applied to {} read models:",
        rebuild.events,
        rebuild.events as f64 / seconds.max(f64::EPSILON),
        rebuild.reports.len(),
    )?;
    let mut all_matched = true;
    for report in &rebuild.reports {
        let applying = report.applying.as_secs_f64();
        let verdict = if report.matched_live {
            "matches the live read model".to_string()
        } else {
            match report.comparison.differing_rows {
                1 => "1 row DIFFERS from the live read model".to_string(),
                rows => format!("{rows} rows DIFFER from the live read model"),
            }
        };
        writeln!(
            out,
            "{:<20} applied in {applying:.2} s ({:.0} events/s): {verdict}",
            report.projection,
            rebuild.events as f64 / applying.max(f64::EPSILON),
        )?;
        for difference in &report.comparison.differences {
            describe(out, difference)?;
        }
        let shown = report.comparison.differences.len() as i64;
        if report.comparison.differing_rows > shown {
            writeln!(
                out,
                "  ... and {} more (the first {} of each table are shown)",
                report.comparison.differing_rows - shown,
                engine::SHOWN_PER_TABLE
            )?;
        }
        all_matched &= report.matched_live;
    }
    writeln!(
        out,
        "{}",
        if swap {
            "the rebuilt read models replaced the live ones"
        } else {
            "the rebuilt read models were dropped: nothing live changed (--swap replaces the live ones)"
        }
    )?;
    Ok(if all_matched {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// One differing row: its table and key, then each column that differs,
/// live and rebuilt.
fn describe(out: &mut dyn Write, difference: &Difference) -> std::io::Result<()> {
    let key = match &difference.key {
        Some(columns) => columns
            .iter()
            .map(|(column, value)| format!("{column}={value}"))
            .collect::<Vec<_>>()
            .join(" "),
        None => "(no key: the whole row)".to_string(),
    };
    let object = |row: &serde_json::Map<String, serde_json::Value>| serde_json::Value::Object(row.clone());
    match (&difference.live, &difference.rebuilt) {
        (Some(live), None) => {
            writeln!(out, "  {} {key} only live (no event makes it)", difference.table)?;
            writeln!(out, "    live {}", object(live))
        }
        (None, Some(rebuilt)) => {
            writeln!(
                out,
                "  {} {key} missing from the live read model",
                difference.table
            )?;
            writeln!(out, "    rebuilt {}", object(rebuilt))
        }
        _ => {
            writeln!(out, "  {} {key}", difference.table)?;
            let shown =
                |value: Option<&serde_json::Value>| value.map_or_else(|| "-".to_string(), |v| v.to_string());
            for (column, live, rebuilt) in difference.columns() {
                writeln!(
                    out,
                    "    {column}: live {} | rebuilt {}",
                    shown(live),
                    shown(rebuilt)
                )?;
            }
            Ok(())
        }
    }
}

/// The schema `replay --until` names after its instant when none is given.
pub fn schema_for(until: DateTime<Utc>) -> String {
    format!("as_of_{}", until.format("%Y%m%d_%H%M%S"))
}

/// Rebuilds every read model as it stood at `until` into `schema` (by
/// default named after the instant), keeps it, and says how to read it.
pub async fn until(
    settings: &Settings,
    until: DateTime<Utc>,
    schema: Option<String>,
    out: &mut dyn Write,
) -> anyhow::Result<ExitCode> {
    let pool = migrated(settings).await?;
    let schema = schema.unwrap_or_else(|| schema_for(until));
    if !engine::valid_schema_name(&schema) {
        anyhow::bail!(
            "{schema:?} cannot name the schema: lower-case letters, digits and underscores, a letter first, \
             at most 63, not public nor pg_... nor rebuild_..."
        );
    }
    let taken: bool = sqlx::query_scalar("SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = $1)")
        .bind(&schema)
        .fetch_one(&pool)
        .await?;
    if taken {
        anyhow::bail!("the schema {schema} exists already: drop it first (replay --drop {schema}) or name another (--schema)");
    }
    let read_models = espace_famille_projections::read_models();
    let projections: Vec<&dyn engine::Projection> = read_models.iter().map(|p| p.as_ref()).collect();
    let bar = events_bar(integrity::count(&pool).await?);
    let started = Instant::now();
    let progress = bar.clone();
    let kept = engine::keep_as_of(&pool, &projections, until, &schema, move |n| progress.inc(n)).await?;
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    let tables: Vec<&str> = projections
        .iter()
        .flat_map(|p| p.tables().iter().copied())
        .collect();
    writeln!(
        out,
        "the read models as they stood at {} ({} events recorded up to then) are in the schema {} ({seconds:.2} s)",
        kept.until.to_rfc3339(),
        kept.events,
        kept.schema_name
    )?;
    writeln!(out, "tables: {}", tables.join(", "))?;
    writeln!(
        out,
        "read them with, e.g.: SELECT * FROM {}.invoices WHERE status = 'issued'; (the pending invoices)",
        kept.schema_name
    )?;
    writeln!(out, "drop them with: replay --drop {}", kept.schema_name)?;
    Ok(ExitCode::SUCCESS)
}

/// Lists the schemas `replay --until` kept.
pub async fn list(settings: &Settings, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let pool = migrated(settings).await?;
    let kept = engine::kept(&pool).await?;
    if kept.is_empty() {
        writeln!(out, "no schema kept")?;
    }
    for kept in kept {
        writeln!(
            out,
            "{:<32} as of {}  {} events  made {}  ({})",
            kept.schema_name,
            kept.until.to_rfc3339(),
            kept.events,
            kept.created_at.format("%Y-%m-%d %H:%M:%S UTC"),
            kept.read_models.join(", ")
        )?;
    }
    Ok(ExitCode::SUCCESS)
}

/// Drops a schema `replay --until` kept; fails for any other.
pub async fn drop(settings: &Settings, schema: &str, out: &mut dyn Write) -> anyhow::Result<ExitCode> {
    let pool = migrated(settings).await?;
    if engine::drop_kept(&pool, schema).await? {
        writeln!(out, "{schema} dropped")?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        out,
        "no schema {schema:?} was kept by replay --until (replay --list shows them)"
    )?;
    Ok(ExitCode::FAILURE)
}
