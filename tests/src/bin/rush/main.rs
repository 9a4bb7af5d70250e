//! `rush`: the booking-rush load generator behind `scripts/bench`.
//!
//! It seeds a commune and N families straight into the database (through
//! the domain, as `seed-demo` does), then drives a running server over HTTP
//! with GraphQL like N parents at once: log in, submit one basket of four
//! weeks of canteen, and checks afterwards that every line is in the
//! calendar read model exactly once. It also measures the single-command
//! path (agents approving cancellations one by one) and calendar reads
//! under concurrent readers, roll calls of 200 children in one mutation,
//! school years booked by period (about 140 lines a basket), the same five
//! Wednesdays booked by every family with and without 60 places a day (the
//! contended rush), a régie's month billed for every family and each
//! family's payment verified from the provider's notifications, and
//! samples the projection lag throughout. With `--uploads`, only requests
//! sent with their files (see `uploads`).
//! Results are printed as `key=value` lines for the script's table.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{NaiveDate, Utc};
use clap::Parser;
use espace_famille_domain::reservation::{reservation_id, Origin, Reservation, ReservationEvent, Slot};
use espace_famille_projections::store::{self, StreamAppend};
use serde_json::{json, Value};
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use tokio::sync::Semaphore;

#[derive(Parser)]
struct Args {
    #[arg(long, env = "DATABASE_URL")]
    database_url: String,
    /// The server to drive, e.g. http://127.0.0.1:18080.
    #[arg(long)]
    server: String,
    #[arg(long, default_value_t = 5000)]
    families: usize,
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Concurrent readers for the calendar query phase.
    #[arg(long, default_value_t = 64)]
    readers: usize,
    /// Calendar queries to run in that phase.
    #[arg(long, default_value_t = 20_000)]
    calendar_queries: usize,
    /// Families that book a school year by period, in the last phase.
    #[arg(long, default_value_t = 1_000)]
    period_families: usize,
    /// Families in the contended rush, the last phase.
    #[arg(long, default_value_t = 2_000)]
    contended_families: usize,
    /// Only the logins and the contended rush (to measure it alone).
    #[arg(long)]
    only_contended: bool,
    /// The secret the server shares with its payment provider, to sign
    /// the notifications of the payments phase.
    #[arg(long, env = "PAYMENT_SECRET")]
    payment_secret: String,
    /// Only the uploads phase, on a store a rush seeded, against a server
    /// keeping its files in this folder (the raw writes go beside them).
    #[arg(long, requires = "server_pid")]
    uploads: Option<std::path::PathBuf>,
    /// The server's process, whose memory the uploads phase reads.
    #[arg(long)]
    server_pid: Option<u32>,
    /// Guardians uploading at once, and the 1 MiB uploads they send.
    #[arg(long, default_value_t = 16)]
    upload_concurrency: usize,
    #[arg(long, default_value_t = 480)]
    upload_count: usize,
}

mod billing;
mod uploads;

