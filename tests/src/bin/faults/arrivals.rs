//! Parents arriving when bookings open: each logs in and submits its
//! basket, at an instant spread evenly over the window (nothing spread:
//! all at once). A request the server sheds (`OVERLOADED`) or limits is
//! sent again after its `Retry-After`, as the portal's client does, with a
//! little jitter; nothing else is retried. Reported: every answer by
//! outcome and its latency (p50, p99), each parent's time from arrival to
//! its basket acknowledged, and the lines checked in the store and the
//! calendar, once each.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sqlx::PgPool;

use super::{basket, check_baskets, percentile_ms, Api, Outcome};
use espace_famille_tests::load::{self, guardian};

/// One answer: its step and outcome (`login_ok`, `basket_OVERLOADED`...)
/// and how long it took.
type Answer = (String, Duration);

/// Sends `body` until it is answered with data, honouring the server's
/// `Retry-After` for the answers that carry one; every answer is kept.
async fn until_answered(
    api: &Api,
    step: &str,
    token: Option<&str>,
    body: &str,
    answers: &mut Vec<Answer>,
) -> anyhow::Result<Value> {
    let started = Instant::now();
    loop {
        let sent = Instant::now();
        let (outcome, retry_after) = api.post_with_retry_after(token, body).await;
        answers.push((format!("{step}_{}", outcome.label()), sent.elapsed()));
        match outcome {
            Outcome::Data(data) => return Ok(data),
            Outcome::Refused { .. }
                if retry_after.is_some() && started.elapsed() < Duration::from_secs(300) =>
            {
                let wait = retry_after.unwrap_or(1) as f64;
                // Up to half as long again, at random: not all back at once.
                let jitter = rand_fraction() * wait / 2.0;
                tokio::time::sleep(Duration::from_secs_f64(wait + jitter)).await;
            }
            other => anyhow::bail!("{other:?}"),
        }
    }
}

/// A fraction in [0, 1) from the clock's nanoseconds: jitter, not secrets.
fn rand_fraction() -> f64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    f64::from(nanos % 1_000) / 1_000.0
}

pub async fn run(
    api: &Api,
    pool: &PgPool,
    families: std::ops::Range<usize>,
    over: Duration,
) -> anyhow::Result<()> {
    let api = Arc::new(Api {
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(families.len())
            .build()?,
        server: api.server.clone(),
    });
    let count = families.len();
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(count);
    for (i, n) in families.clone().enumerate() {
        let api = api.clone();
        let arrival = over.mul_f64(i as f64 / count as f64);
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(tokio::time::Instant::from_std(started + arrival)).await;
            let arrived = Instant::now();
            let mut answers = Vec::new();
            let login = json!({
                "query": "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
                "variables": { "e": guardian(n), "p": load::PASSWORD },
            })
            .to_string();
            let data = until_answered(&api, "login", None, &login, &mut answers).await?;
            let token = data["login"]["token"].as_str().unwrap_or_default().to_string();
            let data = until_answered(&api, "basket", Some(&token), &basket(n), &mut answers).await?;
            anyhow::ensure!(data["submitBasket"]["status"] == "ACCEPTED", "basket {n}: {data}");
            anyhow::Ok((arrived.elapsed(), answers))
        }));
    }
    let mut to_accepted = Vec::with_capacity(count);
    let mut answers = Vec::new();
    for task in tasks {
        let (took, mine) = task.await??;
        to_accepted.push(took);
        answers.extend(mine);
    }
    let elapsed = started.elapsed();
    let mut by_outcome: BTreeMap<String, Vec<Duration>> = BTreeMap::new();
    for (outcome, latency) in answers {
        by_outcome.entry(outcome).or_default().push(latency);
    }
    println!("parents={count}");
    println!("arriving_over_s={}", over.as_secs());
    println!("all_acknowledged_after_s={:.1}", elapsed.as_secs_f64());
    for (outcome, latencies) in &mut by_outcome {
        println!("answers_{outcome}={}", latencies.len());
        println!("answers_{outcome}_p50_ms={:.1}", percentile_ms(latencies, 0.5));
        println!("answers_{outcome}_p99_ms={:.1}", percentile_ms(latencies, 0.99));
    }
    println!(
        "arrival_to_accepted_p50_ms={:.1}",
        percentile_ms(&mut to_accepted, 0.5)
    );
    println!(
        "arrival_to_accepted_p99_ms={:.1}",
        percentile_ms(&mut to_accepted, 0.99)
    );
    check_baskets(pool, families).await
}
