//! A projection that cannot apply an event stops at it, records why, and
//! lets the others of its group go on; it resumes once it can.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use espace_famille_projections::engine::{self, failures, Checkpoints, EngineConfig, Projection};
use espace_famille_projections::store::{RecordedEvent, StoreError};
use espace_famille_projections::testing::fresh_database;
use sqlx::{PgConnection, PgPool};

/// Writes every event's stream into its table; `Fragile` fails on the
/// stream "poison" until it is fixed.
struct Writer {
    name: &'static str,
    fixed: Option<Arc<AtomicBool>>,
}

#[async_trait]
impl Projection for Writer {
    fn name(&self) -> &'static str {
        self.name
    }

    fn tables(&self) -> &'static [&'static str] {
        &[]
    }

    async fn apply(&self, conn: &mut PgConnection, event: &RecordedEvent) -> Result<(), StoreError> {
        if let Some(fixed) = &self.fixed {
            if event.aggregate_id == "poison" && !fixed.load(Ordering::SeqCst) {
                return Err(StoreError::Corrupt("cannot read poison".into()));
            }
        }
        sqlx::query("INSERT INTO written (projection, stream) VALUES ($1, $2)")
            .bind(self.name)
            .bind(&event.aggregate_id)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }
}

async fn insert(pool: &PgPool, stream: &str) {
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         VALUES ('Test', $1, 1, 'Tested', '1', '{}', '{}')",
    )
    .bind(stream)
    .execute(pool)
    .await
    .unwrap();
}

async fn written(pool: &PgPool, projection: &str) -> Vec<String> {
    sqlx::query_scalar("SELECT stream FROM written WHERE projection = $1 ORDER BY stream")
        .bind(projection)
        .fetch_all(pool)
        .await
        .unwrap()
}

async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    for _ in 0..400 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{what} within 10 s");
}

#[tokio::test]
async fn a_projection_that_cannot_apply_an_event_stops_there_and_the_others_go_on() {
    let (pool, _) = fresh_database().await;
    sqlx::query("CREATE TABLE written (projection text NOT NULL, stream text NOT NULL, PRIMARY KEY (projection, stream))")
        .execute(&pool)
        .await
        .unwrap();
    let fixed = Arc::new(AtomicBool::new(false));
    let group: Vec<Arc<dyn Projection>> = vec![
        Arc::new(Writer {
            name: "sturdy",
            fixed: None,
        }),
        Arc::new(Writer {
            name: "fragile",
            fixed: Some(fixed.clone()),
        }),
    ];
    for stream in ["a", "b", "poison", "c"] {
        insert(&pool, stream).await;
    }
    let config = EngineConfig {
        batch_size: 100,
        poll_interval: Duration::from_millis(50),
        standby_interval: Duration::from_secs(3600),
    };
    let engine = engine::start(pool.clone(), vec![group], config).await.unwrap();

    // The sturdy one applies everything; the fragile one what came before
    // the poison, and stops there.
    eventually("the sturdy projection applied every event", async || {
        written(&pool, "sturdy").await.len() == 4
    })
    .await;
    eventually("the fragile projection's failure was recorded", async || {
        !failures::list(&pool).await.unwrap().is_empty()
    })
    .await;
    assert_eq!(written(&pool, "fragile").await, ["a", "b"]);
    let failure = failures::list(&pool).await.unwrap().remove(0);
    let poison: uuid::Uuid = sqlx::query_scalar("SELECT event_id FROM events WHERE aggregate_id = 'poison'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(failure.projection, "fragile");
    assert_eq!(failure.event_id, poison);
    assert!(failure.error.contains("cannot read poison"), "{}", failure.error);
    assert!(failure.attempts >= 1);
    let status = failures::status(&pool).await.unwrap();
    let fragile = status.iter().find(|s| s.projection == "fragile").unwrap();
    assert_eq!(fragile.behind, 2, "stopped before the poison: it and c are left");
    assert_eq!(fragile.failure.as_ref().map(|f| f.event_id), Some(poison));
    let sturdy = status.iter().find(|s| s.projection == "sturdy").unwrap();
    assert_eq!((sturdy.behind, sturdy.failure.is_none()), (0, true));

    // New events reach the sturdy one; a request waiting for its write to
    // show does not wait for the stopped one.
    insert(&pool, "d").await;
    let position: i64 = sqlx::query_scalar("SELECT global_position FROM events WHERE aggregate_id = 'd'")
        .fetch_one(&pool)
        .await
        .unwrap();
    let transaction: i64 =
        sqlx::query_scalar("SELECT transaction_id::text::bigint FROM events WHERE aggregate_id = 'd'")
            .fetch_one(&pool)
            .await
            .unwrap();
    let checkpoints = Checkpoints::watch(pool.clone());
    let waited = std::time::Instant::now();
    let reached = checkpoints
        .wait_for(
            espace_famille_projections::store::Position {
                transaction_id: transaction,
                global_position: position,
            },
            &["sturdy", "fragile"],
            Duration::from_secs(5),
        )
        .await;
    assert!(reached && waited.elapsed() < Duration::from_secs(3));
    assert_eq!(written(&pool, "fragile").await, ["a", "b"]);

    // Fixed, and told to try again: it applies the poison and what
    // followed, once each, and its failure is gone.
    fixed.store(true, Ordering::SeqCst);
    assert!(failures::retry(&pool, "fragile").await.unwrap());
    eventually("the fragile projection resumed", async || {
        written(&pool, "fragile").await.len() == 5
    })
    .await;
    assert_eq!(written(&pool, "fragile").await, ["a", "b", "c", "d", "poison"]);
    eventually("its failure was cleared", async || {
        failures::list(&pool).await.unwrap().is_empty()
    })
    .await;
    assert!(
        !failures::retry(&pool, "fragile").await.unwrap(),
        "nothing to retry"
    );
    engine.shutdown().await;
}
