//! Two servers on one database; the one holding the most projection
//! runners is killed with SIGKILL. Each runner holds its group's advisory
//! lock on a connection named after its process (`espace-famille-<pid>`),
//! so `pg_locks` says who runs what. Measured: from the kill until the
//! survivor holds every group's lock. Then a basket submitted through the
//! survivor must be answered and in the calendar: its runners apply.

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use sqlx::PgPool;

use super::{check_baskets, submit_until_accepted, Api};

/// The runners' locks held, by the holding connection's name.
async fn holders(pool: &PgPool) -> anyhow::Result<HashMap<String, i64>> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT a.application_name, count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
         WHERE l.locktype = 'advisory' AND l.classid = 4242 AND l.granted
           AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
         GROUP BY a.application_name",
    )
    .fetch_all(pool)
    .await?;
    Ok(rows.into_iter().collect())
}

pub async fn run(pool: &PgPool, servers: &[String], pids: &[u32], family: usize) -> anyhow::Result<()> {
    let names: Vec<String> = pids.iter().map(|pid| format!("espace-famille-{pid}")).collect();
    // Every group is led once the count has held still for two standby
    // intervals (a standby tries every 2 s).
    let mut settled = (0, Instant::now());
    let groups = loop {
        let held: i64 = holders(pool).await?.values().sum();
        if held != settled.0 {
            settled = (held, Instant::now());
        } else if held > 0 && settled.1.elapsed() > Duration::from_secs(5) {
            break held;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let before = holders(pool).await?;
    for name in before.keys() {
        anyhow::ensure!(
            names.contains(name),
            "a runner's lock is held by {name}, not by a server"
        );
    }
    let held_by = |i: usize| before.get(&names[i]).copied().unwrap_or(0);
    let victim = if held_by(0) >= held_by(1) { 0 } else { 1 };
    let survivor = 1 - victim;
    println!("runner_groups={groups}");
    println!("groups_held_by_killed_server={}", held_by(victim));

    let killed = Instant::now();
    let status = Command::new("kill")
        .args(["-9", &pids[victim].to_string()])
        .status()?;
    anyhow::ensure!(status.success(), "kill -9 {} failed", pids[victim]);
    let took = loop {
        let now = holders(pool).await?;
        if now.get(&names[survivor]).copied() == Some(groups) && now.len() == 1 {
            break killed.elapsed();
        }
        anyhow::ensure!(
            killed.elapsed() < Duration::from_secs(30),
            "30 s after the kill, the runners' locks are held as {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    println!("takeover_ms={}", took.as_millis());
    anyhow::ensure!(took < Duration::from_secs(10), "the takeover took {took:?}");

    let api = Api::new(&servers[survivor])?;
    let token = api.login(family).await?;
    let answered = Instant::now();
    submit_until_accepted(&api, &token, family, Instant::now() + Duration::from_secs(30)).await?;
    println!("basket_after_takeover_ms={}", answered.elapsed().as_millis());
    check_baskets(pool, family..family + 1).await
}
