//! The projection engine against a real PostgreSQL: gap safety, exactly-once
//! application, one active runner, rebuild.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use espace_famille_projections::engine::{self, BatchOutcome, EngineConfig, Projection};
use espace_famille_projections::store::{RecordedEvent, StoreError};
use espace_famille_projections::testing::{fresh_database, wait_below_horizon};
use sqlx::{PgConnection, PgPool};

/// Records every event it sees, with the runner that applied it; the
/// primary key makes a second application of an event fail.
struct Recorder {
    runner: &'static str,
}

#[async_trait]
impl Projection for Recorder {
    fn name(&self) -> &'static str {
        "recorder"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["recorded"]
    }

    async fn apply(&self, conn: &mut PgConnection, event: &RecordedEvent) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO recorded (event_id, aggregate_id, runner) VALUES ($1, $2, $3)")
            .bind(event.event_id)
            .bind(&event.aggregate_id)
            .bind(self.runner)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }
}

async fn setup() -> PgPool {
    let (pool, _) = fresh_database().await;
    sqlx::query(
        "CREATE TABLE recorded (event_id uuid PRIMARY KEY, aggregate_id text NOT NULL, runner text NOT NULL)",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("CREATE INDEX recorded_by_runner ON recorded (runner, aggregate_id)")
        .execute(&pool)
        .await
        .unwrap();
    engine::register(
        &pool,
        &[Arc::new(Recorder { runner: "a" }) as Arc<dyn Projection>],
    )
    .await
    .unwrap();
    pool
}

/// The settings of an engine whose runners do not poll within a test: only an
/// announcement (or the first batch, on start) runs them.
fn woken_only_by_announcements() -> EngineConfig {
    EngineConfig {
        batch_size: 100,
        poll_interval: Duration::from_secs(3600),
        standby_interval: Duration::from_secs(3600),
    }
}

/// An engine whose one group is a recorder named after its runner.
async fn start_recorder(pool: &PgPool, runner: &'static str, config: EngineConfig) -> engine::EngineHandle {
    engine::start(pool.clone(), vec![vec![Arc::new(Recorder { runner })]], config)
        .await
        .unwrap()
}

/// A fresh database with one event, "first", and a recorder engine that
/// has applied it: its first batch, run on start, proves the runner leads;
/// from then on only an announcement runs it.
async fn leading_recorder_woken_only_by_announcements() -> (PgPool, engine::EngineHandle) {
    let pool = setup().await;
    insert_event(&mut pool.acquire().await.unwrap(), "first").await;
    let engine = start_recorder(&pool, "a", woken_only_by_announcements()).await;
    wait_until_recorded(&pool, 1).await;
    (pool, engine)
}

async fn insert_event(conn: &mut PgConnection, stream: &str) {
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         VALUES ('Test', $1, 1, 'Tested', '1', '{}', '{}')",
    )
    .bind(stream)
    .execute(conn)
    .await
    .unwrap();
}

