//! The HTTP application: settings, start-up (migrations, projection
//! engine), the router, graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use espace_famille_projections::engine::{self, EngineConfig, EngineHandle};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use tokio::net::TcpListener;

use crate::accounts::AuthSettings;
use crate::commands::Commands;
use crate::graphql::parse_cache::ParseCache;
use crate::graphql::{schema, AppSchema};
use crate::invitations::Invitations;
use crate::mail::{self, MailWorker};
use crate::server::ServerLimits;
use crate::sessions::Sessions;
use crate::web::WebSettings;

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
        }
    }
}

/// Opens a pool without sqlx's ping on every acquire: on this workload the
/// ping costs more than the rare broken connection it would catch.
pub async fn connect(settings: &Settings) -> Result<PgPool, sqlx::Error> {
    let options: PgConnectOptions = settings.database_url.parse()?;
    PgPoolOptions::new()
        .max_connections(settings.max_connections)
        .test_before_acquire(false)
        .acquire_timeout(Duration::from_secs(10))
        .connect_with(options)
        .await
}

/// Whether the database answered its last ping. A task pings it twice a
/// second (each ping given one second): during an outage, requests are
/// answered `UNAVAILABLE` at once instead of each waiting for the pool.
#[derive(Clone)]
pub struct DatabaseWatch {
    up: Arc<std::sync::atomic::AtomicBool>,
}

impl DatabaseWatch {
    fn start(pool: PgPool) -> DatabaseWatch {
        let watch = DatabaseWatch {
            up: Arc::new(std::sync::atomic::AtomicBool::new(true)),
        };
        let up = Arc::downgrade(&watch.up);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                let Some(up) = up.upgrade() else { return };
                let answered = ping(&pool).await.is_ok();
                if up.swap(answered, std::sync::atomic::Ordering::Relaxed) != answered {
                    if answered {
                        tracing::info!("database reachable again");
                    } else {
                        tracing::warn!("database not reachable");
                    }
                }
            }
        });
        watch
    }

    pub fn is_up(&self) -> bool {
        self.up.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// `SELECT 1`, given one second.
async fn ping(pool: &PgPool) -> Result<(), String> {
    match tokio::time::timeout(Duration::from_secs(1), sqlx::query("SELECT 1").execute(pool)).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(error)) => Err(error.to_string()),
        Err(_) => Err("no answer within a second".into()),
    }
}

#[derive(Clone)]
pub struct AppState {
    pub(crate) schema: AppSchema,
    pub(crate) database: DatabaseWatch,
    pool: PgPool,
    pub(crate) sessions: Arc<Sessions>,
    pub(crate) documents: ParseCache,
    pub(crate) commands: Arc<Commands>,
    pub(crate) auth: AuthSettings,
    pub(crate) web: WebSettings,
}

/// The router, apart from serving, so tests and tools can mount it; an
/// error for a CORS origin that is not one.
pub fn router(commands: Arc<Commands>, pool: PgPool, settings: &Settings) -> Result<Router, String> {
    let sessions = Sessions::start(pool.clone());
    let auth = settings.auth.clone();
    let state = AppState {
        schema: schema(Some((commands.clone(), auth.clone(), sessions.clone()))),
        database: DatabaseWatch::start(pool.clone()),
        pool,
        sessions,
        documents: ParseCache::default(),
        commands,
        auth,
        web: settings.web.clone(),
    };
    let mut graphql = Router::new().route(
        "/graphql",
        get(crate::graphql_http::get).post(crate::graphql_http::post),
    );
    // Only GraphQL is for other origins' pages, and only the listed ones.
    if let Some(cors) = crate::web::cors(&settings.web.cors_origins)? {
        graphql = graphql.layer(cors);
    }
    let limits = settings.limits;
    Ok(graphql
        .merge(crate::web::routes())
        .route("/health/live", get(|| async { "ok" }))
        .route("/health/ready", get(ready))
        .with_state(state)
        // A body over the limit is refused from its Content-Length, before
        // any of it is read (413), or as soon as it passes the limit.
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(tower_http::limit::RequestBodyLimitLayer::new(
            limits.max_body_bytes,
        )))
}

/// The bearer token of an `Authorization: Bearer ...` header.
pub(crate) fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
        .filter(|t| !t.is_empty())
}

/// Ready when the database answers within a second: a load balancer asks
/// often, and must hear "no" at once during an outage, not after the
/// pool's own timeout. The answer names any projection stopped at an event.
async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    if !state.database.is_up() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "database not reachable".to_string(),
        );
    }
    if let Err(error) = ping(&state.pool).await {
        tracing::warn!(%error, "database not reachable");
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "database not reachable".to_string(),
        );
    }
    // A projection stopped at an event leaves the server able to serve
    // (its read model lags; the others do not): ready, and saying so.
    match espace_famille_projections::engine::failures::list(&state.pool).await {
        Ok(failures) if failures.is_empty() => (StatusCode::OK, "ready".to_string()),
        Ok(failures) => {
            let stopped: Vec<String> = failures
                .iter()
                .map(|f| {
                    format!(
                        "{} stopped at event {} ({} attempts): {}",
                        f.projection, f.event_id, f.attempts, f.error
                    )
                })
                .collect();
            (StatusCode::OK, format!("ready; {}", stopped.join("; ")))
        }
        Err(error) => {
            tracing::warn!(%error, "cannot read the projections' failures");
            (StatusCode::OK, "ready".to_string())
        }
    }
}

/// A built application: migrated database, projection engine running,
/// listener bound.
pub struct Application {
    listener: TcpListener,
    router: Router,
    engine: EngineHandle,
    mail: MailWorker,
    pool: PgPool,
    commands: Arc<Commands>,
    limits: ServerLimits,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let pool = connect(&settings).await?;
        espace_famille_projections::MIGRATOR.run(&pool).await?;
        // The read models by feature (see `read_model_groups`); the
        // invitations, which send mail, apart, so none holds up another.
        let invitations: Arc<dyn engine::Projection> = Arc::new(Invitations {
            mail: settings.auth.mail.clone(),
            activation_valid_for: settings.auth.activation_valid_for,
        });
        let mut groups = espace_famille_projections::read_model_groups();
        groups.push(vec![invitations]);
        let engine = engine::start(pool.clone(), groups, settings.engine.clone()).await?;
        let mail = mail::start(pool.clone(), settings.auth.mail.clone()).map_err(|e| anyhow::anyhow!(e))?;
        let commands = Commands::new(pool.clone(), settings.read_your_writes);
        let router = router(commands.clone(), pool.clone(), &settings).map_err(|e| anyhow::anyhow!(e))?;
        let listener = TcpListener::bind(settings.listen).await?;
        Ok(Application {
            listener,
            router,
            engine,
            mail,
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
        crate::server::serve(
            self.listener,
            self.router,
            self.limits,
            shutdown,
            Duration::from_secs(10),
        )
        .await;
        self.engine.shutdown().await;
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
