//! `espace-famille`: serve the API, migrate, rebuild read models, print the
//! schema, load the demo commune. The arguments are read here; what each
//! command does is [`espace_famille_api::cli`]'s.

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use espace_famille_api::app::Settings;
use espace_famille_api::auth::accounts::Grant;
use espace_famille_api::cli;
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
    /// The portal's address, the base of the links in messages and of the
    /// payment provider's return and notification URLs; by default the
    /// server's own listening address.
    #[arg(long, env = "PUBLIC_URL", global = true)]
    public_url: Option<String>,
    /// The most messages delivered a second.
    #[arg(long, env = "MAIL_PER_SECOND", global = true, default_value_t = 100)]
    mail_per_second: u32,
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
        /// Requests served at once; past it, a request is answered
        /// OVERLOADED (HTTP 503, Retry-After) at once instead of queueing.
        #[arg(long, env = "MAX_IN_FLIGHT", default_value_t = 256)]
        max_in_flight: usize,
        /// Client connections open at once; past it, new ones wait in the
        /// kernel's queue. Kept under the open-files limit, which the
        /// server raises to the system's hard limit.
        #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 4096)]
        max_connections: usize,
        /// Every mutation's rate limit times this (the defaults are per
        /// minute: 30 baskets an account, 1,200 an address, ...).
        #[arg(long, env = "RATE_LIMIT_SCALE", default_value_t = 1)]
        rate_limit_scale: u32,
        /// Origins whose pages may call /graphql from a browser, comma
        /// separated (e.g. https://famille.mairie.fr); none by default.
        #[arg(long, env = "CORS_ORIGINS", value_delimiter = ',')]
        cors_origins: Vec<String>,
        /// Where scripts/graphiql-assets installed GraphiQL's files.
        #[arg(long, env = "GRAPHIQL_DIR", default_value = ".data/graphiql")]
        graphiql_dir: std::path::PathBuf,
        /// The payment provider's address; none: the built-in provider,
        /// served by this server under /fournisseur-paiement.
        #[arg(long, env = "PAYMENT_PROVIDER_URL")]
        payment_provider_url: Option<String>,
        /// The secret shared with the payment provider (its API key and the
        /// notifications' HMAC key). Several servers need the same one;
        /// none: a random one for this server alone.
        #[arg(long, env = "PAYMENT_SECRET", hide_env_values = true)]
        payment_secret: Option<String>,
        /// Seconds after which an undecided payment is asked about again.
        #[arg(long, env = "PAYMENT_RECONCILE_AFTER", default_value_t = 600)]
        payment_reconcile_after: u64,
        /// Seconds between two seals of the new events.
        #[arg(long, env = "SEAL_EVERY", default_value_t = 3600)]
        seal_every: u64,
        /// Where the files attached to requests are kept (one folder per
        /// family, each file named by its SHA-256).
        #[arg(long, env = "FILES_DIR", default_value = ".data/files")]
        files_dir: std::path::PathBuf,
        /// Keep the files' contents in the database instead of FILES_DIR.
        #[arg(long, env = "FILES_IN_DATABASE")]
        files_in_database: bool,
        /// The largest file a request takes, in MiB; the largest request,
        /// every file together; the most files.
        #[arg(long, env = "FILE_MAX_MIB", default_value_t = 10)]
        file_max_mib: u64,
        #[arg(long, env = "REQUEST_MAX_MIB", default_value_t = 25)]
        request_max_mib: u64,
        #[arg(long, env = "REQUEST_MAX_FILES", default_value_t = 10)]
        request_max_files: usize,
    },
    /// Apply the database migrations.
    Migrate,
    /// Load the demo commune if it is not there yet.
    SeedDemo,
    /// Rebuild every read model from the first event and compare each with
    /// the live one, printing every row that differs (read model, key,
    /// live and rebuilt). Nothing live changes without --swap. Exits 1
    /// when a live read model differed.
    Replay {
        /// Replace the live read models with the rebuilt ones (the live
        /// runners wait meanwhile; readers only for the swap itself).
        #[arg(long, conflicts_with_all = ["until", "drop", "list"])]
        swap: bool,
        /// Rebuild the read models as they stood at this instant (RFC 3339,
        /// e.g. 2026-11-30T23:59:59+01:00) into a schema kept for an
        /// auditor to read; nothing live changes.
        #[arg(long, conflicts_with_all = ["drop", "list"])]
        until: Option<chrono::DateTime<chrono::Utc>>,
        /// The schema --until fills (default: as_of_<instant in UTC>).
        #[arg(long, requires = "until")]
        schema: Option<String>,
        /// Drop a schema --until kept.
        #[arg(long, conflicts_with = "list")]
        drop: Option<String>,
        /// List the schemas --until kept.
        #[arg(long)]
        list: bool,
    },
    /// Print the GraphQL schema (SDL).
    Schema,
    /// Where every projection stands: its checkpoint, the events after it,
    /// and the event it stopped at if it cannot apply one. Exits 1 when one
    /// has stopped.
    Projections {
        #[command(subcommand)]
        action: Option<ProjectionsAction>,
    },
    /// Bill a régie's month (`--month 2027-01`): an invoice per family, from
    /// the bookings and the roll call. Run again, it issues nothing new.
    Bill {
        /// The commune whose régie bills.
        #[arg(long)]
        regie: uuid::Uuid,
        #[arg(long)]
        month: String,
    },
    /// What an auditor checks from the events alone.
    Audit {
        #[command(subcommand)]
        what: AuditAction,
    },
    /// Export every event of a commune (its auditor's feed) recorded in
    /// [--from, --to), in commit order, to standard output or --out.
    Export {
        #[arg(long)]
        collectivity: uuid::Uuid,
        /// Recorded at or after (RFC 3339, e.g. 2026-11-01T00:00:00+01:00).
        #[arg(long)]
        from: Option<chrono::DateTime<chrono::Utc>>,
        /// Recorded before.
        #[arg(long)]
        to: Option<chrono::DateTime<chrono::Utc>>,
        #[arg(long, value_enum, default_value = "jsonl")]
        format: cli::audit::Format,
        /// The file to write; none: standard output.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
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
enum AuditAction {
    /// Recompute an allocation run (its id is in its `AllocationRun`
    /// event) from the events: the seed against its published commitment,
    /// the requests, the criteria each met, the draw, what each family was
    /// told. Exits 1 when anything differs.
    Allocation { run_id: uuid::Uuid },
    /// Check every event against its hash and its stream's chain, and
    /// every seal against the events it sealed; with --seals, against a
    /// copy of the seals kept elsewhere too. Prints each event edited,
    /// deleted, reordered or inserted by hand; exits 1 when there is one.
    Verify {
        /// A copy of the seals, as `audit seals` printed them.
        #[arg(long)]
        seals: Option<std::path::PathBuf>,
    },
    /// Seal the events committed since the last seal (the server also
    /// does it every --seal-every).
    Seal,
    /// Print the seals, one JSON object a line: the copy to keep elsewhere
    /// (printed, or sent to the commune's data protection officer).
    Seals {
        /// Only the seals after this one.
        #[arg(long, default_value_t = 0)]
        after: i64,
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
    let format = match std::env::var("LOG_FORMAT").unwrap_or_default().parse() {
        Ok(format) => format,
        Err(why) => {
            eprintln!("{why}");
            return ExitCode::FAILURE;
        }
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let subscriber = espace_famille_api::logs::subscriber(format, filter, std::io::stdout);
    if tracing::subscriber::set_global_default(subscriber).is_err() {
        eprintln!("a logger was already set");
    }
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
        public_url: cli.public_url.clone().unwrap_or_else(|| match &cli.command {
            Command::Serve { listen, .. } => format!("http://{listen}"),
            _ => "http://127.0.0.1:8080".to_string(),
        }),
        per_second: cli.mail_per_second.max(1),
    };
    match cli.command {
        Command::Schema => unreachable!("handled above"),
        Command::Serve {
            listen,
            seed_demo,
            pool_size,
            max_in_flight,
            max_connections,
            rate_limit_scale,
            cors_origins,
            graphiql_dir,
            payment_provider_url,
            payment_secret,
            payment_reconcile_after,
            seal_every,
            files_dir,
            files_in_database,
            file_max_mib,
            request_max_mib,
            request_max_files,
        } => {
            settings.files.storage = if files_in_database {
                espace_famille_api::files::Storage::Table
            } else {
                espace_famille_api::files::Storage::Folder(files_dir)
            };
            settings.files.max_file_bytes = file_max_mib.clamp(1, 1024) * 1024 * 1024;
            settings.files.max_request_bytes = request_max_mib.clamp(1, 4096) * 1024 * 1024;
            settings.files.max_files = request_max_files.clamp(1, 100);
            settings.seal_every = std::time::Duration::from_secs(seal_every.max(1));
            settings.listen = listen;
            settings.payment.public_url = Some(settings.auth.mail.public_url.clone());
            settings.payment.provider_url = payment_provider_url;
            if let Some(secret) = payment_secret {
                settings.payment.secret = secret;
            } else {
                tracing::warn!("PAYMENT_SECRET is not set: a random secret serves this server alone");
            }
            settings.payment.reconcile_after = std::time::Duration::from_secs(payment_reconcile_after);
            settings.max_connections = pool_size;
            settings.limits.max_in_flight = max_in_flight.clamp(1, 100_000);
            settings.limits.max_connections = max_connections.clamp(1, 1_000_000);
            settings.limits.mutations = settings.limits.mutations.scaled(rate_limit_scale);
            settings.web.cors_origins = cors_origins
                .into_iter()
                .filter(|o| !o.trim().is_empty())
                .collect();
            settings.web.graphiql_dir = graphiql_dir;
            cli::serve(settings, seed_demo).await
        }
        Command::Migrate => cli::migrate(&settings).await,
        Command::SeedDemo => cli::seed_demo(&settings).await,
        Command::CreateAccount { email, grants } => {
            let grants = grants
                .iter()
                .map(|g| g.parse::<Grant>())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| anyhow::anyhow!(e))?;
            let mut password = String::new();
            std::io::stdin().read_line(&mut password)?;
            let password = password.trim_end_matches(['\r', '\n']);
            cli::create_account(&settings, &email, &grants, password).await
        }
        Command::Projections { action: None } => cli::projections(&settings).await,
        Command::Projections {
            action: Some(ProjectionsAction::Retry { name }),
        } => cli::retry_projection(&settings, &name).await,
        Command::Replay {
            swap,
            until,
            schema,
            drop,
            list,
        } => {
            let mut out = std::io::stdout().lock();
            match (until, drop) {
                (Some(until), _) => cli::replay::until(&settings, until, schema, &mut out).await,
                (None, Some(schema)) => cli::replay::drop(&settings, &schema, &mut out).await,
                (None, None) if list => cli::replay::list(&settings, &mut out).await,
                (None, None) => cli::replay::compare(&settings, swap, &mut out).await,
            }
        }
        Command::Bill { regie, month } => cli::bill(&settings, regie, &month).await,
        Command::Export {
            collectivity,
            from,
            to,
            format,
            out,
        } => {
            let filter = espace_famille_projections::store::FeedFilter {
                from,
                to,
                ..Default::default()
            };
            let mut out: Box<dyn std::io::Write> = match out {
                Some(path) => Box::new(std::io::BufWriter::new(std::fs::File::create(&path)?)),
                None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            };
            cli::audit::export(&settings, collectivity, filter, format, &mut out).await
        }
        Command::Audit {
            what: AuditAction::Allocation { run_id },
        } => cli::audit_allocation(&settings, run_id).await,
        Command::Audit {
            what: AuditAction::Verify { seals },
        } => {
            let kept = match seals {
                Some(path) => cli::audit::read_seals(&path)?,
                None => Vec::new(),
            };
            cli::audit::verify(&settings, &kept).await
        }
        Command::Audit {
            what: AuditAction::Seal,
        } => cli::audit::seal(&settings).await,
        Command::Audit {
            what: AuditAction::Seals { after },
        } => cli::audit::seals(&settings, after).await,
    }
}
