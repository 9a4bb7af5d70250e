//! Sessions kept in memory by each server: kept once read, dropped as soon
//! as the database says a session, its account or its grants changed,
//! whichever process changed them; never served when it cannot be trusted.

use std::time::Duration;

use espace_famille_api::auth::accounts::{self, Grant};
use espace_famille_api::auth::sessions::Sessions;
use serde_json::json;
use uuid::Uuid;

use espace_famille_tests::*;

const ME: &str = "{ me { accountId grants { role scope } } }";

/// Waits (bounded) until `done` holds.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "{what}: not within 5 s");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

async fn roles(sessions: &Sessions, token: &str) -> Option<Vec<Grant>> {
    let identity = sessions.identity(token).await.unwrap()?;
    Some(identity.grants.clone())
}

#[tokio::test]
async fn a_kept_session_is_dropped_when_the_database_changes_it() {
    let app = spawn_app().await;
    let commune = Uuid::new_v4();
    app.create_account("agent@mairie.fr", PASSWORD, &[Grant::Agent(commune)])
        .await;
    let token = app.login("agent@mairie.fr", PASSWORD).await;
    // A second process on the same database, as another server would be.
    let sessions = Sessions::start(app.pool.clone());
    eventually("listening", || sessions.is_listening()).await;

    assert_eq!(roles(&sessions, &token).await, Some(vec![Grant::Agent(commune)]));
    assert_eq!(sessions.len(), 1, "kept once read");
    assert!(sessions.identity("forged").await.unwrap().is_none());
    assert_eq!(sessions.len(), 1, "an unknown token is not kept");

    // A grant added by another process (the command line, another server).
    let other = Uuid::new_v4();
    let mut tx = app.pool.begin().await.unwrap();
    accounts::ensure_account(&mut tx, "agent@mairie.fr", &[Grant::Agent(other)])
        .await
        .unwrap();
    tx.commit().await.unwrap();
    eventually("the new grant heard", || sessions.is_empty()).await;
    let grants = roles(&sessions, &token).await.unwrap();
    assert_eq!(grants.len(), 2, "{grants:?}");
    assert!(grants.contains(&Grant::Agent(commune)) && grants.contains(&Grant::Agent(other)));
    assert_eq!(sessions.len(), 1);

    // Another account's change leaves this session kept.
    app.create_account("autre@mairie.fr", PASSWORD, &[Grant::Agent(commune)])
        .await;
    let theirs = app.login("autre@mairie.fr", PASSWORD).await;
    assert!(roles(&sessions, &theirs).await.is_some());
    assert_eq!(sessions.len(), 2);
    sqlx::query("UPDATE sessions SET revoked_at = now() WHERE token_hash = $1")
        .bind(accounts::token_hash(&theirs))
        .execute(&app.pool)
        .await
        .unwrap();
    eventually("the revocation heard", || sessions.len() == 1).await;
    assert_eq!(roles(&sessions, &theirs).await, None, "revoked");
    assert!(
        roles(&sessions, &token).await.is_some(),
        "the first one still kept"
    );

    // An account deleted: its sessions go with it.
    sqlx::query("DELETE FROM accounts WHERE lower(email) = 'agent@mairie.fr'")
        .execute(&app.pool)
        .await
        .unwrap();
    eventually("the deletion heard", || sessions.is_empty()).await;
    assert_eq!(roles(&sessions, &token).await, None);
    app.stop().await;
}

#[tokio::test]
async fn a_session_read_while_a_change_was_heard_is_not_kept() {
    let app = spawn_app().await;
    app.create_account("agent@mairie.fr", PASSWORD, &[Grant::Agent(Uuid::new_v4())])
        .await;
    let token = app.login("agent@mairie.fr", PASSWORD).await;
    let sessions = Sessions::start(app.pool.clone());
    eventually("listening", || sessions.is_listening()).await;

    // A read starts; a change to some account is heard before it ends.
    let start = sessions.read_start();
    let (account, expires_at) = accounts::session_account(&app.pool, &token)
        .await
        .unwrap()
        .unwrap();
    sessions.forget_account(Uuid::new_v4());
    let identity = sessions.keep(
        start,
        espace_famille_api::auth::sessions::hash_of(&token),
        account,
        expires_at,
    );
    assert_eq!(identity.email, "agent@mairie.fr", "served to this request");
    assert!(sessions.is_empty(), "but not kept: it may predate the change");
    app.stop().await;
}

async fn refused(app: &TestApp, token: &str) -> bool {
    let answer = app.gql(Some(token), ME, json!({})).await;
    answer.0["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
}

/// Waits (bounded) until `app` refuses the token: another server hears of
/// the change by notification.
async fn refused_within_5_s(app: &TestApp, token: &str, which: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !refused(app, token).await {
        assert!(tokio::time::Instant::now() < deadline, "{which} still serves it");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_session_ended_through_one_server_is_refused_by_the_other() {
    let first = spawn_app().await;
    let second = spawn_beside(&first).await;
    let fixture = setup_commune(&first, &future_canteen_days(1)).await;

    // Logout through the first server, after the second kept the session.
    let parent = first.login(&fixture.guardian_email, PASSWORD).await;
    assert!(!refused(&second, &parent).await);
    assert!(!refused(&second, &parent).await, "served from memory");
    first
        .gql(Some(&parent), "mutation { logout }", json!({}))
        .await
        .data("logout");
    assert!(refused(&first, &parent).await, "at once where it ended");
    refused_within_5_s(&second, &parent, "the second server").await;

    // The family erased through the second server: its guardian's session,
    // kept by both, ends on both.
    let parent = second.login(&fixture.guardian_email, PASSWORD).await;
    assert!(!refused(&first, &parent).await);
    assert!(!refused(&second, &parent).await);
    second
        .gql(
            Some(&fixture.agent_token),
            "mutation($f: UUID!) { eraseFamily(familyId: $f) }",
            json!({ "f": fixture.family }),
        )
        .await
        .data("eraseFamily");
    assert!(refused(&second, &parent).await, "at once where it was erased");
    refused_within_5_s(&first, &parent, "the first server").await;
    first.stop().await;
    second.stop().await;
}
