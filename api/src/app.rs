//! The HTTP application: settings, start-up (migrations, projection
//! engine), the router, graceful shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_graphql::http::GraphiQLSource;
use async_graphql_axum::{GraphQLRequest, GraphQLResponse};
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse};
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
use crate::identity::Caller;
use crate::invitations::Invitations;
use crate::mail::{self, MailWorker};
use crate::sessions::Sessions;

/// How the server runs; every field has a default but the database.
#[derive(Debug, Clone)]
pub struct Settings {
    pub database_url: String,
    /// Where to listen; port 0 picks a free port (see [`Application::port`]).
    pub listen: SocketAddr,
    pub max_connections: u32,
    /// The longest a mutation waits for the read models to include it.
    pub read_your_writes: Duration,
    pub engine: EngineConfig,
    pub auth: AuthSettings,
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

#[derive(Clone)]
struct AppState {
    schema: AppSchema,
    pool: PgPool,
    sessions: Arc<Sessions>,
    documents: ParseCache,
}

/// The router, apart from serving, so tests and tools can mount it.
pub fn router(commands: Arc<Commands>, auth: AuthSettings, pool: PgPool) -> Router {
    let sessions = Sessions::start(pool.clone());
    let state = AppState {
        schema: schema(Some((commands, auth, sessions.clone()))),
        pool,
        sessions,
        documents: ParseCache::default(),
    };
    Router::new()
        .route("/graphql", get(graphiql).post(graphql))
        .route("/health/live", get(|| async { "ok" }))
        .route("/health/ready", get(ready))
        .with_state(state)
}

async fn graphiql() -> impl IntoResponse {
    Html(GraphiQLSource::build().endpoint("/graphql").finish())
}

/// The bearer token of an `Authorization: Bearer ...` header.
fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
        .filter(|t| !t.is_empty())
}

async fn graphql(
    State(state): State<AppState>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    request: GraphQLRequest,
) -> GraphQLResponse {
    let mut request = request.into_inner();
    state.documents.prepare(&mut request);
    let bearer = bearer(&headers);
    let identity = match &bearer {
        Some(token) => match state.sessions.identity(token).await {
            Ok(identity) => identity,
            Err(error) => {
                return async_graphql::Response::from_errors(vec![
                    async_graphql::Error::from(error).into_server_error(async_graphql::Pos::default())
                ])
                .into()
            }
        },
        None => None,
    };
    let caller = Caller {
        identity,
        client_address: client.ip().to_string(),
        bearer,
    };
    state.schema.execute(request.data(caller)).await.into()
}

async fn ready(State(state): State<AppState>) -> impl IntoResponse {
    match sqlx::query("SELECT 1").execute(&state.pool).await {
        Ok(_) => (StatusCode::OK, "ready"),
        Err(error) => {
            tracing::warn!(%error, "database not reachable");
            (StatusCode::SERVICE_UNAVAILABLE, "database not reachable")
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
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let pool = connect(&settings).await?;
        espace_famille_projections::MIGRATOR.run(&pool).await?;
        // The read models are fed together (one read per batch for all);
        // the invitations, which send mail, apart, so neither holds up the
        // other.
        let invitations: Arc<dyn engine::Projection> = Arc::new(Invitations {
            mail: settings.auth.mail.clone(),
            activation_valid_for: settings.auth.activation_valid_for,
        });
        let groups = vec![espace_famille_projections::read_models(), vec![invitations]];
        let engine = engine::start(pool.clone(), groups, settings.engine.clone()).await?;
        let mail = mail::start(pool.clone(), settings.auth.mail.clone()).map_err(|e| anyhow::anyhow!(e))?;
        let commands = Commands::new(pool.clone(), settings.read_your_writes);
        let listener = TcpListener::bind(settings.listen).await?;
        Ok(Application {
            listener,
            router: router(commands.clone(), settings.auth.clone(), pool.clone()),
            engine,
            mail,
            pool,
            commands,
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
        axum::serve(
            self.listener,
            self.router.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await?;
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
