//! What the command line's subcommands do, apart from how their arguments
//! are read (`main.rs`). Each answers with the process's exit code.

use std::process::ExitCode;

pub mod audit;
pub mod replay;

use sqlx::PgPool;

use crate::app::{self, Application, Settings};
use crate::auth::accounts::{self, Grant};
use crate::commands::Commands;
use crate::demo;
use espace_famille_projections::engine::{self, failures};

/// Serves until Ctrl-C or SIGTERM; loads the demo commune first if asked.
pub async fn serve(settings: Settings, seed_demo: bool) -> anyhow::Result<ExitCode> {
    let application = Application::build(settings.clone()).await?;
    if seed_demo {
        let commands = Commands::new(application.pool().clone(), settings.read_your_writes);
        let ran = demo::seed(&commands)
            .await
            .map_err(|e| anyhow::anyhow!("{}", e.message()))?;
        tracing::info!(commands = ran, "demo commune ready");
    }
    application.serve_until(app::shutdown_signal()).await?;
    Ok(ExitCode::SUCCESS)
}

/// A pool on a migrated database.
pub(crate) async fn migrated(settings: &Settings) -> anyhow::Result<PgPool> {
    let pool = app::connect(settings).await?;
    espace_famille_projections::MIGRATOR.run(&pool).await?;
    Ok(pool)
}

pub async fn migrate(settings: &Settings) -> anyhow::Result<ExitCode> {
    migrated(settings).await?;
    tracing::info!("database migrated");
    Ok(ExitCode::SUCCESS)
}

/// Loads the demo commune if it is not there yet, with the read models
/// running so that each step reads what the last one wrote.
pub async fn seed_demo(settings: &Settings) -> anyhow::Result<ExitCode> {
    let pool = migrated(settings).await?;
    let handle = engine::start(
        pool.clone(),
        espace_famille_projections::read_model_groups(),
        settings.engine.clone(),
    )
    .await?;
    let commands = Commands::new(pool, settings.read_your_writes);
    let ran = demo::seed(&commands)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message()));
    handle.shutdown().await;
    tracing::info!(commands = ran?, "demo commune ready");
    Ok(ExitCode::SUCCESS)
}

/// Creates an account, or adds grants to an existing one, with this
/// password.
pub async fn create_account(
    settings: &Settings,
    email: &str,
    grants: &[Grant],
    password: &str,
) -> anyhow::Result<ExitCode> {
    let pool = migrated(settings).await?;
    let mut tx = pool.begin().await?;
    let account = accounts::ensure_account(&mut tx, email, grants)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message()))?;
    accounts::set_password(&mut tx, &account, password)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message()))?;
    tx.commit().await?;
    println!("account {} ({}) ready", account.email, account.id);
    Ok(ExitCode::SUCCESS)
}

/// Where every projection stands; fails when one has stopped at an event.
pub async fn projections(settings: &Settings) -> anyhow::Result<ExitCode> {
    let pool = migrated(settings).await?;
    let statuses = failures::status(&pool).await?;
    println!("{:<20} {:>22} {:>8}  state", "projection", "checkpoint", "behind");
    for status in &statuses {
        let checkpoint = format!(
            "{}/{}",
            status.position.transaction_id, status.position.global_position
        );
        let state = match &status.failure {
            None => "applying".to_string(),
            Some(failure) => format!(
                "STOPPED at event {} ({}/{}), {} attempts since {}, next {}: {}",
                failure.event_id,
                failure.position.transaction_id,
                failure.position.global_position,
                failure.attempts,
                failure.first_failed_at.format("%Y-%m-%d %H:%M:%S UTC"),
                failure.next_attempt_at.format("%H:%M:%S UTC"),
                failure.error
            ),
        };
        println!(
            "{:<20} {checkpoint:>22} {:>8}  {state}",
            status.projection, status.behind
        );
    }
    Ok(if statuses.iter().any(|s| s.failure.is_some()) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// Makes a projection stopped at an event try it again at once.
pub async fn retry_projection(settings: &Settings, name: &str) -> anyhow::Result<ExitCode> {
    let pool = migrated(settings).await?;
    if failures::retry(&pool, name).await? {
        println!("{name} will try its event again at once");
        return Ok(ExitCode::SUCCESS);
    }
    println!("{name} has not stopped at an event");
    Ok(ExitCode::FAILURE)
}

/// Recomputes an allocation run from the events and prints every check.
pub async fn audit_allocation(settings: &Settings, run_id: uuid::Uuid) -> anyhow::Result<ExitCode> {
    let pool = migrated(settings).await?;
    let audit = crate::services::allocation::audit(&pool, run_id)
        .await
        .map_err(|e| anyhow::anyhow!("{}", e.message()))?;
    println!(
        "allocation run {} (unit {}, {}): {} requests, {} placed",
        audit.run_id, audit.unit_id, audit.date, audit.requests, audit.placed
    );
    for (check, held) in &audit.checks {
        println!("{} {check}", if *held { "ok  " } else { "FAIL" });
    }
    Ok(if audit.holds() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// Bills a régie's month and prints what the run did.
pub async fn bill(settings: &Settings, regie: uuid::Uuid, month: &str) -> anyhow::Result<ExitCode> {
    let pool = migrated(settings).await?;
    let commands = Commands::new(pool, settings.read_your_writes);
    let command_id = uuid::Uuid::new_v4();
    let metadata = espace_famille_projections::store::Metadata {
        actor_id: "cli:bill".into(),
        actor_role: "system".into(),
        correlation_id: command_id,
        causation_id: command_id,
        command_id,
        requested_at: chrono::Utc::now(),
    };
    let billed = crate::services::billing::bill_month(
        &commands,
        regie,
        month,
        crate::services::billing::GROUP,
        &metadata,
    )
    .await
    .map_err(|e| anyhow::anyhow!("{}", e.message()))?;
    println!(
        "{month}: {} families, {} invoices issued, {} already issued, total {}.{:02} €",
        billed.families,
        billed.issued,
        billed.already,
        billed.total_cents / 100,
        billed.total_cents % 100
    );
    Ok(ExitCode::SUCCESS)
}
