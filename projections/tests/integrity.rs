//! Tamper evidence: a store edited, rehashed, cut, reordered or added to by
//! hand, with the triggers disabled as a superuser can, is reported event
//! by event; an untouched one verifies clean.

use espace_famille_domain::reservation::Reservation;
use espace_famille_projections::store::integrity::{self, Finding, Seal, Tampering, Verification};
use espace_famille_projections::store::{append, StreamAppend};
use espace_famille_projections::testing::{agent_metadata, fresh_database, requested, wait_below_horizon};
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

const STREAMS: usize = 6;
const SEALED_EVENTS: usize = 4;
/// Every event of `store()`.
const EVENTS: usize = STREAMS * (SEALED_EVENTS + 1) + 1;

/// Appends one event to each stream, in a transaction of its own.
async fn write_round(pool: &PgPool, version: usize) {
    let mut tx = pool.begin().await.unwrap();
    let streams: Vec<StreamAppend> = (0..STREAMS)
        .map(|n| StreamAppend::new::<Reservation>(stream(n), version, &[requested(n as u128)]).unwrap())
        .collect();
    append(&mut tx, &streams, &agent_metadata("agent-1"))
        .await
        .unwrap();
    tx.commit().await.unwrap();
}

fn stream(n: usize) -> String {
    format!("stream-{n}")
}

/// Streams of `SEALED_EVENTS` events each, and one of a single event
/// written first, sealed; then one more unsealed event for each of the
/// first.
async fn store() -> (PgPool, String) {
    let (pool, url) = fresh_database().await;
    let mut tx = pool.begin().await.unwrap();
    let short = StreamAppend::new::<Reservation>("stream-short".into(), 0, &[requested(77)]).unwrap();
    append(&mut tx, &[short], &agent_metadata("agent-1"))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    for version in 0..SEALED_EVENTS {
        write_round(&pool, version).await;
    }
    wait_below_horizon(&pool).await;
    integrity::seal(&pool).await.unwrap().expect("a seal");
    write_round(&pool, SEALED_EVENTS).await;
    (pool, url)
}

/// Runs `sql` as a superuser with every trigger of the session disabled.
async fn tamper(url: &str, sql: &str) {
    let mut conn = PgConnection::connect(url).await.unwrap();
    sqlx::raw_sql(&format!("SET session_replication_role = replica; {sql}"))
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
}

async fn event_id(pool: &PgPool, n: usize, sequence: i64) -> Uuid {
    sqlx::query_scalar("SELECT event_id FROM events WHERE aggregate_id = $1 AND sequence = $2")
        .bind(stream(n))
        .bind(sequence)
        .fetch_one(pool)
        .await
        .unwrap()
}

async fn verify(pool: &PgPool, kept: &[Seal]) -> Verification {
    integrity::verify(pool, kept, |_| {}).await.unwrap()
}

fn kinds(verification: &Verification) -> Vec<Tampering> {
    verification.findings.iter().map(|f| f.tampering).collect()
}

fn found(verification: &Verification, tampering: Tampering, event: Uuid) -> &Finding {
    verification
        .findings
        .iter()
        .find(|f| f.tampering == tampering && f.event_id == Some(event))
        .unwrap_or_else(|| panic!("no {tampering:?} of {event} in {:#?}", verification.findings))
}

#[tokio::test]
async fn an_untouched_store_verifies_clean_and_events_are_chained_by_the_database() {
    let (pool, _) = store().await;
    let verification = verify(&pool, &integrity::seals(&pool, 0).await.unwrap()).await;
    assert!(verification.clean(), "{:#?}", verification.findings);
    assert_eq!(verification.events, EVENTS as u64);
    assert_eq!(verification.streams, STREAMS as u64 + 1);
    assert_eq!(verification.seals, 1);
    assert_eq!(verification.unsealed, STREAMS as u64);

    let unchained: i64 = sqlx::query_scalar("SELECT count(*) FROM events WHERE chain_hash IS NULL")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(unchained, 0, "the insert trigger chains every event");
    // The database refuses an event that follows none.
    let mut tx = pool.begin().await.unwrap();
    let orphan = StreamAppend::new::<Reservation>("stream-orphan".into(), 4, &[requested(99)]).unwrap();
    let refused = append(&mut tx, &[orphan], &agent_metadata("agent-1")).await;
    assert!(refused.is_err(), "an event with no predecessor was stored");

    // A second seal covers only what came after the first.
    wait_below_horizon(&pool).await;
    let second = integrity::seal(&pool).await.unwrap().expect("a second seal");
    assert_eq!(second.seal, 2);
    assert_eq!(second.events, STREAMS as i64);
    assert_eq!(second.total_events, EVENTS as i64);
    assert!(
        integrity::seal(&pool).await.unwrap().is_none(),
        "nothing new to seal"
    );
    assert!(verify(&pool, &[]).await.clean());
}