use espace_famille_tests::load::*;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let pool = PgPoolOptions::new()
        .max_connections(24)
        .test_before_acquire(false)
        .connect(&args.database_url)
        .await?;
    if let (Some(files_dir), Some(pid)) = (&args.uploads, args.server_pid) {
        let client = Arc::new(Client {
            http: reqwest::Client::new(),
            url: format!("{}/graphql", args.server),
        });
        return uploads::run(
            &pool,
            &client,
            files_dir,
            pid,
            args.upload_concurrency,
            args.upload_count,
        )
        .await;
    }
    let days = basket_days();
    let commune = id("commune", 0);
    let meal = id("meal", 0);

    let started = Instant::now();
    seed(&pool, args.families, &days).await?;
    println!("seed_s={:.1}", started.elapsed().as_secs_f64());
    wait_until_quiet(&pool).await?;
    // The rush starts clean: no checkpoint of the seed's writes in the middle.
    sqlx::query("VACUUM ANALYZE").execute(&pool).await?;
    sqlx::query("CHECKPOINT").execute(&pool).await?;

    let client = Arc::new(Client {
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(args.concurrency)
            .build()?,
        url: format!("{}/graphql", args.server.trim_end_matches('/')),
    });
    let limit = Arc::new(Semaphore::new(args.concurrency));

    // Phase 1: every parent logs in.
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(args.families);
    for n in 0..args.families {
        let (client, limit) = (client.clone(), limit.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = limit.acquire_owned().await?;
            let began = Instant::now();
            let token = client.login(&guardian(n)).await?;
            anyhow::Ok((token, began.elapsed()))
        }));
    }
    let mut tokens = Vec::with_capacity(args.families);
    let mut latencies = Vec::with_capacity(args.families);
    for task in tasks {
        let (token, latency) = task.await??;
        tokens.push(token);
        latencies.push(latency);
    }
    report("login", latencies, started.elapsed(), args.families);
    if args.only_contended {
        return contended_rush(
            &pool,
            &client,
            &tokens,
            args.contended_families.min(args.families),
            args.concurrency,
        )
        .await;
    }

    // Phase 2: the rush, one basket of four weeks per family, while a
    // sampler measures how far the calendar lags behind the commits.
    let sampling = Arc::new(AtomicBool::new(true));
    let sampler = tokio::spawn(sample_lag(pool.clone(), sampling.clone()));
    // Every parent's request is written before the rush starts: building
    // it is the load generator's work, which shares the machine's cores
    // with the server and PostgreSQL during the rush.
    let bodies: Vec<String> = (0..args.families)
        .map(|n| {
            let lines: Vec<Value> = days
                .iter()
                .map(|d| json!({ "action": "BOOK", "childId": id("child", n), "unitId": meal, "date": d }))
                .collect();
            json!({
                "query": "mutation($input: SubmitBasketInput!) { submitBasket(input: $input) { status } }",
                "variables": { "input": { "basketId": id("basket", n), "familyId": id("family", n), "lines": lines } },
            })
            .to_string()
        })
        .collect();
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(args.families);
    for ((n, token), body) in tokens.iter().enumerate().zip(bodies) {
        let (client, limit, token) = (client.clone(), limit.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = limit.acquire_owned().await?;
            let began = Instant::now();
            let data = client.send(Some(&token), body).await?;
            anyhow::ensure!(data["submitBasket"]["status"] == "ACCEPTED", "basket {n}: {data}");
            anyhow::Ok(began.elapsed())
        }));
    }
    let mut latencies = Vec::with_capacity(args.families);
    for task in tasks {
        latencies.push(task.await??);
    }
    let elapsed = started.elapsed();
    sampling.store(false, Ordering::Relaxed);
    let lags = sampler.await??;
    report("basket", latencies, elapsed, args.families);
    println!(
        "lines_per_s={:.1}",
        (args.families * LINES_PER_BASKET) as f64 / elapsed.as_secs_f64()
    );
    let mut lags = lags;
    lags.sort();
    println!("lag_p99_ms={:.1}", percentile(&lags, 0.99));

    // Every line is in the calendar exactly once, as written.
    let (rows, distinct, events): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM calendar_reservations WHERE unit_id = $1 AND status = 'confirmed'),
                (SELECT count(DISTINCT (child_id, day)) FROM calendar_reservations WHERE unit_id = $1),
                (SELECT count(*) FROM events WHERE aggregate_type = 'Reservation')",
    )
    .bind(meal)
    .fetch_one(&pool)
    .await?;
    let expected = (args.families * LINES_PER_BASKET) as i64;
    println!("calendar_lines={rows}");
    println!("calendar_expected={expected}");
    anyhow::ensure!(
        rows == expected && distinct == expected && events == 2 * expected,
        "lost or doubled lines: {rows} confirmed rows, {distinct} distinct slots, {events} events for {expected} lines"
    );

    // Phase 3: the single-command path. Each parent asks to cancel one day
    // (set-up), then the agent approves them one by one, concurrently.
    let agent = client.login("agent@rush.example.fr").await?;
    let mut tasks = Vec::new();
    for (n, token) in tokens.iter().enumerate() {
        let (client, limit, token) = (client.clone(), limit.clone(), token.clone());
        let reservation = espace_famille_domain::reservation::reservation_id(id("child", n), meal, days[0]);
        tasks.push(tokio::spawn(async move {
            let _permit = limit.acquire_owned().await?;
            client
                .gql(
                    Some(&token),
                    "mutation($id: UUID!) { requestCancellation(reservationId: $id) { status } }",
                    json!({ "id": reservation }),
                )
                .await?;
            anyhow::Ok(reservation)
        }));
    }
    let mut reservations = Vec::new();
    for task in tasks {
        reservations.push(task.await??);
    }
    // The set-up is done; a profiler may start here.
    println!("cancellations_requested={}", reservations.len());
    let started = Instant::now();
    let mut tasks = Vec::new();
    for reservation in reservations {
        let (client, limit, agent) = (client.clone(), limit.clone(), agent.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = limit.acquire_owned().await?;
            let began = Instant::now();
            client
                .gql(
                    Some(&agent),
                    "mutation($id: UUID!) { approveCancellation(reservationId: $id) { status } }",
                    json!({ "id": reservation }),
                )
                .await?;
            anyhow::Ok(began.elapsed())
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.push(task.await??);
    }
    report("approval", latencies, started.elapsed(), args.families);
    // A decision does not wait for the work queue; the agent's next look
    // at it does, and finds it empty.
    let queue = client
        .gql(
            Some(&agent),
            "query($c: UUID!) { agentWorkQueue(collectivityId: $c, first: 10) { reservationId } }",
            json!({ "c": commune }),
        )
        .await?;
    let pending = queue["agentWorkQueue"].as_array().map_or(usize::MAX, Vec::len);
    anyhow::ensure!(
        pending == 0,
        "approved cancellations still in the agent's work queue: {queue}"
    );

    // Phase 4: calendar reads, four weeks for one child, by many parents:
    // first as fast as the readers go (the throughput; latency is then
    // mostly waiting in line), then at a quarter of that throughput on a
    // fixed schedule (the latency of a query on a busy but not saturated
    // server, counted from when it was due).
    let (from, to) = (days[0], days[LINES_PER_BASKET - 1]);
    let readers = Arc::new(Semaphore::new(args.readers));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for q in 0..args.calendar_queries {
        let n = q % args.families;
        let (client, readers, token) = (client.clone(), readers.clone(), tokens[n].clone());
        tasks.push(tokio::spawn(async move {
            let _permit = readers.acquire_owned().await?;
            let began = Instant::now();
            client.calendar(&token, id("child", n), meal, from, to).await?;
            anyhow::Ok(began.elapsed())
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.push(task.await??);
    }
    let elapsed = started.elapsed();
    report("calendar", latencies, elapsed, args.calendar_queries);

    let rate = args.calendar_queries as f64 / elapsed.as_secs_f64() / 4.0;
    let paced = (args.calendar_queries / 4).max(1);
    let started = tokio::time::Instant::now();
    let mut tasks = Vec::new();
    for q in 0..paced {
        let n = (q * 7) % args.families;
        let (client, readers, token) = (client.clone(), readers.clone(), tokens[n].clone());
        let due = started + Duration::from_secs_f64(q as f64 / rate);
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(due).await;
            let woke = tokio::time::Instant::now();
            let _permit = readers.acquire_owned().await?;
            client.calendar(&token, id("child", n), meal, from, to).await?;
            anyhow::Ok((woke.elapsed(), due.elapsed(), woke - due))
        }));
    }
    // A query's latency counts from when its task woke to send it, the
    // wait for a reader's permit included. Tokio's timer has millisecond
    // ticks, and on a busy machine a task wakes later still: that delay is
    // the load generator's, not the server's, so it is reported apart
    // (`wake_late`), with the latency counted from the due instant.
    let (mut latencies, mut from_due, mut late) = (Vec::new(), Vec::new(), Vec::new());
    for task in tasks {
        let (latency, since_due, woke_late) = task.await??;
        latencies.push(latency);
        from_due.push(since_due);
        late.push(woke_late);
    }
    let elapsed = started.elapsed();
    println!("calendar_paced_rate={rate:.0}");
    report("calendar_paced", latencies, elapsed, paced);
    report("calendar_paced_from_due", from_due, elapsed, paced);
    report("calendar_paced_wake_late", late, elapsed, paced);

    roll_calls(&pool, &client, &agent, args.families).await?;
    period_baskets(
        &client,
        &tokens,
        args.period_families.min(args.families),
        args.concurrency,
    )
    .await?;
    contended_rush(
        &pool,
        &client,
        &tokens,
        args.contended_families.min(args.families),
        args.concurrency,
    )
    .await?;
    billing::billing_and_payments(
        &pool,
        &client,
        &args.server,
        &args.payment_secret,
        &agent,
        &tokens,
        args.concurrency,
    )
    .await?;
    Ok(())
}