async fn recorded(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar("SELECT aggregate_id FROM recorded ORDER BY aggregate_id")
        .fetch_all(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn an_event_that_commits_late_with_a_lower_position_is_projected_exactly_once() {
    let pool = setup().await;
    let recorder = Recorder { runner: "a" };

    let mut slow = pool.begin().await.unwrap();
    insert_event(&mut slow, "slow").await; // takes the lower position
    let mut fast = pool.begin().await.unwrap();
    insert_event(&mut fast, "fast").await;
    fast.commit().await.unwrap();

    let positions: Vec<i64> =
        sqlx::query_scalar("SELECT global_position FROM events ORDER BY global_position")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(positions.len(), 1, "only the fast event is committed so far");

    // The fast event is committed, but the slow transaction is still open
    // below it: the projection must not move past it.
    assert_eq!(
        engine::run_batch(&pool, &recorder, 100).await.unwrap(),
        BatchOutcome::HeldBack
    );
    assert!(recorded(&pool).await.is_empty());

    slow.commit().await.unwrap();
    assert_eq!(engine::catch_up(&pool, &recorder, 100).await.unwrap(), 2);
    assert_eq!(recorded(&pool).await, vec!["fast", "slow"]);
    assert_eq!(engine::catch_up(&pool, &recorder, 100).await.unwrap(), 0);
    assert_eq!(recorded(&pool).await.len(), 2);
}

#[tokio::test]
async fn two_engines_on_one_database_apply_each_event_once_from_one_active_runner() {
    let pool = setup().await;
    let config = EngineConfig {
        batch_size: 7,
        poll_interval: Duration::from_millis(50),
        standby_interval: Duration::from_millis(50),
    };
    let first = start_recorder(&pool, "a", config.clone()).await;
    let second = start_recorder(&pool, "b", config).await;

    let writers: Vec<_> = (0..4)
        .map(|writer| {
            let pool = pool.clone();
            tokio::spawn(async move {
                for i in 0..50 {
                    let mut conn = pool.acquire().await.unwrap();
                    insert_event(&mut conn, &format!("w{writer}-{i:02}")).await;
                }
            })
        })
        .collect();
    for writer in writers {
        writer.await.unwrap();
    }
    let last: i64 = sqlx::query_scalar("SELECT max(global_position) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    let tx: i64 =
        sqlx::query_scalar("SELECT transaction_id::text::bigint FROM events WHERE global_position = $1")
            .bind(last)
            .fetch_one(&pool)
            .await
            .unwrap();
    let position = espace_famille_projections::store::Position {
        transaction_id: tx,
        global_position: last,
    };
    // Every event is committed, so the checkpoint must pass the last one.
    let mut all_in = false;
    for _ in 0..100 {
        if recorded(&pool).await.len() == 200 {
            all_in = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(all_in, "the engines did not apply the 200 events in 5 s");
    let checkpoints = engine::Checkpoints::watch(pool.clone());
    assert!(
        checkpoints
            .wait_for(position, &["recorder"], Duration::from_secs(1))
            .await,
        "the watched checkpoint reaches the last event"
    );
    let beyond = espace_famille_projections::store::Position {
        global_position: position.global_position + 1,
        ..position
    };
    assert!(
        !checkpoints
            .wait_for(beyond, &["recorder"], Duration::from_millis(100))
            .await,
        "nor does it claim an event that does not exist"
    );

    let runners: Vec<String> = sqlx::query_scalar("SELECT DISTINCT runner FROM recorded")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(runners.len(), 1, "one runner was active, got {runners:?}");
    first.shutdown().await;
    second.shutdown().await;
}

#[tokio::test]
async fn a_standby_runner_takes_over_when_the_active_one_stops() {
    let pool = setup().await;
    let config = EngineConfig {
        batch_size: 100,
        poll_interval: Duration::from_millis(20),
        standby_interval: Duration::from_millis(20),
    };
    let first = start_recorder(&pool, "a", config.clone()).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let second = start_recorder(&pool, "b", config).await;
    insert_event(&mut pool.acquire().await.unwrap(), "before").await;
    wait_until_recorded(&pool, 1).await;
    first.shutdown().await;
    insert_event(&mut pool.acquire().await.unwrap(), "after").await;
    wait_until_recorded(&pool, 2).await;
    let runners: Vec<(String, String)> =
        sqlx::query_as("SELECT aggregate_id, runner FROM recorded ORDER BY aggregate_id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        runners,
        vec![
            ("after".to_string(), "b".to_string()),
            ("before".to_string(), "a".to_string())
        ]
    );
    second.shutdown().await;
}

#[tokio::test]
async fn a_runner_wakes_on_an_announcement_from_any_process_not_on_the_insert() {
    let (pool, engine) = leading_recorder_woken_only_by_announcements().await;

    insert_event(&mut pool.acquire().await.unwrap(), "second").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        recorded(&pool).await,
        vec!["first"],
        "an insert alone wakes nobody"
    );

    // As another process would: its own announcer, its own connection.
    let announcer = engine::Announcer::start(pool.clone());
    announcer.announce(&[]);
    wait_until_recorded(&pool, 2).await;
    assert_eq!(recorded(&pool).await, vec!["first", "second"]);
    engine.shutdown().await;
}

#[tokio::test]
async fn a_runner_that_stopped_short_of_a_held_back_event_applies_it_without_another_announcement() {
    let (pool, engine) = leading_recorder_woken_only_by_announcements().await;

    // "fast" commits behind a transaction still open ("slow"), so the
    // batch its announcement starts can go past "early" only.
    insert_event(&mut pool.acquire().await.unwrap(), "early").await;
    let mut slow = pool.begin().await.unwrap();
    insert_event(&mut slow, "slow").await;
    insert_event(&mut pool.acquire().await.unwrap(), "fast").await;
    engine::Announcer::start(pool.clone()).announce(&["Test"]);
    wait_until_recorded(&pool, 2).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(recorded(&pool).await, vec!["early", "first"]);

    // Once "slow" commits, with no announcement of its own, the runner
    // still takes both: it knew committed events were waiting.
    slow.commit().await.unwrap();
    wait_until_recorded(&pool, 4).await;
    assert_eq!(recorded(&pool).await, vec!["early", "fast", "first", "slow"]);
    engine.shutdown().await;
}

#[tokio::test]
async fn an_announcement_wakes_only_the_groups_that_read_its_aggregate_types() {
    let pool = setup().await;
    sqlx::query(
        "CREATE TABLE picked (event_id uuid PRIMARY KEY, aggregate_id text NOT NULL, with_metadata bool NOT NULL)",
    )
    .execute(&pool)
    .await
    .unwrap();
    let config = woken_only_by_announcements();
    // Applied by both runners' first batches, which they run on start: once
    // it is in, each runner has run and waits to be woken.
    insert_typed(&pool, "Wanted", "w0").await;
    let groups: Vec<Vec<Arc<dyn Projection>>> =
        vec![vec![Arc::new(Recorder { runner: "a" })], vec![Arc::new(Picky)]];
    let engine = engine::start(pool.clone(), groups, config).await.unwrap();
    wait_until_recorded(&pool, 1).await;
    let announcer = engine::Announcer::start(pool.clone());
    let position_of = |stream: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT global_position FROM events WHERE aggregate_id = $1")
                .bind(stream)
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    let picky_reaches = |position: i64| {
        let pool = pool.clone();
        async move {
            for _ in 0..200 {
                if checkpoint_of(&pool, "picky").await >= position {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            false
        }
    };

    assert!(picky_reaches(position_of("w0").await).await);

    // Events of a type the picky group does not read: only the recorder's
    // runner wakes.
    insert_typed(&pool, "Test", "t1").await;
    announcer.announce(&["Test"]);
    wait_until_recorded(&pool, 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        checkpoint_of(&pool, "picky").await < position_of("t1").await,
        "the picky runner was woken for events it does not read"
    );

    // Its own type, merged with another into one announcement: it wakes,
    // and goes past the other event on the way.
    insert_typed(&pool, "Wanted", "w1").await;
    announcer.announce(&["Test", "Wanted"]);
    assert!(picky_reaches(position_of("w1").await).await);
    assert_eq!(picked(&pool).await, ["w0", "w1"]);

    // An announcement naming no type concerns every runner.
    insert_typed(&pool, "Test", "t2").await;
    announcer.announce(&[]);
    assert!(picky_reaches(position_of("t2").await).await);
    wait_until_recorded(&pool, 4).await;
    engine.shutdown().await;
}

/// What `Picky` applied, by stream.
async fn picked(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar("SELECT aggregate_id FROM picked ORDER BY aggregate_id")
        .fetch_all(pool)
        .await
        .unwrap()
}

async fn wait_until_recorded(pool: &PgPool, count: usize) {
    for _ in 0..200 {
        if recorded(pool).await.len() >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("{count} events were not recorded in 5 s");
}

#[tokio::test]
async fn a_rebuild_from_zero_matches_the_live_read_model_and_repairs_a_damaged_one() {
    let pool = setup().await;
    let recorder = Recorder { runner: "a" };
    for i in 0..30 {
        insert_event(&mut pool.acquire().await.unwrap(), &format!("e{i:02}")).await;
    }
    engine::catch_up(&pool, &recorder, 8).await.unwrap();

    let rebuild = engine::rebuild(&pool, &[&recorder]).await.unwrap();
    assert_eq!(rebuild.events, 30);
    assert!(rebuild.reports[0].matched_live);
    // The rebuilt table has the live one's indexes, under their names.
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' AND tablename = 'recorded' ORDER BY indexname",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(indexes.len(), 2, "{indexes:?}");
    assert_eq!(
        indexes[0],
        "CREATE INDEX recorded_by_runner ON public.recorded USING btree (runner, aggregate_id)"
    );
    assert!(
        indexes[1].starts_with("CREATE UNIQUE INDEX recorded_pkey ON public.recorded"),
        "{indexes:?}"
    );

    sqlx::query("DELETE FROM recorded WHERE aggregate_id = 'e07'")
        .execute(&pool)
        .await
        .unwrap();
    // Compared without a swap: the missing row is reported by its key,
    // and nothing live changes.
    let compared = engine::replay(&pool, &[&recorder], 8, engine::Then::Discard, |_| {})
        .await
        .unwrap();
    let report = &compared.reports[0];
    assert!(!report.matched_live && !report.swapped);
    assert_eq!(report.comparison.differing_rows, 1);
    let missing = &report.comparison.differences[0];
    assert_eq!(missing.table, "recorded");
    let key = missing.key.as_ref().unwrap();
    assert_eq!(key.len(), 1);
    assert_eq!(key[0].0, "event_id");
    assert!(missing.live.is_none());
    let rebuilt = missing.rebuilt.as_ref().unwrap();
    assert_eq!(rebuilt["aggregate_id"], "e07");
    assert_eq!(rebuilt["event_id"], key[0].1.as_str());
    assert_eq!(recorded(&pool).await.len(), 29, "nothing live changed");
    let rebuild = engine::rebuild(&pool, &[&recorder]).await.unwrap();
    assert!(
        !rebuild.reports[0].matched_live,
        "the missing row must be detected"
    );
    assert_eq!(recorded(&pool).await.len(), 30, "the rebuild restored the row");

    // A changed row and a row no event made are found as well.
    sqlx::query("UPDATE recorded SET runner = 'tampered' WHERE aggregate_id = 'e11'")
        .execute(&pool)
        .await
        .unwrap();
    let rebuild = engine::rebuild(&pool, &[&recorder]).await.unwrap();
    assert!(
        !rebuild.reports[0].matched_live,
        "the changed row must be detected"
    );
    let changed = &rebuild.reports[0].comparison.differences;
    assert_eq!(changed.len(), 1);
    assert_eq!(
        changed[0].columns(),
        [(
            "runner",
            Some(&serde_json::json!("tampered")),
            Some(&serde_json::json!("a"))
        )],
        "only the column that differs, live then rebuilt"
    );
    sqlx::query("INSERT INTO recorded VALUES (gen_random_uuid(), 'invented', 'a')")
        .execute(&pool)
        .await
        .unwrap();
    let rebuild = engine::rebuild(&pool, &[&recorder]).await.unwrap();
    assert!(!rebuild.reports[0].matched_live, "the extra row must be detected");
    let runners: Vec<String> = sqlx::query_scalar("SELECT DISTINCT runner FROM recorded")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(runners, ["a"], "the rebuild restored the changed row");
    assert_eq!(recorded(&pool).await.len(), 30, "and dropped the invented one");

    // The live runner carries on from the same checkpoint afterwards.
    insert_event(&mut pool.acquire().await.unwrap(), "later").await;
    assert_eq!(engine::catch_up(&pool, &recorder, 8).await.unwrap(), 1);
    assert_eq!(recorded(&pool).await.len(), 31);

    // Events committed past the live checkpoint are rebuilt too, and the
    // checkpoint moves past them.
    insert_event(&mut pool.acquire().await.unwrap(), "unprojected").await;
    wait_below_horizon(&pool).await;
    let rebuild = engine::rebuild(&pool, &[&recorder]).await.unwrap();
    assert!(rebuild.reports[0].matched_live);
    assert_eq!(rebuild.events, 32);
    assert_eq!(recorded(&pool).await.len(), 32);
    assert_eq!(engine::catch_up(&pool, &recorder, 8).await.unwrap(), 0);
}

/// A second read model with its own table, to run in a group with the
/// recorder.
struct Tally;

#[async_trait]
impl Projection for Tally {
    fn name(&self) -> &'static str {
        "tally"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["tallied"]
    }

    async fn apply(&self, conn: &mut PgConnection, event: &RecordedEvent) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO tallied (event_id, aggregate_id) VALUES ($1, $2)")
            .bind(event.event_id)
            .bind(&event.aggregate_id)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }
}

async fn tallied(pool: &PgPool) -> Vec<String> {
    sqlx::query_scalar("SELECT aggregate_id FROM tallied ORDER BY aggregate_id")
        .fetch_all(pool)
        .await
        .unwrap()
}

async fn group_catch_up(pool: &PgPool, group: &[&dyn Projection]) -> usize {
    let mut total = 0;
    loop {
        match engine::run_group_batch(pool, group, 4).await.unwrap() {
            BatchOutcome::Applied(0) => return total,
            BatchOutcome::Applied(n) | BatchOutcome::Unfinished(n) => total += n,
            // Another test's transaction, open in the same cluster, holds
            // the horizon back for a moment.
            BatchOutcome::HeldBack => tokio::time::sleep(Duration::from_millis(5)).await,
            BatchOutcome::Busy => panic!("no other runner should hold the checkpoints"),
        }
    }
}

#[tokio::test]
async fn a_group_reads_once_and_feeds_each_projection_from_its_own_checkpoint() {
    let pool = setup().await;
    sqlx::query("CREATE TABLE tallied (event_id uuid PRIMARY KEY, aggregate_id text NOT NULL)")
        .execute(&pool)
        .await
        .unwrap();
    engine::register(&pool, &[Arc::new(Tally) as Arc<dyn Projection>])
        .await
        .unwrap();
    let recorder = Recorder { runner: "a" };
    for i in 0..5 {
        insert_event(&mut pool.acquire().await.unwrap(), &format!("e{i:02}")).await;
    }
    // The recorder runs ahead alone...
    assert_eq!(engine::catch_up(&pool, &recorder, 100).await.unwrap(), 5);
    for i in 5..8 {
        insert_event(&mut pool.acquire().await.unwrap(), &format!("e{i:02}")).await;
    }
    // ...then the group reads from the tally's checkpoint, and each applies
    // only what it has not seen (a second application would violate a key).
    let group: [&dyn Projection; 2] = [&recorder, &Tally];
    assert_eq!(group_catch_up(&pool, &group).await, 8);
    assert_eq!(recorded(&pool).await.len(), 8);
    assert_eq!(tallied(&pool).await, recorded(&pool).await);
    assert_eq!(group_catch_up(&pool, &group).await, 0);

    // One pass rebuilds both, each compared at its own live checkpoint:
    // two more events reach the recorder alone, and the tally is damaged.
    for i in 8..10 {
        insert_event(&mut pool.acquire().await.unwrap(), &format!("e{i:02}")).await;
    }
    assert_eq!(engine::catch_up(&pool, &recorder, 100).await.unwrap(), 2);
    sqlx::query("DELETE FROM tallied WHERE aggregate_id = 'e03'")
        .execute(&pool)
        .await
        .unwrap();
    wait_below_horizon(&pool).await;
    let rebuild = engine::rebuild(&pool, &group).await.unwrap();
    assert_eq!(rebuild.reports.len(), 2);
    assert!(
        rebuild.reports[0].matched_live,
        "the recorder matches at its checkpoint"
    );
    assert!(
        !rebuild.reports[1].matched_live,
        "the missing tally row is detected"
    );
    assert_eq!(rebuild.events, 10);
    assert_eq!(
        tallied(&pool).await.len(),
        10,
        "the rebuild restored and completed the tally"
    );
    assert_eq!(recorded(&pool).await.len(), 10);
    assert_eq!(
        group_catch_up(&pool, &group).await,
        0,
        "both checkpoints moved past every event"
    );
}

/// Reads the events of one aggregate type only.
struct Picky;

#[async_trait]
impl Projection for Picky {
    fn name(&self) -> &'static str {
        "picky"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["picked"]
    }

    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        Some(&["Wanted"])
    }

    fn metadata_of(&self) -> Option<&'static [&'static str]> {
        Some(&[])
    }

    async fn apply(&self, conn: &mut PgConnection, event: &RecordedEvent) -> Result<(), StoreError> {
        assert_eq!(event.aggregate_type, "Wanted", "handed an event of another type");
        sqlx::query("INSERT INTO picked (event_id, aggregate_id, with_metadata) VALUES ($1, $2, $3)")
            .bind(event.event_id)
            .bind(&event.aggregate_id)
            .bind(event.metadata.is_some())
            .execute(&mut *conn)
            .await?;
        Ok(())
    }
}

async fn insert_typed(pool: &PgPool, aggregate_type: &str, stream: &str) {
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         VALUES ($1, $2, 1, 'Tested', '1', '{}', '{}')",
    )
    .bind(aggregate_type)
    .bind(stream)
    .execute(pool)
    .await
    .unwrap();
}

async fn checkpoint_of(pool: &PgPool, name: &str) -> i64 {
    sqlx::query_scalar("SELECT last_position FROM projection_checkpoints WHERE name = $1")
        .bind(name)
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_projection_naming_its_aggregate_types_gets_only_those_and_still_moves_past_the_rest() {
    let pool = setup().await;
    sqlx::query(
        "CREATE TABLE picked (event_id uuid PRIMARY KEY, aggregate_id text NOT NULL, with_metadata bool NOT NULL)",
    )
        .execute(&pool)
        .await
        .unwrap();
    engine::register(&pool, &[Arc::new(Picky) as Arc<dyn Projection>])
        .await
        .unwrap();
    for (i, kind) in ["Test", "Wanted", "Test", "Test", "Wanted", "Test", "Test"]
        .iter()
        .enumerate()
    {
        insert_typed(&pool, kind, &format!("e{i}")).await;
    }
    wait_below_horizon(&pool).await;
    let alone: [&dyn Projection; 1] = [&Picky];
    // A batch applies at most its size of the events it reads and then
    // ends, at the last of them; it counts every event it goes past, read
    // or not, and says whether one it reads follows.
    assert_eq!(
        engine::run_group_batch(&pool, &alone, 1).await.unwrap(),
        BatchOutcome::Unfinished(2)
    );
    assert_eq!(picked(&pool).await, ["e1"]);
    assert_eq!(
        engine::run_group_batch(&pool, &alone, 1).await.unwrap(),
        BatchOutcome::Applied(3)
    );
    assert_eq!(picked(&pool).await, ["e1", "e4"]);
    assert_eq!(
        engine::run_group_batch(&pool, &alone, 1).await.unwrap(),
        BatchOutcome::Applied(2)
    );
    let last: i64 = sqlx::query_scalar("SELECT max(global_position) FROM events")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(
        checkpoint_of(&pool, "picky").await,
        last,
        "past the events it does not read"
    );
    assert_eq!(
        engine::run_group_batch(&pool, &alone, 1).await.unwrap(),
        BatchOutcome::Applied(0)
    );

    // Only events it does not read: the checkpoint moves all the same, by
    // up to PASS_OVER batch sizes at once.
    let passed = engine::PASS_OVER as usize + 5;
    for i in 0..passed {
        insert_typed(&pool, "Test", &format!("passed{i}")).await;
    }
    wait_below_horizon(&pool).await;
    assert_eq!(
        engine::run_group_batch(&pool, &alone, 1).await.unwrap(),
        BatchOutcome::Applied(engine::PASS_OVER as usize)
    );
    assert_eq!(
        engine::run_group_batch(&pool, &alone, 1).await.unwrap(),
        BatchOutcome::Applied(5)
    );
    assert_eq!(picked(&pool).await, ["e1", "e4"]);
    assert_eq!(checkpoint_of(&pool, "picky").await, last + passed as i64);

    // Beside a projection that reads everything, the group reads every
    // event, and each is handed its own.
    insert_typed(&pool, "Wanted", "e9").await;
    insert_typed(&pool, "Test", "e10").await;
    wait_below_horizon(&pool).await;
    let recorder = Recorder { runner: "a" };
    let mixed: [&dyn Projection; 2] = [&recorder, &Picky];
    assert_eq!(
        group_catch_up(&pool, &mixed).await,
        9 + passed,
        "the recorder starts from zero"
    );
    assert_eq!(recorded(&pool).await.len(), 9 + passed);
    assert_eq!(picked(&pool).await, ["e1", "e4", "e9"]);

    // Alone, it read no metadata (it names none); beside the recorder,
    // which reads every event's, the group read it.
    let with_metadata: Vec<(String, bool)> =
        sqlx::query_as("SELECT aggregate_id, with_metadata FROM picked ORDER BY aggregate_id")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(
        with_metadata,
        [("e1".into(), false), ("e4".into(), false), ("e9".into(), true)]
    );
}

/// Keeps each event's payload as `json`, a type without a hash, in a
/// table without a key.
struct Noted;

#[async_trait]
impl Projection for Noted {
    fn name(&self) -> &'static str {
        "noted"
    }

    fn tables(&self) -> &'static [&'static str] {
        &["noted"]
    }

    async fn apply(&self, conn: &mut PgConnection, event: &RecordedEvent) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO noted (aggregate_id, payload) VALUES ($1, $2::json)")
            .bind(&event.aggregate_id)
            .bind(&event.payload)
            .execute(&mut *conn)
            .await?;
        Ok(())
    }
}

