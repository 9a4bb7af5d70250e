//! `espace-famille`: serve the API, migrate, rebuild read models, print the
//! schema, load the demo commune.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use espace_famille_api::accounts::{self, Grant};
use espace_famille_api::app::{self, Application, Settings};
use espace_famille_api::commands::Commands;
use espace_famille_api::demo;
use espace_famille_api::mail::{MailSettings, MailTransport};
use tracing_subscriber::EnvFilter;

/// glibc's allocator spent about a quarter of the server's CPU in the
/// booking rush (consolidating and unlinking chunks freed across threads).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "espace-famille",
    version,
    about = "Family portal backend for French communes"
)]
struct Cli {
    /// PostgreSQL URL.
    #[arg(long, env = "DATABASE_URL", global = true)]
    database_url: Option<String>,
    /// Send e-mail over SMTP, e.g. smtps://user:password@smtp.example.fr;
    /// without it messages are written as .eml files into --mail-dir.
    #[arg(long, env = "SMTP_URL", global = true)]
    smtp_url: Option<String>,
    /// Where messages are written when SMTP is not configured.
    #[arg(long, env = "MAIL_DIR", global = true, default_value = ".data/mail")]
    mail_dir: std::path::PathBuf,
    /// The sender of messages.
    #[arg(
        long,
        env = "MAIL_FROM",
        global = true,
        default_value = "Espace Famille <no-reply@espace-famille.localhost>"
    )]
    mail_from: String,
    /// The portal's address, the base of the links in messages.
    #[arg(
        long,
        env = "PUBLIC_URL",
        global = true,
        default_value = "http://127.0.0.1:8080"
    )]
    public_url: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the GraphQL server (migrates first).
    Serve {
        #[arg(long, env = "LISTEN", default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Load the demo commune if it is not there yet.
        #[arg(long)]
        seed_demo: bool,
        /// Database connections of this server. More than about eight per
        /// database core only adds contention in PostgreSQL (on 2 cores,
        /// 16 connections gave 10 % more baskets/s than 24 or 48).
        #[arg(long, env = "DB_POOL_SIZE", default_value_t = 16)]
        pool_size: u32,
        /// Origins whose pages may call /graphql from a browser, comma
        /// separated (e.g. https://famille.mairie.fr); none by default.
        #[arg(long, env = "CORS_ORIGINS", value_delimiter = ',')]
        cors_origins: Vec<String>,
        /// Where scripts/graphiql-assets installed GraphiQL's files.
        #[arg(long, env = "GRAPHIQL_DIR", default_value = ".data/graphiql")]
        graphiql_dir: std::path::PathBuf,
    },
    /// Apply the database migrations.
    Migrate,
    /// Load the demo commune if it is not there yet.
    SeedDemo,
    /// Rebuild every read model from the first event, compare each with the
    /// live one, and swap it in. Exits 1 when a live read model differed.
    Replay,
    /// Print the GraphQL schema (SDL).
    Schema,
    /// Where every projection stands: its checkpoint, the events after it,
    /// and the event it stopped at if it cannot apply one. Exits 1 when one
    /// has stopped.
    Projections {
        #[command(subcommand)]
        action: Option<ProjectionsAction>,
    },
    /// Create an account (or add grants to an existing one), e.g. the first
    /// agent of a commune. The password is read from standard input.
    CreateAccount {
        #[arg(long)]
        email: String,
        /// admin, auditor, auditor:<commune id>, agent:<commune id>,
        /// parent:<family id>; repeat for several.
        #[arg(long = "grant", required = true)]
        grants: Vec<String>,
    },
}

