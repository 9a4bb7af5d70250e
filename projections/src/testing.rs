//! Support for tests that need a real PostgreSQL: each gets a database of
//! its own, created fresh and migrated, on the server `DATABASE_URL` names
//! (`scripts/test` starts one).

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{ConnectOptions, Connection, PgConnection, PgPool};
use uuid::Uuid;

/// Creates and migrates a fresh database; returns a pool on it and its URL.
///
/// # Panics
///
/// When `DATABASE_URL` is unset or the server is unreachable: a test that
/// needs PostgreSQL must fail loudly, not pass without it.
pub async fn fresh_database() -> (PgPool, String) {
    let admin_url = std::env::var("DATABASE_URL")
        .expect("DATABASE_URL must point at a PostgreSQL server (scripts/test starts one)");
    let admin_options: PgConnectOptions = admin_url.parse().expect("DATABASE_URL is not a PostgreSQL URL");
    let name = format!("test_{}", Uuid::new_v4().simple());
    let mut admin = PgConnection::connect_with(&admin_options)
        .await
        .expect("cannot connect to DATABASE_URL");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut admin)
        .await
        .expect("cannot create a test database");
    admin.close().await.ok();
    let options = admin_options.database(&name);
    let url = options.to_url_lossy().to_string();
    let pool = PgPoolOptions::new()
        .max_connections(20)
        .test_before_acquire(false)
        .connect_with(options)
        .await
        .expect("cannot connect to the test database");
    crate::MIGRATOR.run(&pool).await.expect("migrations failed");
    (pool, url)
}

/// Waits until every committed event is below the snapshot horizon, where
/// readers of the store see it. The horizon is the whole cluster's: a
/// transaction of a test running beside this one, in another database,
/// holds it back for a moment.
///
/// # Panics
///
/// When an older transaction holds the horizon back for 5 s.
pub async fn wait_below_horizon(pool: &PgPool) {
    for _ in 0..200 {
        let below = crate::store::all_below_horizon(pool)
            .await
            .expect("cannot read the horizon");
        if below {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("an older transaction kept the last events above the horizon for 5 s");
}

/// A reservation's first event, for child `1000 + n` of one family, on one
/// day: what the store's tests append.
pub fn requested(n: u128) -> espace_famille_domain::reservation::ReservationEvent {
    espace_famille_domain::reservation::ReservationEvent::ReservationRequested {
        slot: espace_famille_domain::reservation::Slot {
            family_id: Uuid::from_u128(1),
            child_id: Uuid::from_u128(1000 + n),
            collectivity_id: Uuid::from_u128(2),
            service_id: Uuid::from_u128(3),
            unit_id: Uuid::from_u128(4),
            date: chrono::NaiveDate::from_ymd_opt(2027, 1, 4).expect("a date"),
        },
        origin: espace_famille_domain::reservation::Origin::Calendar,
    }
}

/// An agent's command's metadata, its own correlation.
pub fn agent_metadata(actor_id: &str) -> crate::store::Metadata {
    let id = Uuid::new_v4();
    crate::store::Metadata {
        actor_id: actor_id.into(),
        actor_role: "agent".into(),
        correlation_id: id,
        causation_id: id,
        command_id: id,
        requested_at: chrono::Utc::now(),
    }
}