#[tokio::test]
async fn a_rebuild_compares_tables_whose_rows_cannot_be_hashed_row_by_row() {
    let pool = setup().await;
    sqlx::query("CREATE TABLE noted (aggregate_id text NOT NULL, payload json NOT NULL)")
        .execute(&pool)
        .await
        .unwrap();
    engine::register(&pool, &[Arc::new(Noted) as Arc<dyn Projection>])
        .await
        .unwrap();
    for i in 0..6 {
        insert_event(&mut pool.acquire().await.unwrap(), &format!("e{i:02}")).await;
    }
    assert_eq!(engine::catch_up(&pool, &Noted, 100).await.unwrap(), 6);
    wait_below_horizon(&pool).await;
    let rebuild = engine::rebuild(&pool, &[&Noted]).await.unwrap();
    assert!(rebuild.reports[0].matched_live);

    // A row doubled in the live table is a difference, and the rebuild
    // leaves one.
    sqlx::query("INSERT INTO noted SELECT * FROM noted WHERE aggregate_id = 'e02'")
        .execute(&pool)
        .await
        .unwrap();
    let rebuild = engine::rebuild(&pool, &[&Noted]).await.unwrap();
    assert!(
        !rebuild.reports[0].matched_live,
        "the doubled row must be detected"
    );
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM noted")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 6);

    sqlx::query("UPDATE noted SET payload = '{\"changed\": true}' WHERE aggregate_id = 'e04'")
        .execute(&pool)
        .await
        .unwrap();
    let rebuild = engine::rebuild(&pool, &[&Noted]).await.unwrap();
    assert!(
        !rebuild.reports[0].matched_live,
        "the changed row must be detected"
    );
    let rebuild = engine::rebuild(&pool, &[&Noted]).await.unwrap();
    assert!(rebuild.reports[0].matched_live, "and the rebuild restored it");
}

