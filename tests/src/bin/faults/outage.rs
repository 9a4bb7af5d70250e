//! The database taken away under load, and brought back.
//!
//! Parents read their four weeks of calendar in a loop while a prober asks
//! `/health/ready` every 50 ms. After two seconds the script's `down`
//! command stops the database (or kills it), `outage` seconds later its
//! `up` command starts it again. Judged:
//! - every request was answered, none hung (no transport failure, none
//!   slower than 5 s), and no answer was anything but data or
//!   `UNAVAILABLE` (HTTP 503);
//! - while the database was away, readiness said not ready, and every
//!   request that ran wholly inside the outage was `UNAVAILABLE`;
//! - once `up` returned, requests were served again within 10 s without
//!   touching the server;
//! - the projections resumed: a basket submitted afterwards is answered
//!   and in the calendar.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use espace_famille_tests::load::{basket_days, id};
use serde_json::json;
use sqlx::PgPool;

use super::{check_baskets, percentile_ms, submit_until_accepted, Api, Outcome};

pub struct Plan {
    pub down: String,
    pub up: String,
    pub outage: Duration,
}

/// One request: when it was sent and answered (since the start) and how.
struct Sample {
    sent: Duration,
    answered: Duration,
    outcome: String,
}

fn shell(command: &str) -> anyhow::Result<()> {
    let status = Command::new("bash").arg("-c").arg(command).status()?;
    anyhow::ensure!(status.success(), "`{command}` failed: {status}");
    Ok(())
}

