//! The auditor's commands over the whole store: sealing, the seals'
//! export, the verification of the chains and seals, and a commune's
//! events exported.

use std::process::ExitCode;
use std::time::Instant;

use espace_famille_projections::store::integrity::{self, Seal};
use espace_famille_projections::store::{self, FeedFilter, Position, RecordedEvent};
use indicatif::{ProgressBar, ProgressStyle};

use super::migrated;
use crate::app::Settings;
use crate::commands::Commands;
use crate::services::audit as audit_service;

/// A progress bar on standard error for `total` events (hidden when it is
/// not a terminal).
pub fn events_bar(total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {human_pos}/{human_len} events, {per_sec}, {eta} left")
            .expect("a valid template"),
    );
    bar
}

/// Seals the events committed since the last seal, and prints the seal.
pub async fn seal(settings: &Settings) -> anyhow::Result<ExitCode> {
    let pool = migrated(settings).await?;
    match integrity::seal(&pool).await? {
        Some(seal) => println!("{}", serde_json::to_string(&seal)?),
        None => eprintln!("nothing new to seal"),
    }
    Ok(ExitCode::SUCCESS)
}

/// Prints the seals after `after`, one JSON object a line: the copy to
/// keep elsewhere.
pub async fn seals(settings: &Settings, after: i64) -> anyhow::Result<ExitCode> {
    let pool = migrated(settings).await?;
    for seal in integrity::seals(&pool, after).await? {
        println!("{}", serde_json::to_string(&seal)?);
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads a copy of the seals, as [`seals`] printed them.
pub fn read_seals(path: &std::path::Path) -> anyhow::Result<Vec<Seal>> {
    let text =
        std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(n, line)| {
            serde_json::from_str(line).map_err(|e| anyhow::anyhow!("{} line {}: {e}", path.display(), n + 1))
        })
        .collect()
}

/// Checks the chains and the seals (and the copy `kept`); prints every
/// finding, and exits 1 when there is one.
pub async fn verify(settings: &Settings, kept: &[Seal]) -> anyhow::Result<ExitCode> {
    let pool = migrated(settings).await?;
    let bar = events_bar(integrity::count(&pool).await?);
    let started = Instant::now();
    let verification = integrity::verify(&pool, kept, |n| bar.inc(n)).await?;
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    for finding in &verification.findings {
        let position = finding
            .position
            .map(|p| format!("{}/{}", p.transaction_id, p.global_position))
            .unwrap_or_default();
        println!(
            "{:<18} {} {} {} {} {}",
            serde_json::to_value(finding.tampering)?
                .as_str()
                .unwrap_or_default(),
            finding.stream.as_deref().unwrap_or("-"),
            finding
                .sequence
                .map(|s| s.to_string())
                .unwrap_or_else(|| "-".into()),
            finding
                .event_id
                .map(|id| id.to_string())
                .unwrap_or_else(|| "-".into()),
            if position.is_empty() { "-" } else { &position },
            finding.detail
        );
    }
    println!(
        "{} events in {} streams, {} seals ({} events not sealed yet), {} kept seals compared: {} in {seconds:.2} s ({:.0} events/s)",
        verification.events,
        verification.streams,
        verification.seals,
        verification.unsealed,
        kept.len(),
        if verification.clean() {
            "intact".to_string()
        } else {
            format!("{} FINDINGS", verification.findings.len())
        },
        verification.events as f64 / seconds.max(f64::EPSILON)
    );
    Ok(if verification.clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// The format of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// One JSON object a line.
    Jsonl,
    /// A header, then a row an event; the payload as JSON text.
    Csv,
}

/// The columns of an export, in order.
const COLUMNS: [&str; 14] = [
    "position",
    "event_id",
    "aggregate_type",
    "aggregate_id",
    "sequence",
    "event_type",
    "event_version",
    "recorded_at",
    "actor_id",
    "actor_role",
    "correlation_id",
    "causation_id",
    "command_id",
    "payload",
];

/// How many events an export reads at a time: what it holds in memory.
const EXPORT_PAGE: i64 = 2_000;

/// Writes every event of commune `collectivity_id` recorded in
/// `[from, to)` to `out`, in commit order, a page at a time (its memory
/// does not grow with the events); prints the count and the events/s.
pub async fn export(
    settings: &Settings,
    collectivity_id: uuid::Uuid,
    filter: FeedFilter,
    format: Format,
    out: &mut dyn std::io::Write,
) -> anyhow::Result<ExitCode> {
    audit_service::check_filter(&filter).map_err(|e| anyhow::anyhow!("{}", e.message()))?;
    let pool = migrated(settings).await?;
    let commands = Commands::new(pool.clone(), settings.read_your_writes);
    let commune = audit_service::commune(&commands, collectivity_id)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message()))?;
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} {human_pos} events, {per_sec}").expect("a valid template"),
    );
    let started = Instant::now();
    let mut sink = match format {
        Format::Csv => {
            let mut writer = csv::Writer::from_writer(&mut *out);
            writer.write_record(COLUMNS)?;
            Sink::Csv(Box::new(writer))
        }
        Format::Jsonl => Sink::Jsonl(&mut *out),
    };
    let mut after = Some(Position::default());
    let mut exported = 0_u64;
    while let Some(from) = after {
        let window = store::commune_events(&pool, &commune, from, EXPORT_PAGE, &filter).await?;
        after = window.next;
        for event in &window.events {
            let fields = fields(event);
            match &mut sink {
                Sink::Csv(writer) => writer.write_record(&fields)?,
                Sink::Jsonl(out) => {
                    // In the columns' order; the payload as the JSON it is.
                    out.write_all(b"{")?;
                    for (n, (column, value)) in COLUMNS.iter().zip(&fields).enumerate() {
                        if n > 0 {
                            out.write_all(b",")?;
                        }
                        serde_json::to_writer(&mut *out, column)?;
                        out.write_all(b":")?;
                        match *column {
                            "payload" | "sequence" => out.write_all(value.as_bytes())?,
                            _ => serde_json::to_writer(&mut *out, value)?,
                        }
                    }
                    out.write_all(b"}\n")?;
                }
            }
        }
        exported += window.events.len() as u64;
        bar.inc(window.events.len() as u64);
    }
    match sink {
        Sink::Csv(mut writer) => writer.flush()?,
        Sink::Jsonl(out) => out.flush()?,
    }
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "{exported} events exported in {seconds:.2} s ({:.0} events/s)",
        exported as f64 / seconds.max(f64::EPSILON)
    );
    Ok(ExitCode::SUCCESS)
}

/// Where an export writes.
enum Sink<'a> {
    Csv(Box<csv::Writer<&'a mut dyn std::io::Write>>),
    Jsonl(&'a mut dyn std::io::Write),
}

/// An event's columns, as text.
fn fields(event: &RecordedEvent) -> Vec<String> {
    let metadata: serde_json::Value = event
        .metadata
        .as_deref()
        .and_then(|m| serde_json::from_str(m).ok())
        .unwrap_or_default();
    let meta = |key: &str| metadata[key].as_str().unwrap_or_default().to_string();
    vec![
        format!(
            "{}/{}",
            event.position.transaction_id, event.position.global_position
        ),
        event.event_id.to_string(),
        event.aggregate_type.clone(),
        event.aggregate_id.clone(),
        event.sequence.to_string(),
        event.event_type.clone(),
        event.event_version.clone(),
        event
            .recorded_at
            .to_rfc3339_opts(chrono::SecondsFormat::Micros, true),
        meta("actor_id"),
        meta("actor_role"),
        meta("correlation_id"),
        meta("causation_id"),
        meta("command_id"),
        event.payload.clone(),
    ]
}
