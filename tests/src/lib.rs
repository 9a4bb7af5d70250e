//! Support for the end-to-end tests: a real server on a random port, on a
//! fresh database of its own, and a small GraphQL client.
#![forbid(unsafe_code)]

pub mod browser;
mod commune;
pub mod load;
pub mod requests;

pub use commune::*;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration as StdDuration;

use espace_famille_api::app::{Application, Settings};
use espace_famille_api::auth::accounts::{self, Grant};
use espace_famille_api::http::server::ServerLimits;
use espace_famille_api::mail::MailTransport;
use serde_json::{json, Value};
use sqlx::PgPool;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uuid::Uuid;

pub struct TestApp {
    pub address: String,
    pub database_url: String,
    pub pool: PgPool,
    /// Where the server writes its e-mails (`.eml` files).
    pub mail_dir: PathBuf,
    /// Where and how it keeps requests' files.
    pub files: espace_famille_api::files::FileSettings,
    read_mail: Mutex<HashSet<PathBuf>>,
    client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

/// Starts the server on a fresh, migrated database.
pub async fn spawn_app() -> TestApp {
    let (_, url) = espace_famille_projections::testing::fresh_database().await;
    let mail_dir = std::env::temp_dir().join(format!("espace-famille-mail-{}", Uuid::new_v4().simple()));
    spawn_app_on(&url, mail_dir).await
}

/// Starts a second server beside `first`, on the same database and mail
/// folder, as a second instance behind a load balancer would run.
pub async fn spawn_beside(first: &TestApp) -> TestApp {
    spawn_app_on(&first.database_url, first.mail_dir.clone()).await
}

async fn spawn_app_on(url: &str, mail_dir: PathBuf) -> TestApp {
    spawn_with(
        url,
        mail_dir.clone(),
        MailTransport::Folder(mail_dir),
        ServerLimits::default(),
    )
    .await
}

/// Starts the server on a fresh database that it reaches through `proxy`,
/// so a test can cut the database off and bring it back.
pub async fn spawn_app_through(proxy: &TcpProxy) -> TestApp {
    use sqlx::ConnectOptions;
    let (_, url) = espace_famille_projections::testing::fresh_database().await;
    let mut options: sqlx::postgres::PgConnectOptions = url.parse().unwrap();
    options = options.host("127.0.0.1").port(proxy.port);
    let url = options.to_url_lossy().to_string();
    let mail_dir = std::env::temp_dir().join(format!("espace-famille-mail-{}", Uuid::new_v4().simple()));
    spawn_with(
        &url,
        mail_dir.clone(),
        MailTransport::Folder(mail_dir),
        ServerLimits::default(),
    )
    .await
}

/// A TCP relay to the test's PostgreSQL server that can be cut (every
/// connection through it closed, new ones refused), stalled (connections
/// kept open, nothing relayed: a frozen database, a partition that resets
/// nothing) and restored: a database outage without stopping the server
/// the other tests share.
pub struct TcpProxy {
    pub port: u16,
    mode: tokio::sync::watch::Sender<Relay>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Relay {
    Open,
    Cut,
    Stalled,
}

impl TcpProxy {
    /// Relays to the server `DATABASE_URL` names.
    pub async fn to_database() -> TcpProxy {
        let url = std::env::var("DATABASE_URL").expect("DATABASE_URL");
        let options: sqlx::postgres::PgConnectOptions = url.parse().unwrap();
        let target = format!("{}:{}", options.get_host(), options.get_port());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (mode, watching) = tokio::sync::watch::channel(Relay::Open);
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let mut watching = watching.clone();
                let now = *watching.borrow();
                match now {
                    Relay::Cut => continue, // dropped: the connection is refused
                    Relay::Stalled => {
                        // Accepted, never answered, until the stall ends.
                        tokio::spawn(async move {
                            let _held = client;
                            let _ = watching.wait_for(|mode| *mode != Relay::Stalled).await;
                        });
                        continue;
                    }
                    Relay::Open => {}
                }
                let target = target.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = tokio::net::TcpStream::connect(&target).await else {
                        return;
                    };
                    let stalled = tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => false,
                        mode = watching.wait_for(|mode| *mode != Relay::Open) => mode.map(|m| *m == Relay::Stalled).unwrap_or(false),
                    };
                    if stalled {
                        // Both ends held open, nothing relayed; closed once
                        // the stall ends (their streams are broken by then).
                        let _ = watching.wait_for(|mode| *mode != Relay::Stalled).await;
                    }
                });
            }
        });
        TcpProxy { port, mode }
    }

    /// Closes every connection through the relay and refuses new ones.
    pub fn cut(&self) {
        let _ = self.mode.send(Relay::Cut);
    }

    /// Stops relaying: every connection stays open and hears nothing,
    /// new ones are accepted and hear nothing.
    pub fn stall(&self) {
        let _ = self.mode.send(Relay::Stalled);
    }

    pub fn restore(&self) {
        let _ = self.mode.send(Relay::Open);
    }
}

