//! `faults`: the client side of the fault suite (`scripts/faults`).
//!
//! The script starts PostgreSQL and the servers and breaks them; this
//! drives the parents through each fault and judges what they were told
//! against what the store and the read models hold afterwards:
//! - `seed`: the commune and its families (those of `rush`, in `load`);
//! - `baskets`: every family submits its basket, retrying the same id
//!   through whatever fails (a server killed mid-rush), until each is
//!   acknowledged; then every line is checked in the store and in the
//!   calendar, once;
//! - `outage`: parents read their calendars while the script's commands
//!   take the database down and bring it back (see `outage`);
//! - `takeover`: two servers, the one holding the projection runners
//!   killed (see `takeover`);
//! - `disconnect`: parents who hang up in the middle of `submitBasket`
//!   (see `disconnect`);
//! - `arrivals`: parents arriving when bookings open, over a minute or
//!   all at once, past what the server takes in at once (see `arrivals`).
//!
//! Every scenario prints `key=value` lines for the script's report and
//! exits non-zero, saying why, when a promise was broken.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Parser, Subcommand};
use espace_famille_domain::reservation::reservation_id;
use espace_famille_tests::load::{self, basket_days, guardian, id, LINES_PER_BASKET};
use serde_json::{json, Value};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use tokio::sync::Semaphore;
use uuid::Uuid;

mod arrivals;
mod disconnect;
mod outage;
mod takeover;

#[derive(Parser)]
struct Args {
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    #[command(subcommand)]
    scenario: Scenario,
}

/// The parents a scenario drives: families FIRST..FIRST+FAMILIES, through
/// the server at SERVER.
#[derive(clap::Args)]
struct Parents {
    #[arg(long)]
    server: String,
    #[arg(long)]
    first: usize,
    #[arg(long)]
    families: usize,
}

impl Parents {
    fn families(&self) -> std::ops::Range<usize> {
        self.first..self.first + self.families
    }

    fn api(&self) -> anyhow::Result<Api> {
        Api::new(&self.server)
    }
}

#[derive(Subcommand)]
enum Scenario {
    /// Seeds the commune and FAMILIES families, then waits for the read
    /// models to include them.
    Seed {
        #[arg(long)]
        families: usize,
    },
    /// The parents submit their baskets, each retried with its id until
    /// acknowledged (for at most DEADLINE seconds), then checked.
    Baskets {
        #[command(flatten)]
        parents: Parents,
        #[arg(long, default_value_t = 16)]
        concurrency: usize,
        #[arg(long, default_value_t = 120)]
        deadline: u64,
    },
    /// The parents read their calendars while DOWN takes the database
    /// away for OUTAGE seconds and UP brings it back (shell commands).
    Outage {
        #[command(flatten)]
        parents: Parents,
        #[arg(long)]
        down: String,
        #[arg(long)]
        up: String,
        #[arg(long, default_value_t = 3)]
        outage: u64,
    },
    /// Two servers (their addresses and process ids, in the same order):
    /// the one holding the most projection runners is killed.
    Takeover {
        #[arg(long, num_args = 2, required = true)]
        servers: Vec<String>,
        #[arg(long, num_args = 2, required = true)]
        pids: Vec<u32>,
        #[arg(long)]
        first: usize,
    },
    /// The parents log in and submit their baskets, arriving evenly over
    /// OVER seconds (0: all at once).
    Arrivals {
        #[command(flatten)]
        parents: Parents,
        #[arg(long)]
        over: u64,
    },
    /// The parents each send their basket and hang up before the answer,
    /// at delays spread over twice a basket's latency, then retry.
    Disconnect {
        #[command(flatten)]
        parents: Parents,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let pool = PgPoolOptions::new()
        .max_connections(8)
        .acquire_timeout(Duration::from_secs(30))
        .connect(&args.database_url)
        .await?;
    match args.scenario {
        Scenario::Seed { families } => {
            load::seed(&pool, families, &basket_days()).await?;
            load::wait_until_quiet(&pool).await?;
            println!("seeded_families={families}");
            Ok(())
        }
        Scenario::Baskets {
            parents,
            concurrency,
            deadline,
        } => baskets(&parents.api()?, &pool, parents.families(), concurrency, deadline).await,
        Scenario::Outage {
            parents,
            down,
            up,
            outage,
        } => {
            let plan = outage::Plan {
                down,
                up,
                outage: Duration::from_secs(outage),
            };
            outage::run(&parents.api()?, &pool, parents.families(), &plan).await
        }
        Scenario::Takeover { servers, pids, first } => takeover::run(&pool, &servers, &pids, first).await,
        Scenario::Arrivals { parents, over } => {
            arrivals::run(
                &parents.api()?,
                &pool,
                parents.families(),
                Duration::from_secs(over),
            )
            .await
        }
        Scenario::Disconnect { parents } => disconnect::run(&parents.api()?, &pool, parents.families()).await,
    }
}

/// What one request came back with.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Answered without errors: the `data`.
    Data(Value),
    /// Answered with errors: the first one's `extensions.code` and the
    /// HTTP status.
    Refused { code: String, status: u16 },
    /// No answer: the connection failed, was reset or timed out.
    Transport(String),
}

