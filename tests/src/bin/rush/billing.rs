//! The billing phases: a régie's month billed for every family (20 days
//! booked each), then a payment per family verified from the provider's
//! notifications, many at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{Datelike, NaiveDate, Utc, Weekday};
use espace_famille_domain::calendar::SchoolYear;
use espace_famille_domain::invoice::monthly_invoice_id;
use espace_famille_domain::reservation::{reservation_id, Origin, Reservation, ReservationEvent, Slot};
use espace_famille_projections::store::{self, StreamAppend};
use serde_json::json;
use sqlx::PgPool;
use tokio::sync::Semaphore;

use espace_famille_tests::load::{id, report, system_metadata, wait_until_quiet, Client, LINES_PER_BASKET};

/// The 20 weekdays of a month two years ahead that the canteen runs (no
/// other phase books that far).
fn billed_days() -> Vec<NaiveDate> {
    let today = Utc::now().date_naive();
    let holiday = |day: NaiveDate| {
        espace_famille_domain::calendar::public_holidays_of(SchoolYear::of(day), false)
            .iter()
            .any(|h| h.date == day)
    };
    let mut first = NaiveDate::from_ymd_opt(today.year() + 2, today.month(), 1).expect("a month");
    loop {
        let days: Vec<NaiveDate> = first
            .iter_days()
            .take_while(|d| d.month() == first.month())
            .filter(|d| !matches!(d.weekday(), Weekday::Sat | Weekday::Sun) && !holiday(*d))
            .take(LINES_PER_BASKET)
            .collect();
        // A month of many public holidays (May) may have fewer.
        if days.len() == LINES_PER_BASKET {
            return days;
        }
        first = first + chrono::Months::new(1);
    }
}