/// Starts the server on a fresh database with these HTTP limits.
pub async fn spawn_app_with_limits(limits: ServerLimits) -> TestApp {
    let (_, url) = espace_famille_projections::testing::fresh_database().await;
    let mail_dir = std::env::temp_dir().join(format!("espace-famille-mail-{}", Uuid::new_v4().simple()));
    spawn_with(&url, mail_dir.clone(), MailTransport::Folder(mail_dir), limits).await
}

/// Starts the server on a fresh database, sending its e-mail over SMTP.
pub async fn spawn_app_with_smtp(smtp_url: &str) -> TestApp {
    let (_, url) = espace_famille_projections::testing::fresh_database().await;
    let unused = std::env::temp_dir().join(format!("espace-famille-mail-{}", Uuid::new_v4().simple()));
    spawn_with(
        &url,
        unused,
        MailTransport::Smtp(smtp_url.to_string()),
        ServerLimits::default(),
    )
    .await
}

async fn spawn_with(url: &str, mail_dir: PathBuf, transport: MailTransport, limits: ServerLimits) -> TestApp {
    spawn_configured(url, mail_dir, |settings| {
        settings.limits = limits;
        settings.limits.mutations = limits.mutations.scaled(1000);
        settings.auth.mail.transport = transport;
    })
    .await
}

/// Starts the server on a fresh database, its e-mail written to a folder
/// of its own, with settings `configure` changes.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    let (_, url) = espace_famille_projections::testing::fresh_database().await;
    let mail_dir = std::env::temp_dir().join(format!("espace-famille-mail-{}", Uuid::new_v4().simple()));
    let transport = MailTransport::Folder(mail_dir.clone());
    spawn_configured(&url, mail_dir, |settings| {
        settings.auth.mail.transport = transport;
        configure(settings);
    })
    .await
}

/// Where `scripts/graphiql-assets` installs GraphiQL's files.
pub fn graphiql_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../.data/graphiql"))
}

/// A port free on the loopback now, for a server whose links must name
/// its own address before it starts.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|address| address.port())
        .expect("no free port")
}

async fn spawn_configured(url: &str, mail_dir: PathBuf, configure: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings = Settings::new(url.to_string());
    settings.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    settings.max_connections = 16;
    settings.web.graphiql_dir = graphiql_dir();
    // Tests send many mutations from one address in seconds; the test of
    // the limits sets its own.
    settings.limits.mutations = settings.limits.mutations.scaled(1000);
    settings.files.storage = espace_famille_api::files::Storage::Folder(
        std::env::temp_dir().join(format!("espace-famille-files-{}", Uuid::new_v4().simple())),
    );
    configure(&mut settings);
    let files = settings.files.clone();
    let application = Application::build(settings)
        .await
        .expect("the server did not start");
    let address = format!("http://127.0.0.1:{}", application.port());
    let database_url = url.to_string();
    let pool = application.pool().clone();
    let (stop, stopped) = oneshot::channel();
    let server = tokio::spawn(async move {
        application
            .serve_until(async {
                let _ = stopped.await;
            })
            .await
            .expect("the server failed");
    });
    TestApp {
        address,
        database_url,
        pool,
        mail_dir,
        files,
        read_mail: Mutex::new(HashSet::new()),
        client: reqwest::Client::new(),
        stop: Some(stop),
        server: Some(server),
    }
}

/// A GraphQL response.
#[derive(Debug, Clone)]
pub struct Response(pub Value);

impl Response {
    /// The data at `field`, failing the test on any error.
    pub fn data(&self, field: &str) -> &Value {
        assert!(self.0.get("errors").is_none(), "unexpected errors: {}", self.0);
        &self.0["data"][field]
    }

    /// The `extensions.code` of the first error, failing the test when the
    /// request succeeded.
    pub fn error_code(&self) -> &str {
        self.0["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("expected an error, got {}", self.0))
    }
}

impl TestApp {
    /// Posts a GraphQL document with a session token (`None`: anonymous).
    pub async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> Response {
        self.gql_in(None, token, query, variables).await
    }

    /// As [`TestApp::gql`], asking for a language (`Accept-Language`).
    pub async fn gql_in(
        &self,
        language: Option<&str>,
        token: Option<&str>,
        query: &str,
        variables: Value,
    ) -> Response {
        let mut request = self
            .client
            .post(format!("{}/graphql", self.address))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(language) = language {
            request = request.header("Accept-Language", language);
        }
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.expect("the server did not answer");
        assert!(response.status().is_success(), "HTTP {}", response.status());
        Response(response.json().await.expect("the answer is not JSON"))
    }