#[tokio::test]
async fn an_edited_event_is_reported_with_its_stream_sequence_and_id() {
    let (pool, url) = store().await;
    let edited = event_id(&pool, 2, 2).await;
    tamper(
        &url,
        "UPDATE events SET payload = replace(payload::text, '2027-01-04', '2027-01-05')::json
         WHERE aggregate_id = 'stream-2' AND sequence = 2",
    )
    .await;
    let verification = verify(&pool, &[]).await;
    assert_eq!(kinds(&verification), vec![Tampering::Edited]);
    let finding = found(&verification, Tampering::Edited, edited);
    assert_eq!(finding.stream.as_deref(), Some("Reservation/stream-2"));
    assert_eq!(finding.sequence, Some(2));
}

#[tokio::test]
async fn an_edited_event_rehashed_breaks_the_next_link_and_the_seal() {
    let (pool, url) = store().await;
    tamper(
        &url,
        "UPDATE events SET payload = replace(payload::text, '2027-01-04', '2027-01-05')::json
         WHERE aggregate_id = 'stream-1' AND sequence = 3;
         UPDATE events e SET content_hash = events_content_hash(e)
         WHERE aggregate_id = 'stream-1' AND sequence = 3;
         UPDATE events e SET chain_hash = events_link(
             (SELECT p.chain_hash FROM events p WHERE p.aggregate_id = e.aggregate_id AND p.sequence = 2), e)
         WHERE aggregate_id = 'stream-1' AND sequence = 3",
    )
    .await;
    let verification = verify(&pool, &[]).await;
    let next = event_id(&pool, 1, 4).await;
    assert_eq!(found(&verification, Tampering::Unlinked, next).sequence, Some(4));
    assert!(
        kinds(&verification).contains(&Tampering::SealBroken),
        "{:#?}",
        verification.findings
    );
}

#[tokio::test]
async fn a_deleted_event_is_reported_in_the_middle_of_a_stream_and_at_its_sealed_end() {
    let (pool, url) = store().await;
    let after_gap = event_id(&pool, 3, 3).await;
    let sealed_last = event_id(&pool, 4, SEALED_EVENTS as i64).await;
    tamper(
        &url,
        &format!(
            "DELETE FROM events WHERE aggregate_id = 'stream-3' AND sequence = 2;
             DELETE FROM events WHERE aggregate_id = 'stream-4' AND sequence >= {SEALED_EVENTS}"
        ),
    )
    .await;
    let verification = verify(&pool, &[]).await;
    let gap = found(&verification, Tampering::Deleted, after_gap);
    assert!(gap.detail.contains("events 2 to 2 are missing"), "{}", gap.detail);
    let gone = found(&verification, Tampering::SealedEventGone, sealed_last);
    assert_eq!(gone.stream.as_deref(), Some("Reservation/stream-4"));
    assert_eq!(gone.seal, Some(1));
    assert!(kinds(&verification).contains(&Tampering::SealBroken));
    assert_eq!(verification.events, EVENTS as u64 - 3);
}

#[tokio::test]
async fn reordered_events_are_reported() {
    let (pool, url) = store().await;
    let second = event_id(&pool, 0, 2).await;
    let third = event_id(&pool, 0, 3).await;
    tamper(
        &url,
        "UPDATE events SET sequence = 1000 WHERE aggregate_id = 'stream-0' AND sequence = 2;
         UPDATE events SET sequence = 2 WHERE aggregate_id = 'stream-0' AND sequence = 3;
         UPDATE events SET sequence = 3 WHERE aggregate_id = 'stream-0' AND sequence = 1000",
    )
    .await;
    let verification = verify(&pool, &[]).await;
    // The event that was second now reads third, before the other in
    // commit order.
    let reordered = found(&verification, Tampering::Reordered, second);
    assert_eq!(reordered.sequence, Some(3));
    found(&verification, Tampering::Edited, third);
    // Nothing outside the stream is reported.
    assert!(
        verification
            .findings
            .iter()
            .all(|f| f.stream.as_deref() == Some("Reservation/stream-0")),
        "{:#?}",
        verification.findings
    );
}

