//! The application: settings, start-up (migrations, projection engine,
//! mail), serving until shutdown. The routes are [`crate::http`]'s.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use espace_famille_projections::engine::{self, EngineConfig, EngineHandle};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use tokio::net::TcpListener;

use crate::auth::accounts::AuthSettings;
use crate::commands::Commands;
use crate::http::router;
use crate::http::server::ServerLimits;
use crate::http::web::WebSettings;
use crate::mail::{self, MailWorker};
use crate::payment::builtin::{BuiltinClient, BuiltinServer};
use crate::payment::{PaymentProvider, PaymentSettings, Payments};
use crate::services::decision_mails::{self, DecisionMails, NoticesWorker};
use crate::services::invitations::Invitations;
use crate::services::promotions::Promotions;

/// How the server runs; every field has a default but the database.
/// Printed, its URLs show no password.
#[derive(Clone)]
pub struct Settings {
    pub database_url: String,
    /// Where to listen; port 0 picks a free port (see [`Application::port`]).
    pub listen: SocketAddr,
    pub max_connections: u32,
    /// The longest a mutation waits for the read models to include it.
    pub read_your_writes: Duration,
    pub engine: EngineConfig,
    pub auth: AuthSettings,
    pub limits: ServerLimits,
    pub web: WebSettings,
    pub payment: PaymentSettings,
    /// How often the new events are sealed (tamper evidence).
    pub seal_every: Duration,
    /// Where requests' files are kept, and their limits.
    pub files: crate::files::FileSettings,
}

impl std::fmt::Debug for Settings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("database_url", &crate::redact::url(&self.database_url))
            .field("listen", &self.listen)
            .field("max_connections", &self.max_connections)
            .field("read_your_writes", &self.read_your_writes)
            .field("engine", &self.engine)
            .field("auth", &self.auth)
            .field("limits", &self.limits)
            .field("web", &self.web)
            .field("payment", &self.payment)
            .field("seal_every", &self.seal_every)
            .field("files", &self.files)
            .finish()
    }
}

impl Settings {
    pub fn new(database_url: impl Into<String>) -> Self {
        Settings {
            database_url: database_url.into(),
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_connections: 16,
            read_your_writes: Duration::from_secs(5),
            engine: EngineConfig::default(),
            auth: AuthSettings::default(),
            limits: ServerLimits::default(),
            web: WebSettings::default(),
            payment: PaymentSettings::default(),
            seal_every: Duration::from_secs(3600),
            files: crate::files::FileSettings::default(),
        }
    }
}

/// Opens a pool without sqlx's ping on every acquire: on this workload the
/// ping costs more than the rare broken connection it would catch. Each
/// connection names its process (`espace-famille-<pid>`, unless the URL
/// names one): in `pg_stat_activity` an operator sees which server holds
/// what, the projection runners' locks among them.
pub async fn connect(settings: &Settings) -> Result<PgPool, sqlx::Error> {
    let mut options: PgConnectOptions = settings.database_url.parse()?;
    if options.get_application_name().is_none() {
        options = options.application_name(&format!("espace-famille-{}", std::process::id()));
    }
    PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .test_before_acquire(false)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
}

/// The connections waiting to be accepted, at most: when bookings open,
/// thousands of parents connect within a second, and past the queue the
/// kernel drops their handshakes (tokio's default is 1,024; the kernel
/// caps this at `net.core.somaxconn`, 4,096 on current Linux).
const LISTEN_BACKLOG: u32 = 4096;

fn listen(address: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if address.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(LISTEN_BACKLOG)
}