#[derive(Subcommand)]
enum ProjectionsAction {
    /// Make a projection stopped at an event try it again at once (after
    /// the fix is deployed).
    Retry { name: String },
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .init();
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(error) => {
            tracing::error!("{error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    if let Command::Schema = cli.command {
        print!("{}", espace_famille_api::sdl());
        return Ok(ExitCode::SUCCESS);
    }
    let database_url = cli
        .database_url
        .ok_or_else(|| anyhow::anyhow!("set DATABASE_URL (or --database-url) to a PostgreSQL server"))?;
    let mut settings = Settings::new(database_url);
    settings.auth.mail = MailSettings {
        transport: match cli.smtp_url {
            Some(url) => MailTransport::Smtp(url),
            None => MailTransport::Folder(cli.mail_dir),
        },
        from: cli.mail_from,
        public_url: cli.public_url,
    };
    match cli.command {
        Command::Schema => unreachable!("handled above"),
        Command::Serve {
            listen,
            seed_demo,
            pool_size,
            cors_origins,
            graphiql_dir,
        } => {
            settings.listen = listen;
            settings.max_connections = pool_size;
            settings.web.cors_origins = cors_origins
                .into_iter()
                .filter(|o| !o.trim().is_empty())
                .collect();
            settings.web.graphiql_dir = graphiql_dir;
            let application = Application::build(settings.clone()).await?;
            if seed_demo {
                let commands = Commands::new(application.pool().clone(), settings.read_your_writes);
                let ran = demo::seed(&commands)
                    .await
                    .map_err(|e| anyhow::anyhow!("{}", e.message()))?;
                tracing::info!(commands = ran, "demo commune ready");
            }
            application.serve_until(app::shutdown_signal()).await?;
        }
        Command::Migrate => {
            let pool = app::connect(&settings).await?;
            espace_famille_projections::MIGRATOR.run(&pool).await?;
            tracing::info!("database migrated");
        }
        Command::SeedDemo => {
            let pool = app::connect(&settings).await?;
            espace_famille_projections::MIGRATOR.run(&pool).await?;
            let handle = espace_famille_projections::engine::start(
                pool.clone(),
                espace_famille_projections::read_model_groups(),
                settings.engine.clone(),
            )
            .await?;
            let commands = Commands::new(pool, settings.read_your_writes);
            let ran = demo::seed(&commands)
                .await
                .map_err(|e| anyhow::anyhow!("{}", e.message()))?;
            handle.shutdown().await;
            tracing::info!(commands = ran, "demo commune ready");
        }
        Command::CreateAccount { email, grants } => {
            let grants = grants
                .iter()
                .map(|g| g.parse::<Grant>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| anyhow::anyhow!(e))?;
            let mut password = String::new();
            std::io::stdin().read_line(&mut password)?;
            let password = password.trim_end_matches(['\r', '\n']);
            let pool = app::connect(&settings).await?;
            espace_famille_projections::MIGRATOR.run(&pool).await?;
            let mut tx = pool.begin().await?;
            let account = accounts::ensure_account(&mut tx, &email, &grants)
                .await
                .map_err(|e| anyhow::anyhow!("{}", e.message()))?;
            accounts::set_password(&mut tx, &account, password)
                .await
                .map_err(|e| anyhow::anyhow!("{}", e.message()))?;
            tx.commit().await?;
            println!("account {} ({}) ready", account.email, account.id);
        }
        Command::Projections { action } => {
            use espace_famille_projections::engine::failures;
            let pool = app::connect(&settings).await?;
            espace_famille_projections::MIGRATOR.run(&pool).await?;
            if let Some(ProjectionsAction::Retry { name }) = action {
                if failures::retry(&pool, &name).await? {
                    println!("{name} will try its event again at once");
                    return Ok(ExitCode::SUCCESS);
                }
                println!("{name} has not stopped at an event");
                return Ok(ExitCode::FAILURE);
            }
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
            if statuses.iter().any(|s| s.failure.is_some()) {
                return Ok(ExitCode::FAILURE);
            }
        }
        Command::Replay => {
            let pool = app::connect(&settings).await?;
            espace_famille_projections::MIGRATOR.run(&pool).await?;
            let read_models = espace_famille_projections::read_models();
            let projections: Vec<&dyn espace_famille_projections::engine::Projection> =
                read_models.iter().map(|p| p.as_ref()).collect();
            let started = std::time::Instant::now();
            let rebuild = espace_famille_projections::engine::rebuild(&pool, &projections).await?;
            let seconds = started.elapsed().as_secs_f64();
            println!(
                "{} events read once and applied to {} read models in {seconds:.2} s ({:.0} events/s)",
                rebuild.events,
                rebuild.reports.len(),
                rebuild.events as f64 / seconds.max(f64::EPSILON)
            );
            let mut all_matched = true;
            for report in &rebuild.reports {
                println!(
                    "{:<20} {}",
                    report.projection,
                    if report.matched_live {
                        "matches the live read model"
                    } else {
                        "DIFFERED from the live read model (replaced)"
                    }
                );
                all_matched &= report.matched_live;
            }
            return Ok(if all_matched {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}