impl Outcome {
    /// The outcome's name in the report: `ok`, the code, or `transport`.
    pub fn label(&self) -> &str {
        match self {
            Outcome::Data(_) => "ok",
            Outcome::Refused { code, .. } => code,
            Outcome::Transport(_) => "transport",
        }
    }
}

pub struct Api {
    pub http: reqwest::Client,
    pub server: String,
}

impl Api {
    pub fn new(server: &str) -> anyhow::Result<Api> {
        Ok(Api {
            // Longer than any bound the server sets itself: a request that
            // times out here hung.
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
            server: server.trim_end_matches('/').to_string(),
        })
    }

    pub async fn post(&self, token: Option<&str>, body: &str) -> Outcome {
        self.post_with_retry_after(token, body).await.0
    }

    /// The outcome, and the seconds the answer's `Retry-After` asks for.
    pub async fn post_with_retry_after(&self, token: Option<&str>, body: &str) -> (Outcome, Option<u64>) {
        let mut request = self
            .http
            .post(format!("{}/graphql", self.server))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string());
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = match request.send().await {
            Ok(response) => response,
            Err(error) => return (Outcome::Transport(causes(&error)), None),
        };
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
        let outcome = match response.json::<Value>().await {
            Err(error) => Outcome::Transport(format!("HTTP {status}, unreadable body: {error}")),
            Ok(body) => match body.get("errors") {
                None => Outcome::Data(body["data"].clone()),
                Some(errors) => Outcome::Refused {
                    code: errors[0]["extensions"]["code"]
                        .as_str()
                        .unwrap_or("NONE")
                        .to_string(),
                    status,
                },
            },
        };
        (outcome, retry_after)
    }

    /// Logs family `n`'s guardian in, trying again while the server is
    /// unreachable or unavailable.
    pub async fn login(&self, n: usize) -> anyhow::Result<String> {
        let body = json!({
            "query": "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
            "variables": { "e": guardian(n), "p": load::PASSWORD },
        })
        .to_string();
        let started = Instant::now();
        loop {
            match self.post(None, &body).await {
                Outcome::Data(data) => {
                    return data["login"]["token"]
                        .as_str()
                        .map(str::to_string)
                        .context("a login without a token")
                }
                other if started.elapsed() > Duration::from_secs(60) => {
                    anyhow::bail!("family {n} could not log in: {other:?}")
                }
                _ => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
    }

    pub async fn login_all(&self, families: std::ops::Range<usize>) -> anyhow::Result<Vec<String>> {
        let mut tokens = Vec::with_capacity(families.len());
        for n in families {
            tokens.push(self.login(n).await?);
        }
        Ok(tokens)
    }
}

/// An error and its causes, as one line.
fn causes(error: &dyn std::error::Error) -> String {
    let mut line = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        line.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    line
}

/// Family `n`'s basket: four weeks of canteen for its child, under its id.
pub fn basket(n: usize) -> String {
    let lines: Vec<Value> = basket_days()
        .iter()
        .map(|d| json!({ "action": "BOOK", "childId": id("child", n), "unitId": id("meal", 0), "date": d }))
        .collect();
    json!({
        "query": "mutation($input: SubmitBasketInput!) { submitBasket(input: $input) { status } }",
        "variables": { "input": { "basketId": id("basket", n), "familyId": id("family", n), "lines": lines } },
    })
    .to_string()
}

/// The failures worth retrying: the server was gone, or said to come back.
pub fn retryable(outcome: &Outcome) -> bool {
    match outcome {
        Outcome::Transport(_) => true,
        Outcome::Refused { code, .. } => code == "UNAVAILABLE" || code == "OVERLOADED",
        Outcome::Data(_) => false,
    }
}

/// Submits family `n`'s basket until it is acknowledged as accepted:
/// returns the failed attempts before that.
pub async fn submit_until_accepted(
    api: &Api,
    token: &str,
    n: usize,
    deadline: Instant,
) -> anyhow::Result<Vec<Outcome>> {
    let body = basket(n);
    let mut failures = Vec::new();
    loop {
        let outcome = api.post(Some(token), &body).await;
        match &outcome {
            Outcome::Data(data) if data["submitBasket"]["status"] == "ACCEPTED" => return Ok(failures),
            failed if retryable(failed) && Instant::now() < deadline => {
                failures.push(outcome);
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            _ => anyhow::bail!(
                "basket {n}: {outcome:?} (after {} failed attempts)",
                failures.len()
            ),
        }
    }
}

/// Every family submits its basket, retried through failures; then each
/// line is checked. Reports how many were acknowledged before the first
/// failure (the server killed), how many needed retrying, and the
/// failures by outcome.
async fn baskets(
    api: &Api,
    pool: &PgPool,
    families: std::ops::Range<usize>,
    concurrency: usize,
    deadline: u64,
) -> anyhow::Result<()> {
    let api = Arc::new(Api {
        http: api.http.clone(),
        server: api.server.clone(),
    });
    let tokens = api.login_all(families.clone()).await?;
    let limit = Arc::new(Semaphore::new(concurrency));
    let deadline = Instant::now() + Duration::from_secs(deadline);
    let mut tasks = Vec::new();
    for (n, token) in families.clone().zip(tokens) {
        let (api, limit) = (api.clone(), limit.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = limit.acquire_owned().await?;
            let failures = submit_until_accepted(&api, &token, n, deadline).await?;
            anyhow::Ok((Instant::now(), failures))
        }));
    }
    let mut acknowledged = Vec::new();
    for task in tasks {
        acknowledged.push(task.await??);
    }
    let first_failure = acknowledged
        .iter()
        .filter(|(_, failures)| !failures.is_empty())
        .map(|(at, _)| *at)
        .min();
    let before = acknowledged
        .iter()
        .filter(|(at, failures)| failures.is_empty() && first_failure.is_none_or(|f| *at < f))
        .count();
    let retried = acknowledged
        .iter()
        .filter(|(_, failures)| !failures.is_empty())
        .count();
    let mut by_outcome: HashMap<String, usize> = HashMap::new();
    for failure in acknowledged.iter().flat_map(|(_, failures)| failures) {
        *by_outcome.entry(failure.label().to_string()).or_default() += 1;
    }
    println!("baskets={}", families.len());
    println!("baskets_acknowledged_before_first_failure={before}");
    println!("baskets_retried={retried}");
    let mut labels: Vec<_> = by_outcome.into_iter().collect();
    labels.sort();
    for (label, count) in labels {
        println!("failed_attempts_{label}={count}");
    }
    check_baskets(pool, families).await
}