pub async fn run(
    api: &Api,
    pool: &PgPool,
    families: std::ops::Range<usize>,
    plan: &Plan,
) -> anyhow::Result<()> {
    let api = Arc::new(Api {
        http: api.http.clone(),
        server: api.server.clone(),
    });
    // The last family books once the database is back.
    let readers = families.start..families.end - 1;
    let booker = families.end - 1;
    let tokens = api.login_all(families.clone()).await?;
    let started = Instant::now();
    let running = Arc::new(AtomicBool::new(true));
    let samples = Arc::new(Mutex::new(Vec::<Sample>::new()));
    let probes = Arc::new(Mutex::new(Vec::<(Duration, u16)>::new()));
    let days = basket_days();
    let (from, to) = (days[0], days[days.len() - 1]);
    let mut workers = Vec::new();
    for (n, token) in readers.clone().zip(tokens.iter().cloned()) {
        let (api, running, samples) = (api.clone(), running.clone(), samples.clone());
        workers.push(tokio::spawn(async move {
            let body = calendar_query(n, from, to);
            while running.load(Ordering::Relaxed) {
                let sent = started.elapsed();
                let outcome = api.post(Some(&token), &body).await;
                let answered = started.elapsed();
                let label = match &outcome {
                    Outcome::Refused { code, status } if code == "UNAVAILABLE" && *status != 503 => {
                        format!("UNAVAILABLE with HTTP {status}")
                    }
                    other => other.label().to_string(),
                };
                samples.lock().expect("samples").push(Sample {
                    sent,
                    answered,
                    outcome: label,
                });
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
    }
    let prober = {
        let (api, running, probes) = (api.clone(), running.clone(), probes.clone());
        tokio::spawn(async move {
            while running.load(Ordering::Relaxed) {
                let status = api
                    .http
                    .get(format!("{}/health/ready", api.server))
                    .timeout(Duration::from_secs(5))
                    .send()
                    .await
                    .map(|r| r.status().as_u16())
                    .unwrap_or(0);
                probes.lock().expect("probes").push((started.elapsed(), status));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };

    tokio::time::sleep(Duration::from_secs(2)).await;
    let going_down = started.elapsed();
    tokio::task::block_in_place(|| shell(&plan.down))?;
    let down = started.elapsed();
    tokio::time::sleep(plan.outage).await;
    let coming_up = started.elapsed();
    tokio::task::block_in_place(|| shell(&plan.up))?;
    let up = started.elapsed();
    // Served again: the first request sent after `up` that was answered
    // with data.
    let served_again = loop {
        let first = samples
            .lock()
            .expect("samples")
            .iter()
            .filter(|s| s.sent >= up && s.outcome == "ok")
            .map(|s| s.answered)
            .min();
        if let Some(at) = first {
            break at;
        }
        anyhow::ensure!(
            started.elapsed() - up < Duration::from_secs(30),
            "nothing served 30 s after the database came back"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    running.store(false, Ordering::Relaxed);
    for worker in workers {
        worker.await?;
    }
    prober.await?;

    let samples = std::mem::take(&mut *samples.lock().expect("samples"));
    let probes = std::mem::take(&mut *probes.lock().expect("probes"));
    let before: Vec<&Sample> = samples.iter().filter(|s| s.answered < going_down).collect();
    let inside: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.sent >= down && s.answered <= coming_up)
        .collect();
    let mut latencies: Vec<Duration> = inside.iter().map(|s| s.answered - s.sent).collect();
    let mut all: Vec<Duration> = samples.iter().map(|s| s.answered - s.sent).collect();
    let unavailable = inside.iter().filter(|s| s.outcome == "UNAVAILABLE").count();
    let not_ready = probes
        .iter()
        .find(|(at, status)| *at >= going_down && *status == 503)
        .map(|(at, _)| *at);
    let ready_again = probes
        .iter()
        .find(|(at, status)| *at >= up && *status == 200)
        .map(|(at, _)| *at);
    let mut outcomes: std::collections::BTreeMap<&str, usize> = Default::default();
    for sample in &samples {
        *outcomes.entry(sample.outcome.as_str()).or_default() += 1;
    }
    // The requests slower than a second, for the operator to read.
    for slow in samples
        .iter()
        .filter(|s| s.answered - s.sent > Duration::from_secs(1))
        .take(10)
    {
        eprintln!(
            "slow: sent at {} ms (down {}..{}, up {}..{}), answered {} ms later: {}",
            slow.sent.as_millis(),
            going_down.as_millis(),
            down.as_millis(),
            coming_up.as_millis(),
            up.as_millis(),
            (slow.answered - slow.sent).as_millis(),
            slow.outcome
        );
    }
    println!("requests={}", samples.len());
    for (outcome, count) in &outcomes {
        println!("requests_{outcome}={count}");
    }
    println!("requests_inside_outage={}", inside.len());
    println!("unavailable_inside_outage={unavailable}");
    println!("inside_outage_p50_ms={:.1}", percentile_ms(&mut latencies, 0.5));
    println!("inside_outage_p99_ms={:.1}", percentile_ms(&mut latencies, 0.99));
    println!("slowest_answer_ms={:.1}", percentile_ms(&mut all, 1.0));
    println!("database_down_in_ms={}", (down - going_down).as_millis());
    println!("database_up_in_ms={}", (up - coming_up).as_millis());
    if let Some(at) = not_ready {
        println!("not_ready_after_ms={}", at.saturating_sub(going_down).as_millis());
    }
    println!("served_again_after_ms={}", (served_again - up).as_millis());
    if let Some(at) = ready_again {
        println!("ready_again_after_ms={}", (at - up).as_millis());
    }

    anyhow::ensure!(
        !before.is_empty() && before.iter().all(|s| s.outcome == "ok"),
        "requests failed before the outage"
    );
    for (outcome, count) in &outcomes {
        anyhow::ensure!(
            *outcome == "ok" || *outcome == "UNAVAILABLE",
            "{count} requests answered {outcome}"
        );
    }
    anyhow::ensure!(
        all.last()
            .is_some_and(|slowest| *slowest < Duration::from_secs(5)),
        "a request took {:?}",
        all.last()
    );
    anyhow::ensure!(
        !inside.is_empty() && unavailable == inside.len(),
        "{} of {} requests inside the outage were served or refused otherwise",
        inside.len() - unavailable,
        inside.len()
    );
    anyhow::ensure!(
        not_ready.is_some_and(|at| at <= coming_up),
        "readiness never said not ready"
    );
    anyhow::ensure!(
        served_again - up < Duration::from_secs(10),
        "served again only {:?} after the database was back",
        served_again - up
    );
    anyhow::ensure!(ready_again.is_some(), "readiness never said ready again");

    // The projections resumed: a new basket is answered and in the calendar.
    let token = &tokens[tokens.len() - 1];
    submit_until_accepted(&api, token, booker, Instant::now() + Duration::from_secs(30)).await?;
    check_baskets(pool, booker..booker + 1).await
}

fn calendar_query(n: usize, from: NaiveDate, to: NaiveDate) -> String {
    json!({
        "query": "query($c: UUID!, $u: UUID!, $f: NaiveDate!, $t: NaiveDate!) {
                    calendar(childId: $c, unitId: $u, from: $f, to: $t) { date status }
                  }",
        "variables": { "c": id("child", n), "u": id("meal", 0), "f": from, "t": to },
    })
    .to_string()
}