/// Twelve events applied live, then `unreadable` after them; a rebuild in
/// batches of five must fail with the reader's error and change nothing:
/// the live table, no shadow schema left. Returns the error.
async fn rebuild_stopped_by(unreadable: &str, key: Option<&[u8]>) -> StoreError {
    let pool = setup().await;
    let recorder = Recorder { runner: "a" };
    for i in 0..12 {
        insert_event(&mut pool.acquire().await.unwrap(), &format!("e{i:02}")).await;
    }
    engine::catch_up(&pool, &recorder, 100).await.unwrap();
    if let Some(key) = key {
        sqlx::query("INSERT INTO family_keys (family_id, key) VALUES ($1::uuid, $2)")
            .bind(unreadable)
            .bind(key)
            .execute(&pool)
            .await
            .unwrap();
    }
    sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         VALUES ('Family', $1, 1, 'Tested', '1', '{\"name\": {\"sealed\": \"AAAA\"}}', '{}')",
    )
    .bind(unreadable)
    .execute(&pool)
    .await
    .unwrap();
    wait_below_horizon(&pool).await;

    let error = engine::rebuild_in_batches(&pool, &[&recorder], 5)
        .await
        .expect_err("an event that cannot be read stops the rebuild");
    assert_eq!(
        recorded(&pool).await.len(),
        12,
        "the live read model is untouched"
    );
    let schemas: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'rebuild_%'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(schemas, 0, "nothing of the rebuild is left");
    error
}