/// Every line of the families' baskets is in the store once (requested,
/// then confirmed) and, within 30 s, in the calendar once, confirmed.
pub async fn check_baskets(pool: &PgPool, families: std::ops::Range<usize>) -> anyhow::Result<()> {
    let (meal, days) = (id("meal", 0), basket_days());
    let mut family_of: HashMap<String, usize> = HashMap::new();
    for n in families.clone() {
        for day in &days {
            family_of.insert(reservation_id(id("child", n), meal, *day).to_string(), n);
        }
    }
    let ids: Vec<String> = family_of.keys().cloned().collect();
    let streams: Vec<(String, Vec<String>)> = sqlx::query_as(
        "SELECT aggregate_id, array_agg(event_type ORDER BY sequence) FROM events
         WHERE aggregate_type = 'Reservation' AND aggregate_id = ANY($1) GROUP BY aggregate_id",
    )
    .bind(&ids)
    .fetch_all(pool)
    .await?;
    let confirmed_once = ["ReservationRequested", "ReservationConfirmed"];
    for (stream, kinds) in &streams {
        anyhow::ensure!(
            kinds == &confirmed_once,
            "family {}'s line {stream} holds {kinds:?}",
            family_of[stream]
        );
    }
    anyhow::ensure!(
        streams.len() == ids.len(),
        "{} of the {} acknowledged lines are missing from the store",
        ids.len() - streams.len(),
        ids.len()
    );
    let children: Vec<Uuid> = families.clone().map(|n| id("child", n)).collect();
    let started = Instant::now();
    loop {
        let (rows, distinct): (i64, i64) = sqlx::query_as(
            "SELECT count(*), count(DISTINCT (child_id, day)) FROM calendar_reservations
             WHERE unit_id = $1 AND child_id = ANY($2) AND status = 'confirmed'",
        )
        .bind(meal)
        .bind(&children)
        .fetch_one(pool)
        .await?;
        let expected = (families.len() * LINES_PER_BASKET) as i64;
        if rows == expected && distinct == expected {
            println!("lines_in_store_once={}", ids.len());
            println!("lines_in_calendar_once={rows}");
            return Ok(());
        }
        anyhow::ensure!(
            rows <= expected && started.elapsed() < Duration::from_secs(30),
            "the calendar holds {rows} confirmed rows ({distinct} distinct) for {expected} lines"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The p-th percentile of latencies, in milliseconds.
pub fn percentile_ms(latencies: &mut [Duration], p: f64) -> f64 {
    latencies.sort();
    load::percentile(latencies, p)
}