    /// Creates an account with a password directly in the database, as the
    /// `create-account` command does.
    pub async fn create_account(&self, email: &str, password: &str, grants: &[Grant]) {
        let mut tx = self.pool.begin().await.unwrap();
        let account = accounts::ensure_account(&mut tx, email, grants).await.unwrap();
        accounts::set_password(&mut tx, &account, password).await.unwrap();
        tx.commit().await.unwrap();
    }

    /// Logs in; the session token.
    pub async fn login(&self, email: &str, password: &str) -> String {
        let response = self
            .gql(
                None,
                "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
                json!({ "e": email, "p": password }),
            )
            .await;
        response.data("login")["token"].as_str().unwrap().to_string()
    }

    /// Waits for the next unread e-mail to `recipient` and returns it.
    pub async fn next_mail_to(&self, recipient: &str) -> String {
        decode_mail(&self.next_raw_mail_to(recipient).await)
    }

    /// As [`TestApp::next_mail_to`], the `.eml` file as it was written.
    pub async fn next_raw_mail_to(&self, recipient: &str) -> String {
        for _ in 0..200 {
            if let Ok(entries) = std::fs::read_dir(&self.mail_dir) {
                let mut found: Vec<(std::time::SystemTime, PathBuf, String)> = entries
                    .flatten()
                    .map(|e| e.path())
                    .filter(|p| p.extension().is_some_and(|x| x == "eml"))
                    .filter(|p| !self.read_mail.lock().unwrap().contains(p))
                    .filter_map(|p| {
                        let text = std::fs::read_to_string(&p).ok()?;
                        let modified = std::fs::metadata(&p).ok()?.modified().ok()?;
                        text.lines()
                            .any(|l| {
                                l.to_lowercase().starts_with("to:") && l.to_lowercase().contains(recipient)
                            })
                            .then_some((modified, p, text))
                    })
                    .collect();
                found.sort();
                if let Some((_, path, text)) = found.into_iter().next() {
                    self.read_mail.lock().unwrap().insert(path);
                    return text;
                }
            }
            tokio::time::sleep(StdDuration::from_millis(50)).await;
        }
        panic!("no e-mail to {recipient} within 10 s");
    }