#[tokio::test]
async fn a_rebuild_stops_on_an_event_the_store_cannot_read_or_decode_and_changes_nothing() {
    // The server refuses the read: a family stream whose id is no UUID.
    let refused = rebuild_stopped_by("not-a-family", None).await;
    assert!(matches!(refused, StoreError::Database(_)), "{refused:?}");
    // The read succeeds and decoding fails: a sealed value its family's key
    // cannot open.
    let family = uuid::Uuid::new_v4().to_string();
    let undecodable = rebuild_stopped_by(&family, Some(&[7; 32])).await;
    assert!(matches!(undecodable, StoreError::Corrupt(_)), "{undecodable:?}");
}

/// A connection to a database of its own on the same server, inside a
/// transaction that has written (so it holds a transaction id, and the
/// server-wide horizon with it).
async fn open_writer_elsewhere() -> sqlx::Transaction<'static, sqlx::Postgres> {
    let (other, _) = fresh_database().await;
    let mut open = other.begin().await.unwrap();
    sqlx::query("CREATE TABLE report (n int)")
        .execute(&mut *open)
        .await
        .unwrap();
    sqlx::query("INSERT INTO report VALUES (1)")
        .execute(&mut *open)
        .await
        .unwrap();
    open
}

#[tokio::test]
async fn a_transaction_left_open_in_another_database_holds_no_projection_back() {
    let pool = setup().await;
    let open = open_writer_elsewhere().await;
    insert_event(&mut pool.acquire().await.unwrap(), "after").await;
    let started = std::time::Instant::now();
    let engine = start_recorder(&pool, "a", woken_only_by_announcements()).await;
    wait_until_recorded(&pool, 1).await;
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "applied after {:?}",
        started.elapsed()
    );
    // And on, while it stays open.
    insert_event(&mut pool.acquire().await.unwrap(), "later").await;
    engine::Announcer::start(pool.clone()).announce(&[]);
    wait_until_recorded(&pool, 2).await;
    open.rollback().await.unwrap();
    engine.shutdown().await;
}

