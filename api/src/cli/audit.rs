//! The auditor's commands over the whole store: sealing, the seals'
//! export, and the verification of the chains and seals.

use std::process::ExitCode;
use std::time::Instant;

use espace_famille_projections::store::integrity::{self, Seal};
use indicatif::{ProgressBar, ProgressStyle};

use super::migrated;
use crate::app::Settings;

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
