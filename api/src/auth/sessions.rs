//! Sessions kept in memory between requests.
//!
//! Every request names its session, and most are sent by the same few
//! thousand sessions again and again (a parent's calendar, an agent's run
//! of approvals). Looking each one up costs a round trip and a join of
//! three tables; this server keeps what it read, keyed by the token's hash.
//!
//! A kept session is never served after it changed in the database for
//! longer than a notification takes: every change to a session, an account
//! or a grant notifies `sessions_changed` with the account's id (triggers,
//! so no writer can forget), and each server drops that account's sessions
//! when it hears it. The server that revokes a session drops it at once.
//! Three more guards:
//!
//! - a session read while a notification arrived is not kept: the read may
//!   have seen the state before the change (a generation counter);
//! - nothing is kept while the server is not listening (at start, after a
//!   lost connection, whose notifications are lost too): the cache is
//!   emptied and refilled only once `LISTEN` is back;
//! - a kept session is read again after [`RECHECK_AFTER`], and never
//!   served past its expiry.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sqlx::postgres::PgListener;
use sqlx::PgPool;
use tokio::sync::watch;
use uuid::Uuid;

use crate::auth::accounts::{self, Account};
use crate::auth::identity::Identity;
use crate::error::ApiError;

/// The channel the triggers notify, with the account's id.
pub const SESSIONS_CHANNEL: &str = "sessions_changed";

/// The longest a kept session is served without being read again, even
/// with no notification.
pub const RECHECK_AFTER: Duration = Duration::from_secs(60);

/// The most sessions kept; beyond, an arbitrary one makes room.
const CAPACITY: usize = 50_000;

type TokenHash = [u8; 32];

struct Kept {
    identity: Arc<Identity>,
    expires_at: DateTime<Utc>,
    read_at: Instant,
}

/// The sessions this server keeps, and whether it may keep any.
pub struct Sessions {
    pool: PgPool,
    kept: Mutex<HashMap<TokenHash, Kept>>,
    /// Bumped by every change heard (and every loss of the listener): a
    /// read that started before may not be kept.
    generation: AtomicU64,
    listening: AtomicBool,
    stop: watch::Sender<bool>,
}

/// Where a read of the database started, to keep what it read only if no
/// change was heard since.
#[derive(Debug, Clone, Copy)]
pub struct ReadStart(u64);

impl Sessions {
    /// Keeps sessions for this pool's database, listening for changes
    /// until dropped.
    pub fn start(pool: PgPool) -> Arc<Sessions> {
        let (stop, stopped) = watch::channel(false);
        let sessions = Arc::new(Sessions {
            pool: pool.clone(),
            kept: Mutex::new(HashMap::new()),
            generation: AtomicU64::new(0),
            listening: AtomicBool::new(false),
            stop,
        });
        tokio::spawn(listen(Arc::downgrade(&sessions), pool, stopped));
        sessions
    }

    /// The identity behind a bearer token, if its session is live.
    pub async fn identity(&self, token: &str) -> Result<Option<Arc<Identity>>, ApiError> {
        let hash = hash_of(token);
        if let Some(identity) = self.kept(&hash) {
            return Ok(Some(identity));
        }
        let start = self.read_start();
        let Some((account, expires_at)) = accounts::session_account(&self.pool, token).await? else {
            return Ok(None);
        };
        Ok(Some(self.keep(start, hash, account, expires_at)))
    }

    /// Marks the start of a read whose session may be kept (a login).
    pub fn read_start(&self) -> ReadStart {
        ReadStart(self.generation.load(Ordering::SeqCst))
    }