#[tokio::test]
async fn a_transaction_here_that_writes_no_event_holds_no_projection_back_and_cannot_write_one_later() {
    let pool = setup().await;
    sqlx::query("CREATE TABLE scratch (n int)")
        .execute(&pool)
        .await
        .unwrap();
    let mut open = pool.begin().await.unwrap();
    sqlx::query("INSERT INTO scratch VALUES (1)")
        .execute(&mut *open)
        .await
        .unwrap();
    insert_event(&mut pool.acquire().await.unwrap(), "after").await;
    let recorder = Recorder { runner: "a" };
    let started = std::time::Instant::now();
    assert_eq!(engine::catch_up(&pool, &recorder, 100).await.unwrap(), 1);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(recorded(&pool).await, ["after"]);
    // The projections moved past it: an event it wrote now would land
    // below them, so it is refused, as a lost race (40001), and nothing
    // is written.
    let refused = sqlx::query(
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         VALUES ('Test', 'too-old', 1, 'Tested', '1', '{}', '{}')",
    )
    .execute(&mut *open)
    .await
    .unwrap_err();
    let code = refused
        .as_database_error()
        .and_then(|e| e.code())
        .map(|c| c.to_string());
    assert_eq!(code.as_deref(), Some("40001"), "{refused}");
    assert!(matches!(
        espace_famille_projections::store::conflict_or_database(refused),
        StoreError::Conflict
    ));
    open.rollback().await.unwrap();
    // A new transaction writes it, and it is applied once.
    insert_event(&mut pool.acquire().await.unwrap(), "too-old").await;
    assert_eq!(engine::catch_up(&pool, &recorder, 100).await.unwrap(), 1);
    assert_eq!(recorded(&pool).await, ["after", "too-old"]);
}