#[tokio::test]
async fn an_event_inserted_by_hand_is_reported_with_or_without_forged_hashes() {
    let (pool, url) = store().await;
    // Without hashes: written around the trigger.
    tamper(
        &url,
        "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata)
         SELECT aggregate_type, aggregate_id, 99, event_type, event_version, payload, metadata
         FROM events WHERE aggregate_id = 'stream-5' AND sequence = 1",
    )
    .await;
    // With every hash forged right, after the last event of a stream,
    // inside the sealed range: only the seal can tell.
    let sealed: Seal = integrity::seals(&pool, 0).await.unwrap().remove(0);
    tamper(
        &url,
        &format!(
            "INSERT INTO events (aggregate_type, aggregate_id, sequence, event_type, event_version, payload, metadata,
                                 global_position, transaction_id)
             OVERRIDING SYSTEM VALUE
             SELECT aggregate_type, aggregate_id, 2, event_type, event_version, payload, metadata, 0, '{tx}'::xid8
             FROM events WHERE aggregate_id = 'stream-short' AND sequence = 1;
             UPDATE events e SET content_hash = events_content_hash(e)
             WHERE aggregate_id = 'stream-short' AND sequence = 2;
             UPDATE events e SET chain_hash = events_link(
                 (SELECT p.chain_hash FROM events p WHERE p.aggregate_id = e.aggregate_id AND p.sequence = 1), e)
             WHERE aggregate_id = 'stream-short' AND sequence = 2",
            tx = sealed.up_to.transaction_id,
        ),
    )
    .await;
    let verification = verify(&pool, &[]).await;
    let unhashed =
        sqlx::query_scalar("SELECT event_id FROM events WHERE aggregate_id = 'stream-5' AND sequence = 99")
            .fetch_one(&pool)
            .await
            .unwrap();
    found(&verification, Tampering::Unhashed, unhashed);
    let forged = sqlx::query_scalar(
        "SELECT event_id FROM events WHERE aggregate_id = 'stream-short' AND sequence = 2",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let inserted = found(&verification, Tampering::InsertedInSeal, forged);
    assert_eq!(inserted.seal, Some(1));
    assert!(
        !verification
            .findings
            .iter()
            .any(|f| f.event_id == Some(forged) && f.tampering != Tampering::InsertedInSeal),
        "the forged event's own hashes are right: {:#?}",
        verification.findings
    );
}

#[tokio::test]
async fn a_rewrite_of_the_whole_store_and_its_seals_shows_against_a_copy_kept_elsewhere() {
    let (pool, url) = store().await;
    let kept = integrity::seals(&pool, 0).await.unwrap();
    // Every hash recomputed, in stream order, and the seals made again.
    tamper(
        &url,
        "UPDATE events SET payload = replace(payload::text, '2027-01-04', '2027-01-05')::json
         WHERE aggregate_id = 'stream-1' AND sequence = 1;
         DO $$
         DECLARE e events; previous bytea;
         BEGIN
             FOR e IN SELECT * FROM events WHERE aggregate_id = 'stream-1' ORDER BY sequence LOOP
                 e.content_hash := events_content_hash(e);
                 previous := events_link(previous, e);
                 UPDATE events SET content_hash = e.content_hash, chain_hash = previous
                 WHERE aggregate_id = e.aggregate_id AND sequence = e.sequence;
             END LOOP;
         END $$;
         DELETE FROM event_seal_heads; DELETE FROM event_seals;",
    )
    .await;
    sqlx::query_scalar::<_, Option<i64>>("SELECT events_seal()")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(
        verify(&pool, &[]).await.clean(),
        "a consistent rewrite passes for whoever trusts the store alone"
    );
    let verification = verify(&pool, &kept).await;
    assert_eq!(kinds(&verification), vec![Tampering::SealDiffers]);
    assert_eq!(verification.findings[0].seal, Some(1));
}
