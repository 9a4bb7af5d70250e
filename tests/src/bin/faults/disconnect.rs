//! Parents who hang up in the middle of `submitBasket`.
//!
//! Each family's basket is written to a raw connection, which is closed
//! after a delay spread from nothing to twice a basket's usual latency:
//! before the server read it, while it runs, after it answered. The server
//! drops a request whose client left; whether it had committed or not, the
//! store must hold the basket whole or not at all, at every look. Then the
//! family retries with the same id, twice: both times `ACCEPTED`, and every
//! line is in the store and in the calendar once.

use std::time::{Duration, Instant};

use espace_famille_domain::reservation::reservation_id;
use espace_famille_tests::load::{basket_days, id};
use sqlx::PgPool;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::{basket, check_baskets, percentile_ms, submit_until_accepted, Api, Outcome};

/// The basket's events in the store now.
async fn written(pool: &PgPool, n: usize) -> anyhow::Result<i64> {
    let ids: Vec<String> = basket_days()
        .iter()
        .map(|day| reservation_id(id("child", n), id("meal", 0), *day).to_string())
        .collect();
    Ok(sqlx::query_scalar(
        "SELECT count(*) FROM events WHERE aggregate_type = 'Reservation' AND aggregate_id = ANY($1)",
    )
    .bind(&ids)
    .fetch_one(pool)
    .await?)
}

/// Sends family `n`'s basket on a connection of its own, and closes it
/// `after` the request's last byte.
async fn hang_up(api: &Api, token: &str, n: usize, after: Duration) -> anyhow::Result<()> {
    let address = api.server.trim_start_matches("http://");
    let body = basket(n);
    let request = format!(
        "POST /graphql HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Authorization: Bearer {token}\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let mut stream = TcpStream::connect(address).await?;
    stream.write_all(request.as_bytes()).await?;
    tokio::time::sleep(after).await;
    drop(stream);
    Ok(())
}

pub async fn run(api: &Api, pool: &PgPool, families: std::ops::Range<usize>) -> anyhow::Result<()> {
    let tokens = api.login_all(families.clone()).await?;
    // A basket's usual latency, from the first three families' baskets.
    let mut usual = Vec::new();
    for (n, token) in families.clone().zip(&tokens).take(3) {
        let began = Instant::now();
        submit_until_accepted(api, token, n, Instant::now() + Duration::from_secs(30)).await?;
        usual.push(began.elapsed());
    }
    let typical = Duration::from_secs_f64(percentile_ms(&mut usual, 0.5) / 1000.0);
    let hung_up: Vec<(usize, &String)> = families.clone().zip(&tokens).skip(3).collect();
    let (mut whole, mut none) = (0, 0);
    for (i, (n, token)) in hung_up.iter().enumerate() {
        let after = typical * 2 * i as u32 / hung_up.len() as u32;
        hang_up(api, token, *n, after).await?;
        // Whatever the server was doing when the client left, it has done
        // it by now; every look sees all of the basket or none of it.
        let mut seen = Vec::new();
        for _ in 0..5 {
            seen.push(written(pool, *n).await?);
            tokio::time::sleep(typical / 2).await;
        }
        let lines = 2 * basket_days().len() as i64;
        anyhow::ensure!(
            seen.iter().all(|events| *events == 0 || *events == lines),
            "family {n}'s basket, hung up after {after:?}, was seen part-written: {seen:?} events of {lines}"
        );
        if seen.last() == Some(&lines) {
            whole += 1;
        } else {
            none += 1;
        }
        for attempt in 1..=2 {
            match api.post(Some(token), &basket(*n)).await {
                Outcome::Data(data) if data["submitBasket"]["status"] == "ACCEPTED" => {}
                other => anyhow::bail!("family {n}'s retry {attempt}: {other:?}"),
            }
        }
    }
    println!("hung_up={}", hung_up.len());
    println!("basket_usual_ms={:.1}", typical.as_secs_f64() * 1000.0);
    println!("hung_up_written_whole={whole}");
    println!("hung_up_not_written={none}");
    check_baskets(pool, families).await
}