/// Phase 7: every family books the same five Wednesdays, first in a unit
/// with as many places as they book (the uncontended rush), then in the
/// same unit with 60 places a day: every basket queues on the same five
/// days' places. Checked from the events afterwards: no day gave more
/// places than it has, and the waiting list's tickets follow the order in
/// which their baskets committed.
async fn contended_rush(
    pool: &PgPool,
    client: &Arc<Client>,
    tokens: &[String],
    families: usize,
    concurrency: usize,
) -> anyhow::Result<()> {
    let days = wednesdays();
    for (prefix, unit) in [("uncontended", "wednesday"), ("contended", "wednesday-60")] {
        let bodies: Vec<String> = (0..families)
            .map(|n| {
                let lines: Vec<Value> = days
                    .iter()
                    .map(|d| json!({ "action": "BOOK", "childId": id("child", n), "unitId": id(unit, 0), "date": d }))
                    .collect();
                json!({
                    "query": "mutation($input: SubmitBasketInput!) { submitBasket(input: $input) { status lines { waitingPosition } } }",
                    "variables": { "input": { "basketId": id(&format!("{unit}-basket"), n), "familyId": id("family", n), "lines": lines } },
                })
                .to_string()
            })
            .collect();
        let limit = Arc::new(Semaphore::new(concurrency));
        let started = Instant::now();
        let mut tasks = Vec::with_capacity(families);
        for ((n, token), body) in tokens.iter().enumerate().take(families).zip(bodies) {
            let (client, limit, token) = (client.clone(), limit.clone(), token.clone());
            tasks.push(tokio::spawn(async move {
                let _permit = limit.acquire_owned().await?;
                let began = Instant::now();
                let data = client.send(Some(&token), body).await?;
                anyhow::ensure!(
                    data["submitBasket"]["status"] == "ACCEPTED",
                    "{unit} basket {n}: {data}"
                );
                let waiting = data["submitBasket"]["lines"].as_array().map_or(0, |lines| {
                    lines.iter().filter(|l| l["waitingPosition"].is_u64()).count()
                });
                anyhow::Ok((began.elapsed(), waiting))
            }));
        }
        let (mut latencies, mut waiting) = (Vec::with_capacity(families), 0);
        for task in tasks {
            let (latency, w) = task.await??;
            latencies.push(latency);
            waiting += w;
        }
        report(prefix, latencies, started.elapsed(), families);
        println!("{prefix}_waiting_lines={waiting}");
    }
    // From the events, in commit order, day by day.
    let (mut oversold, mut out_of_order, mut held, mut waiting) = (0, 0, 0, 0);
    for day in &days {
        let payloads: Vec<String> = sqlx::query_scalar(
            "SELECT payload::text FROM events WHERE aggregate_type = 'Places' AND aggregate_id = $1
             ORDER BY transaction_id, global_position",
        )
        .bind(espace_famille_domain::places::places_id(id("wednesday-60", 0), *day).to_string())
        .fetch_all(pool)
        .await?;
        let mut places = espace_famille_domain::places::Places::default();
        let mut last_ticket = 0;
        for payload in payloads {
            let event: espace_famille_domain::places::PlacesEvent = serde_json::from_str(&payload)?;
            if let espace_famille_domain::places::PlacesEvent::WaitListJoined { ticket, .. } = &event {
                if *ticket != last_ticket + 1 {
                    out_of_order += 1;
                }
                last_ticket = *ticket;
            }
            cqrs_es::Aggregate::apply(&mut places, event);
            if places.holders.len() > CONTENDED_PLACES as usize {
                oversold += 1;
            }
        }
        held += places.holders.len();
        waiting += places.waiting.len();
    }
    println!("contended_days={}", days.len());
    println!("contended_places_given={held}");
    println!("contended_waiting={waiting}");
    println!("contended_oversold={oversold}");
    println!("contended_tickets_out_of_order={out_of_order}");
    anyhow::ensure!(
        oversold == 0 && out_of_order == 0,
        "{oversold} places oversold, {out_of_order} tickets out of commit order"
    );
    Ok(())
}

