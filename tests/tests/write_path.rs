//! The one write path: races lost are tried again on fresh state under one
//! policy, whatever the aggregate and however the events are written, and
//! a write that cannot win gives up cleanly, its transaction's work with it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use espace_famille_api::commands::Commands;
use espace_famille_api::error::ApiError;
use espace_famille_api::services::{Failure, Work, Write, CONFLICT_RETRIES};
use espace_famille_domain::collectivity::{Collectivity, CollectivityCommand, Service, ServiceKind};
use espace_famille_projections::store::{Metadata, StreamAppend};
use uuid::Uuid;

fn system() -> Metadata {
    let id = Uuid::new_v4();
    Metadata {
        actor_id: "test".into(),
        actor_role: "system".into(),
        correlation_id: id,
        causation_id: id,
        command_id: id,
        requested_at: chrono::Utc::now(),
    }
}

async fn commune(commands: &Commands) -> Uuid {
    let id = Uuid::new_v4();
    commands
        .execute::<Collectivity>(
            id,
            CollectivityCommand::Create {
                id,
                name: "Commune d'essai".into(),
            },
            &system(),
        )
        .await
        .unwrap();
    id
}

#[tokio::test]
async fn commands_racing_on_one_stream_all_land_each_after_the_last() {
    let (pool, _) = espace_famille_projections::testing::fresh_database().await;
    let commands = Arc::new(Commands::new(pool.clone(), Duration::ZERO));
    let commune = commune(&commands).await;
    // Each race a writer loses is one another writer won: as many writers
    // as the policy has attempts all get through, whatever the timing.
    let writers = CONFLICT_RETRIES;
    let mut tasks = Vec::new();
    for n in 0..writers {
        let commands = commands.clone();
        tasks.push(tokio::spawn(async move {
            let service = Service {
                id: Uuid::new_v4(),
                name: format!("Service {n}"),
                kind: ServiceKind::Canteen,
            };
            commands
                .execute::<Collectivity>(commune, CollectivityCommand::AddService { service }, &system())
                .await
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let sequences: Vec<i64> = sqlx::query_scalar(
        "SELECT sequence FROM events WHERE aggregate_type = 'Collectivity' AND aggregate_id = $1 ORDER BY sequence",
    )
    .bind(commune.to_string())
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(sequences, (1..=writers as i64 + 1).collect::<Vec<i64>>());
    let loaded = commands.load_collectivity(commune).await.unwrap();
    assert_eq!(loaded.services.len(), writers);
}

/// A use case that always decides on a stale version of its stream, and
/// writes a row in its transaction first.
struct Stale {
    commune: Uuid,
    attempts: Arc<AtomicUsize>,
    in_transaction: bool,
}

impl Write for Stale {
    type Answer = ();

    async fn attempt(&mut self, work: &mut Work<'_>) -> Result<(), Failure> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        if self.in_transaction {
            sqlx::query("INSERT INTO probe VALUES ($1)")
                .bind(work.attempt() as i32)
                .execute(work.transaction().await?)
                .await?;
        }
        let loaded = work.load::<Collectivity>(self.commune).await?;
        assert_eq!(loaded.version, 1);
        let event = espace_famille_domain::collectivity::CollectivityEvent::ServiceAdded {
            service: Service {
                id: Uuid::new_v4(),
                name: "Trop tard".into(),
                kind: ServiceKind::Canteen,
            },
        };
        // As if the stream had been read before its first event.
        let stream = StreamAppend::new::<Collectivity>(self.commune.to_string(), 0, &[event])?;
        work.append(vec![stream], &system())?;
        Ok(())
    }

    fn contended(&self) -> String {
        format!("commune {} kept changing", self.commune)
    }
}

#[tokio::test]
async fn a_write_that_keeps_losing_gives_up_after_the_policy_and_leaves_nothing() {
    let (pool, _) = espace_famille_projections::testing::fresh_database().await;
    sqlx::query("CREATE TABLE probe (attempt int)")
        .execute(&pool)
        .await
        .unwrap();
    let commands = Commands::new(pool.clone(), Duration::ZERO);
    let commune = commune(&commands).await;
    for in_transaction in [false, true] {
        let attempts = Arc::new(AtomicUsize::new(0));
        let error = commands
            .write(Stale {
                commune,
                attempts: attempts.clone(),
                in_transaction,
            })
            .await
            .unwrap_err();
        assert!(
            matches!(&error, ApiError::Conflict(message) if message.contains("kept changing")),
            "{error:?}"
        );
        assert_eq!(
            attempts.load(Ordering::SeqCst),
            CONFLICT_RETRIES,
            "in a transaction: {in_transaction}"
        );
    }
    let events: i64 = sqlx::query_scalar("SELECT count(*) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(events, 1, "only the commune's creation");
    let probes: i64 = sqlx::query_scalar("SELECT count(*) FROM probe")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(probes, 0, "each attempt's transaction was rolled back");
}