/// Each family's 20 days of the month, booked as the rush books them.
async fn seed_month(pool: &PgPool, families: usize, days: &[NaiveDate]) -> anyhow::Result<()> {
    let (commune, canteen, meal) = (id("commune", 0), id("canteen", 0), id("meal", 0));
    let limit = Arc::new(Semaphore::new(4));
    let mut tasks = Vec::new();
    for chunk in (0..families).collect::<Vec<_>>().chunks(50) {
        let (pool, limit, chunk, days) = (pool.clone(), limit.clone(), chunk.to_vec(), days.to_vec());
        tasks.push(tokio::spawn(async move {
            let _permit = limit.acquire_owned().await?;
            let mut appends = Vec::with_capacity(chunk.len() * days.len());
            for n in chunk {
                for &date in &days {
                    let slot = Slot {
                        family_id: id("family", n),
                        child_id: id("child", n),
                        collectivity_id: commune,
                        service_id: canteen,
                        unit_id: meal,
                        date,
                    };
                    appends.push(StreamAppend::new::<Reservation>(
                        reservation_id(slot.child_id, meal, date).to_string(),
                        0,
                        &[
                            ReservationEvent::ReservationRequested {
                                slot,
                                origin: Origin::Calendar,
                            },
                            ReservationEvent::ReservationConfirmed,
                        ],
                    )?);
                }
            }
            let mut conn = pool.acquire().await?;
            store::append(&mut conn, &appends, &system_metadata()).await?;
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}

/// Bills the month for `families` families, then pays `payers` of their
/// invoices and sends the provider's notifications, `concurrency` at once.
pub async fn billing_and_payments(
    pool: &PgPool,
    client: &Arc<Client>,
    server: &str,
    secret: &str,
    agent: &str,
    tokens: &[String],
    concurrency: usize,
) -> anyhow::Result<()> {
    let families = tokens.len();
    let days = billed_days();
    let month = days[0].format("%Y-%m").to_string();
    let commune = id("commune", 0);
    seed_month(pool, families, &days).await?;
    client
        .gql(
            Some(agent),
            "mutation($input: SetTariffInput!) { setTariff(input: $input) { id } }",
            json!({ "input": {
                "collectivityId": commune, "unitId": id("meal", 0), "validFrom": days[0],
                "brackets": [{ "upTo": 700, "priceCents": 215 }, { "upTo": 1200, "priceCents": 360 }, { "upTo": null, "priceCents": 485 }],
                "unjustifiedAbsencePercent": 100, "unexpectedPresencePenaltyCents": 200
            } }),
        )
        .await?;
    wait_until_quiet(pool).await?;
    sqlx::query("VACUUM ANALYZE").execute(pool).await?;
    sqlx::query("CHECKPOINT").execute(pool).await?;

    let before: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(pool)
        .await?;
    let started = Instant::now();
    let billed = client
        .gql(
            Some(agent),
            "mutation($c: UUID!, $m: String!) { billMonth(collectivityId: $c, month: $m) { issued totalCents } }",
            json!({ "c": commune, "m": month }),
        )
        .await?;
    let elapsed = started.elapsed();
    let after: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(pool)
        .await?;
    let events = after - before;
    let issued = billed["billMonth"]["issued"].as_u64().unwrap_or_default() as usize;
    anyhow::ensure!(
        issued == families,
        "{issued} invoices for {families} families: {billed}"
    );
    println!("billing_families={families}");
    println!("billing_days={}", days.len());
    println!("billing_s={:.2}", elapsed.as_secs_f64());
    println!(
        "billing_invoices_per_s={:.1}",
        issued as f64 / elapsed.as_secs_f64()
    );
    println!(
        "billing_events_per_s={:.1}",
        events as f64 / elapsed.as_secs_f64()
    );
    println!(
        "billing_rows_per_transaction={}",
        2 * espace_famille_api::services::billing::GROUP
    );
    // Numbered without gap or duplicate.
    let (count, distinct): (i64, i64) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT payload::json->'InvoiceIssued'->'issued'->>'number')
         FROM events WHERE event_type = 'InvoiceIssued'",
    )
    .fetch_one(pool)
    .await?;
    anyhow::ensure!(count == distinct, "{count} invoices, {distinct} numbers");

    // Each family pays its invoice (set-up), the provider records every
    // payment (its own state), then notifies them all at once.
    let limit = Arc::new(Semaphore::new(concurrency));
    let mut tasks = Vec::with_capacity(families);
    for (n, token) in tokens.iter().enumerate() {
        let (client, limit, token) = (client.clone(), limit.clone(), token.clone());
        let invoice = monthly_invoice_id(commune, id("family", n), &month);
        tasks.push(tokio::spawn(async move {
            let _permit = limit.acquire_owned().await?;
            let data = client
                .gql(
                    Some(&token),
                    "mutation($ids: [UUID!]!) { payInvoices(invoiceIds: $ids) { paymentUrl } }",
                    json!({ "ids": [invoice] }),
                )
                .await?;
            let url = data["payInvoices"]["paymentUrl"].as_str().unwrap_or_default();
            anyhow::Ok(url.rsplit('/').next().unwrap_or_default().to_string())
        }));
    }
    let mut operations = Vec::with_capacity(families);
    for task in tasks {
        operations.push(task.await??);
    }
    sqlx::query(
        "UPDATE provider_operations SET status = 'paid', paid_cents = amount_cents,
                authorisation = '000000', decided_at = now() WHERE status = 'pending'",
    )
    .execute(pool)
    .await?;
    sqlx::query("CHECKPOINT").execute(pool).await?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .timeout(Duration::from_secs(60))
        .build()?;
    let url = format!("{}/paiement/notification", server.trim_end_matches('/'));
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(families);
    for operation in operations {
        let (http, limit, url, secret) = (http.clone(), limit.clone(), url.clone(), secret.to_string());
        let body = json!({ "operation_id": operation }).to_string();
        tasks.push(tokio::spawn(async move {
            let _permit = limit.acquire_owned().await?;
            let began = Instant::now();
            let signature = espace_famille_api::payment::sign(&secret, Utc::now(), body.as_bytes());
            let answer = http
                .post(&url)
                .header("content-type", "application/json")
                .header("signature", signature)
                .body(body)
                .send()
                .await?;
            anyhow::ensure!(answer.status().is_success(), "notification: {}", answer.status());
            anyhow::Ok(began.elapsed())
        }));
    }
    let mut latencies = Vec::with_capacity(families);
    for task in tasks {
        latencies.push(task.await??);
    }
    report("notification", latencies, started.elapsed(), families);
    let paid: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE event_type = 'InvoicePaid'")
        .fetch_one(pool)
        .await?;
    anyhow::ensure!(paid as usize == families, "{paid} invoices paid of {families}");
    Ok(())
}