/// A built application: migrated database, projection engine running,
/// listener bound.
pub struct Application {
    listener: TcpListener,
    router: Router,
    engine: EngineHandle,
    mail: MailWorker,
    notices: NoticesWorker,
    allocations: crate::services::allocation::AllocationWorker,
    reconciliation: crate::services::periodic::Worker,
    sealing: crate::services::periodic::Worker,
    sweeping: crate::services::periodic::Worker,
    pool: PgPool,
    commands: Arc<Commands>,
    limits: ServerLimits,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        // Before anything counts: a metric recorded with no recorder is lost.
        crate::metrics::handle();
        let pool = connect(&settings).await?;
        espace_famille_projections::MIGRATOR.run(&pool).await?;
        // The read models by feature (see `read_model_groups`); the
        // process managers, which send mail, apart, so none holds up another.
        let invitations: Arc<dyn engine::Projection> = Arc::new(Invitations {
            mail: settings.auth.mail.clone(),
            activation_valid_for: settings.auth.activation_valid_for,
        });
        let decision_mails: Arc<dyn engine::Projection> = Arc::new(DecisionMails);
        // The decisions' e-mails read what the bookings' group reads: they
        // join it (and, not being a read model, are never rebuilt).
        let mut groups = espace_famille_projections::read_model_groups();
        let bookings = groups
            .iter_mut()
            .find(|group| {
                group
                    .iter()
                    .any(|p| p.name() == espace_famille_projections::calendar::CALENDAR)
            })
            .ok_or_else(|| anyhow::anyhow!("no bookings group"))?;
        bookings.push(decision_mails);
        groups.push(vec![invitations]);
        // The promotions write through the write path, in a group of their
        // own: a day settled never holds up the calendar.
        let commands = Commands::new(pool.clone(), settings.read_your_writes);
        // The prepaid bookings' process manager reads the same events: it
        // joins them.
        groups.push(vec![
            Arc::new(Promotions {
                commands: commands.clone(),
            }),
            Arc::new(crate::services::prepayment::Prepayments {
                commands: commands.clone(),
                delay: settings.payment.prepaid_for,
            }),
        ]);
        let engine = engine::start(pool.clone(), groups, settings.engine.clone()).await?;
        let mail = mail::start(pool.clone(), settings.auth.mail.clone()).map_err(|e| anyhow::anyhow!(e))?;
        let notices = decision_mails::start(pool.clone(), settings.auth.mail.clone());
        let allocations = crate::services::allocation::start(commands.clone());
        let listener = listen(settings.listen)?;
        // The return and notification URLs name the server as browsers
        // and the provider reach it.
        let public_url = match &settings.payment.public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => format!("http://{}", listener.local_addr()?),
        };
        let provider: Arc<dyn PaymentProvider> = Arc::new(BuiltinClient::new(
            settings.payment.provider_url.as_deref().unwrap_or(&public_url),
            settings.payment.secret.clone(),
        ));
        let payments = Arc::new(Payments {
            provider,
            public_url,
            prepaid_for: settings.payment.prepaid_for,
        });
        let reconciliation = crate::services::payment::start_reconciliation(
            commands.clone(),
            payments.clone(),
            settings.payment.reconcile_every,
            settings.payment.reconcile_after,
        );
        let sealing = crate::services::periodic::sealing(pool.clone(), settings.seal_every);
        let files = Arc::new(crate::files::Files::open(&pool, settings.files.clone()).await?);
        let sweeping =
            crate::services::periodic::sweeping(pool.clone(), files.clone(), settings.files.sweep_every);
        let mut router = router(
            commands.clone(),
            payments,
            files,
            pool.clone(),
            &settings.auth,
            &settings.web,
            settings.limits,
        )
        .map_err(|e| anyhow::anyhow!(e))?;
        if settings.payment.provider_url.is_none() {
            router = router.merge(BuiltinServer::routes(
                pool.clone(),
                settings.payment.secret.clone(),
                settings.payment.builtin.clone(),
            ));
        }
        Ok(Application {
            listener,
            router,
            engine,
            mail,
            notices,
            allocations,
            reconciliation,
            sealing,
            sweeping,
            pool,
            commands,
            limits: settings.limits,
        })
    }

    pub fn commands(&self) -> &Arc<Commands> {
        &self.commands
    }

    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or_default()
    }

    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Serves until `shutdown` completes, then stops the projection runners.
    pub async fn serve_until(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let address = self.listener.local_addr()?;
        tracing::info!(%address, "serving GraphQL on http://{address}/graphql");
        crate::http::server::serve(
            self.listener,
            self.router,
            self.limits,
            shutdown,
            Duration::from_secs(10),
        )
        .await;
        self.engine.shutdown().await;
        self.notices.shutdown().await;
        self.allocations.shutdown().await;
        self.reconciliation.shutdown().await;
        self.sealing.shutdown().await;
        self.sweeping.shutdown().await;
        self.mail.shutdown().await;
        self.pool.close().await;
        Ok(())
    }
}

/// Completes on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mail::MailTransport;

    #[test]
    fn settings_print_without_their_passwords() {
        let mut settings = Settings::new("postgres://app:db-s3cret@db.mairie.fr/famille");
        settings.auth.mail.transport = MailTransport::Smtp("smtps://relay:smtp-s3cret@smtp.mairie.fr".into());
        let printed = format!("{settings:?}");
        assert!(
            !printed.contains("db-s3cret") && !printed.contains("smtp-s3cret"),
            "{printed}"
        );
        assert!(
            printed.contains("db.mairie.fr") && printed.contains("smtp.mairie.fr"),
            "{printed}"
        );
    }
}