    /// Activates an account from its activation e-mail; the session token.
    pub async fn activate_from_mail(&self, email: &str, password: &str) -> String {
        let mail = self.next_mail_to(email).await;
        let token = link_token(&mail);
        let response = self
            .gql(
                None,
                "mutation($t: String!, $p: String!) {
                   activateAccount(input: { token: $t, password: $p, firstName: \"Claire\", lastName: \"Martin\" }) { token }
                 }",
                json!({ "t": token, "p": password }),
            )
            .await;
        response.data("activateAccount")["token"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Rebuilds every read model from zero and asserts each equals the live
    /// one; the number of events the rebuild applied.
    pub async fn rebuild_all_read_models(&self) -> usize {
        self.rebuild_all_read_models_in_batches(5_000).await
    }

    /// As [`TestApp::rebuild_all_read_models`], reading `batch` events at a
    /// time: small batches spread a reservation's events over several.
    pub async fn rebuild_all_read_models_in_batches(&self, batch: i64) -> usize {
        let read_models = espace_famille_projections::read_models();
        let projections: Vec<&dyn espace_famille_projections::engine::Projection> =
            read_models.iter().map(|p| p.as_ref()).collect();
        let rebuild = espace_famille_projections::engine::rebuild_in_batches(&self.pool, &projections, batch)
            .await
            .unwrap();
        assert_eq!(rebuild.reports.len(), projections.len());
        for report in &rebuild.reports {
            assert!(
                report.matched_live,
                "{} differs after a rebuild",
                report.projection
            );
        }
        rebuild.events
    }

    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }

    /// How many events a stream holds.
    pub async fn events_in(&self, aggregate_type: &str, aggregate_id: &str) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_type = $1 AND aggregate_id = $2")
            .bind(aggregate_type)
            .bind(aggregate_id)
            .fetch_one(&self.pool)
            .await
            .expect("cannot count events")
    }
}

/// An e-mail's headers and its body decoded from quoted-printable or
/// base64, whichever the sender chose.
pub fn decode_mail(raw: &str) -> String {
    let (headers, body) = raw.split_once("\r\n\r\n").unwrap_or((raw, ""));
    let lower = headers.to_lowercase();
    let decoded = if lower.contains("content-transfer-encoding: base64") {
        use base64::Engine;
        let compact: String = body.split_whitespace().collect();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(compact)
            .expect("a base64 body");
        String::from_utf8(bytes).expect("a UTF-8 body")
    } else if lower.contains("content-transfer-encoding: quoted-printable") {
        let joined = body.replace("=\r\n", "");
        let bytes = joined.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'=' && i + 3 <= bytes.len() {
                if let Ok(byte) = u8::from_str_radix(&joined[i + 1..i + 3], 16) {
                    out.push(byte);
                    i += 3;
                    continue;
                }
            }
            out.push(bytes[i]);
            i += 1;
        }
        String::from_utf8(out).expect("a UTF-8 body")
    } else {
        body.to_string()
    };
    format!("{headers}\n\n{decoded}")
}

/// The first link in an e-mail (`http://...` up to the line's end).
pub fn mail_link(mail: &str) -> String {
    let start = mail.find("http://").expect("the e-mail has no link");
    mail[start..]
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// The token of the link in an e-mail (`...?token=XYZ`).
pub fn link_token(mail: &str) -> String {
    let start = mail.find("token=").expect("the e-mail has no link") + "token=".len();
    mail[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

/// The password every test account uses.
pub const PASSWORD: &str = "cheval-agrafe-batterie";

/// An administrator account, logged in.
pub async fn admin(app: &TestApp) -> String {
    let email = format!("admin-{}@example.fr", Uuid::new_v4().simple());
    app.create_account(&email, PASSWORD, &[Grant::Admin]).await;
    app.login(&email, PASSWORD).await
}

/// An auditor of everything, logged in.
pub async fn auditor(app: &TestApp) -> String {
    let email = format!("auditor-{}@example.fr", Uuid::new_v4().simple());
    app.create_account(&email, PASSWORD, &[Grant::Auditor(None)])
        .await;
    app.login(&email, PASSWORD).await
}

/// An auditor of one commune, logged in.
pub async fn auditor_of(app: &TestApp, collectivity: Uuid) -> String {
    let email = format!("auditor-{}@example.fr", Uuid::new_v4().simple());
    app.create_account(&email, PASSWORD, &[Grant::Auditor(Some(collectivity))])
        .await;
    app.login(&email, PASSWORD).await
}

/// A new commune whose agent (an account made directly) opens a family
/// account for `guardian`, who then gets the activation e-mail: the
/// commune's and the family's ids.
pub async fn family_opened_for(app: &TestApp, guardian: &str) -> (Uuid, Uuid) {
    let admin = admin(app).await;
    let created = app
        .gql(
            Some(&admin),
            "mutation { createCollectivity(input: { name: \"Dammartin-sur-Tigeaux\" }) { id } }",
            json!({}),
        )
        .await;
    let commune: Uuid = serde_json::from_value(created.data("createCollectivity")["id"].clone()).unwrap();
    let agent_email = format!("agent-{}@mairie.example.fr", Uuid::new_v4().simple());
    app.create_account(&agent_email, PASSWORD, &[Grant::Agent(commune)])
        .await;
    let agent = app.login(&agent_email, PASSWORD).await;
    let family = Uuid::new_v4();
    app.gql(
        Some(&agent),
        "mutation($c: UUID!, $f: UUID!, $e: String!) {
           openFamilyAccount(input: { collectivityId: $c, id: $f, familyRef: \"DST-0002\", guardianEmail: $e }) { id }
         }",
        json!({ "c": commune, "f": family, "e": guardian }),
    )
    .await
    .data("openFamilyAccount");
    (commune, family)
}

impl TestApp {
    /// Every page of a query paged by `after`/`nextAfter` (a correlation,
    /// a feed), as `token` reads it: the events of all of them, in order.
    pub async fn every_page(&self, token: &str, query: &str, field: &str, variables: Value) -> Vec<Value> {
        self.every_page_of(token, query, field, "events", variables).await
    }

    /// Every page of a query paged by `after`/`nextAfter`, as `token`
    /// reads it: the `items` of all of them, in order.
    pub async fn every_page_of(
        &self,
        token: &str,
        query: &str,
        field: &str,
        items: &str,
        variables: Value,
    ) -> Vec<Value> {
        let mut all = Vec::new();
        let mut after = Value::Null;
        loop {
            let mut page_variables = variables.clone();
            page_variables["after"] = after;
            let page = self.gql(Some(token), query, page_variables).await;
            let page = page.data(field).clone();
            all.extend(page[items].as_array().unwrap().iter().cloned());
            if page["nextAfter"].is_null() {
                return all;
            }
            after = page["nextAfter"].clone();
        }
    }
}

/// Whether events' `position`s (`transaction/position`) ascend strictly:
/// the commit order.
pub fn in_commit_order(events: &[Value]) -> bool {
    let positions: Vec<(i64, i64)> = events
        .iter()
        .map(|e| {
            let (t, p) = e["position"].as_str().unwrap().split_once('/').unwrap();
            (t.parse().unwrap(), p.parse().unwrap())
        })
        .collect();
    positions.windows(2).all(|w| w[0] < w[1])
}