/// Phase 6: a school year booked by period, one basket per family: Monday,
/// Tuesday, Thursday and Friday of every week from 1 September to 10 July
/// in the term-time unit (the holidays come back skipped), concurrently.
async fn period_baskets(
    client: &Arc<Client>,
    tokens: &[String],
    families: usize,
    concurrency: usize,
) -> anyhow::Result<()> {
    let year = period_year().0;
    let first = NaiveDate::from_ymd_opt(year, 9, 1).expect("1 September");
    let last = NaiveDate::from_ymd_opt(year + 1, 7, 10).expect("10 July");
    let bodies: Vec<String> = (0..families)
        .map(|n| {
            json!({
                "query": "mutation($input: SubmitBasketInput!) { submitBasket(input: $input) { status lines { written skipped } } }",
                "variables": { "input": {
                    "basketId": id("period-basket", n), "familyId": id("family", n), "lines": [],
                    "periods": [{ "action": "BOOK", "childIds": [id("child", n)], "unitIds": [id("term-meal", 0)],
                                  "first": first, "last": last, "weekdays": ["MON", "TUE", "THU", "FRI"] }]
                } },
            })
            .to_string()
        })
        .collect();
    let limit = Arc::new(Semaphore::new(concurrency));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(families);
    for ((n, token), body) in tokens.iter().enumerate().take(families).zip(bodies) {
        let (client, limit, token) = (client.clone(), limit.clone(), token.clone());
        tasks.push(tokio::spawn(async move {
            let _permit = limit.acquire_owned().await?;
            let began = Instant::now();
            let data = client.send(Some(&token), body).await?;
            anyhow::ensure!(
                data["submitBasket"]["status"] == "ACCEPTED",
                "period basket {n}: {data}"
            );
            let lines = data["submitBasket"]["lines"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let written = lines.iter().filter(|l| l["written"] == true).count();
            let skipped = lines.iter().filter(|l| l["skipped"] == true).count();
            anyhow::Ok((began.elapsed(), written, skipped))
        }));
    }
    let (mut latencies, mut written, mut skipped) = (Vec::with_capacity(families), 0, 0);
    for task in tasks {
        let (latency, w, s) = task.await??;
        latencies.push(latency);
        written += w;
        skipped += s;
    }
    let elapsed = started.elapsed();
    report("period_basket", latencies, elapsed, families);
    println!("period_lines_per_basket={}", written / families.max(1));
    println!("period_skipped_per_basket={}", skipped / families.max(1));
    println!("period_lines_per_s={:.1}", written as f64 / elapsed.as_secs_f64());
    Ok(())
}

/// The most children one roll call of the benchmark records.
const ROLL_CALL_SIZE: usize = 200;

/// Phase 5: roll calls of 200 children in one mutation each. Every child
/// is booked today (seeded as events: today's booking deadline passed);
/// the commune's agent records each group present, then absent, then
/// present and absent again (each pass writes one event per child), eight
/// groups at a time.
async fn roll_calls(pool: &PgPool, client: &Arc<Client>, agent: &str, families: usize) -> anyhow::Result<()> {
    let today = espace_famille_domain::calendar::paris_today(Utc::now());
    let (commune, meal, canteen) = (id("commune", 0), id("meal", 0), id("canteen", 0));
    for chunk in (0..families).collect::<Vec<_>>().chunks(500) {
        let streams = chunk
            .iter()
            .map(|&n| {
                let slot = Slot {
                    family_id: id("family", n),
                    child_id: id("child", n),
                    collectivity_id: commune,
                    service_id: canteen,
                    unit_id: meal,
                    date: today,
                };
                let events = [
                    ReservationEvent::ReservationRequested {
                        slot,
                        origin: Origin::Calendar,
                    },
                    ReservationEvent::ReservationConfirmed,
                ];
                StreamAppend::new::<Reservation>(
                    reservation_id(slot.child_id, meal, today).to_string(),
                    0,
                    &events,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut conn = pool.acquire().await?;
        store::append(&mut conn, &streams, &system_metadata()).await?;
    }
    wait_until_quiet(pool).await?;
    let size = ROLL_CALL_SIZE.min(families);
    let groups: Vec<Vec<usize>> = (0..families)
        .collect::<Vec<_>>()
        .chunks(size)
        .filter(|group| group.len() == size)
        .map(<[usize]>::to_vec)
        .collect();
    let limit = Arc::new(Semaphore::new(8));
    let (mut latencies, mut elapsed, mut marks) = (Vec::new(), Duration::ZERO, 0);
    for present in [true, false, true, false] {
        let started = Instant::now();
        let mut tasks = Vec::new();
        for group in &groups {
            let marks: Vec<Value> = group
                .iter()
                .map(|&n| json!({ "childId": id("child", n), "present": present }))
                .collect();
            let variables = json!({ "input": { "collectivityId": commune, "unitId": meal, "date": today, "marks": marks } });
            let (client, limit, agent) = (client.clone(), limit.clone(), agent.to_string());
            tasks.push(tokio::spawn(async move {
                let _permit = limit.acquire_owned().await?;
                let began = Instant::now();
                let data = client
                    .gql(
                        Some(&agent),
                        "mutation($input: RecordRollCallInput!) { recordRollCall(input: $input) { written } }",
                        variables,
                    )
                    .await?;
                let written = data["recordRollCall"].as_array().map_or(0, |marks| {
                    marks.iter().filter(|m| m["written"] == true).count()
                });
                anyhow::ensure!(written == size, "a roll call wrote {written} of {size} marks: {data}");
                anyhow::Ok(began.elapsed())
            }));
        }
        for task in tasks {
            latencies.push(task.await??);
        }
        elapsed += started.elapsed();
        marks += groups.len() * size;
    }
    let calls = latencies.len();
    report("roll_call", latencies, elapsed, calls);
    println!("roll_call_size={size}");
    println!(
        "roll_call_marks_per_s={:.1}",
        marks as f64 / elapsed.as_secs_f64()
    );
    Ok(())
}

/// Samples, every 20 ms, the age of the oldest committed event the calendar
/// has not applied yet: the commit-to-visible lag.
async fn sample_lag(pool: PgPool, running: Arc<AtomicBool>) -> anyhow::Result<Vec<Duration>> {
    let mut samples = Vec::new();
    while running.load(Ordering::Relaxed) {
        // The age of the first committed event the calendar has not
        // applied yet (one index probe: sampling must not load the server).
        let (transaction_id, position): (String, i64) = sqlx::query_as(
            "SELECT last_transaction_id::text, last_position FROM projection_checkpoints WHERE name = 'calendar'",
        )
        .fetch_one(&pool)
        .await?;
        let lag: Option<f64> = sqlx::query_scalar(
            "SELECT extract(epoch FROM clock_timestamp() - recorded_at)::float8 FROM events
             WHERE (transaction_id, global_position) > ($1::xid8, $2)
             ORDER BY transaction_id, global_position LIMIT 1",
        )
        .bind(transaction_id)
        .bind(position)
        .fetch_optional(&pool)
        .await?;
        samples.push(Duration::from_secs_f64(lag.unwrap_or(0.0).max(0.0)));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(samples)
}