    /// Keeps a session read since `start`, unless a change was heard in
    /// between or the server is not listening; returns its identity.
    pub fn keep(
        &self,
        start: ReadStart,
        token_hash: TokenHash,
        account: Account,
        expires_at: DateTime<Utc>,
    ) -> Arc<Identity> {
        let identity = Arc::new(Identity::from(account));
        let mut kept = self.lock();
        // Checked under the lock that `forget_account` takes: a change
        // heard after this check finds the entry and drops it.
        if self.listening.load(Ordering::SeqCst) && self.generation.load(Ordering::SeqCst) == start.0 {
            if kept.len() >= CAPACITY && !kept.contains_key(&token_hash) {
                let now = Utc::now();
                kept.retain(|_, k| k.expires_at > now);
                if kept.len() >= CAPACITY {
                    if let Some(victim) = kept.keys().next().copied() {
                        kept.remove(&victim);
                    }
                }
            }
            kept.insert(
                token_hash,
                Kept {
                    identity: identity.clone(),
                    expires_at,
                    read_at: Instant::now(),
                },
            );
        }
        identity
    }

    /// Drops one session (revoked by this server).
    pub fn forget_token(&self, token: &str) {
        self.lock().remove(&hash_of(token));
    }

    /// How many sessions are kept.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether this server hears changes, and so keeps sessions.
    pub fn is_listening(&self) -> bool {
        self.listening.load(Ordering::SeqCst)
    }

    fn kept(&self, hash: &TokenHash) -> Option<Arc<Identity>> {
        let mut kept = self.lock();
        let entry = kept.get(hash)?;
        if entry.expires_at > Utc::now() && entry.read_at.elapsed() < RECHECK_AFTER {
            return Some(entry.identity.clone());
        }
        kept.remove(hash);
        None
    }

    /// Drops every session of an account whose sessions or grants
    /// changed (through this server; the others hear it).
    pub fn forget_account(&self, account_id: Uuid) {
        let mut kept = self.lock();
        self.generation.fetch_add(1, Ordering::SeqCst);
        kept.retain(|_, k| k.identity.account_id != account_id);
    }

    /// Not listening: nothing heard can be trusted to be complete.
    fn forget_all(&self, listening: bool) {
        let mut kept = self.lock();
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.listening.store(listening, Ordering::SeqCst);
        kept.clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TokenHash, Kept>> {
        self.kept.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Sessions {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

/// The key a session is kept under: the SHA-256 the database stores.
pub fn hash_of(token: &str) -> TokenHash {
    let mut hash = [0u8; 32];
    hash.copy_from_slice(&accounts::token_hash(token));
    hash
}

/// Hears `sessions_changed` and drops what changed; on any trouble stops
/// keeping sessions until listening again.
async fn listen(sessions: std::sync::Weak<Sessions>, pool: PgPool, mut stopped: watch::Receiver<bool>) {
    loop {
        let listener = async {
            let mut listener = PgListener::connect_with(&pool).await?;
            listener.listen(SESSIONS_CHANNEL).await?;
            Ok::<_, sqlx::Error>(listener)
        };
        let mut listener = tokio::select! {
            listener = listener => listener,
            _ = stopped.changed() => return,
        };
        match listener.as_mut() {
            Ok(_) => match sessions.upgrade() {
                // Whatever changed before `LISTEN` was not heard.
                Some(sessions) => sessions.forget_all(true),
                None => return,
            },
            Err(error) => tracing::warn!(%error, "cannot listen for session changes; sessions are not kept"),
        }
        if let Ok(listener) = listener.as_mut() {
            loop {
                let heard = tokio::select! {
                    heard = listener.try_recv() => heard,
                    _ = stopped.changed() => return,
                };
                let Some(sessions) = sessions.upgrade() else {
                    return;
                };
                match heard {
                    Ok(Some(notification)) => match notification.payload().parse::<Uuid>() {
                        Ok(account_id) => sessions.forget_account(account_id),
                        Err(_) => sessions.forget_all(true),
                    },
                    // The connection was lost, and what was sent meanwhile.
                    Ok(None) | Err(_) => {
                        sessions.forget_all(false);
                        break;
                    }
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
            _ = stopped.changed() => return,
        }
    }
}
