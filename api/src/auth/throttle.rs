//! Rate limits of the mutations, per account and per client address, by
//! class: baskets, the links' tokens (activation, reset, e-mail change)
//! and every other mutation. Logins and password-reset requests have their
//! own limits, counted in the database per e-mail (see `limits`).
//!
//! Counted in this server's memory (governor's keyed GCRA limiters): each
//! server of several counts its own requests, so a commune's limit is
//! this one times its servers.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use uuid::Uuid;

/// What a mutation is counted as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    Basket,
    /// A link's token used: activation, password reset, e-mail change.
    Token,
    Other,
}

impl Class {
    /// The class of a root field of a mutation; `None` for those counted
    /// elsewhere (logins, password-reset requests) or not at all (logout).
    pub fn of(field: &str) -> Option<Class> {
        match field {
            "login" | "requestPasswordReset" | "logout" => None,
            "submitBasket" => Some(Class::Basket),
            "activateAccount" | "resetPassword" | "confirmEmailChange" => Some(Class::Token),
            _ => Some(Class::Other),
        }
    }
}

/// How many mutations of each class a minute, per account and per client
/// address (a token's use is anonymous: per address only).
#[derive(Debug, Clone, Copy)]
pub struct MutationLimits {
    pub baskets_per_account: u32,
    pub baskets_per_address: u32,
    pub tokens_per_address: u32,
    pub others_per_account: u32,
    pub others_per_address: u32,
}

impl Default for MutationLimits {
    fn default() -> Self {
        MutationLimits {
            // A parent's week, corrected a few times; a school's families
            // behind one address at 8:30.
            baskets_per_account: 30,
            baskets_per_address: 1_200,
            tokens_per_address: 10,
            // An agent's roll calls and decisions, one by one.
            others_per_account: 600,
            others_per_address: 3_000,
        }
    }
}

impl MutationLimits {
    /// Every limit times `factor` (at least 1 a minute): the bench's
    /// thousands of parents come from one address.
    pub fn scaled(self, factor: u32) -> MutationLimits {
        let times = |n: u32| n.saturating_mul(factor.max(1));
        MutationLimits {
            baskets_per_account: times(self.baskets_per_account),
            baskets_per_address: times(self.baskets_per_address),
            tokens_per_address: times(self.tokens_per_address),
            others_per_account: times(self.others_per_account),
            others_per_address: times(self.others_per_address),
        }
    }
}

type Keyed<K> = RateLimiter<K, DefaultKeyedStateStore<K>, DefaultClock>;

/// The limiters, one per class and key.
pub struct Throttle {
    baskets_by_account: Keyed<Uuid>,
    baskets_by_address: Keyed<IpAddr>,
    tokens_by_address: Keyed<IpAddr>,
    others_by_account: Keyed<Uuid>,
    others_by_address: Keyed<IpAddr>,
    /// Checks since the keys were last pruned.
    checks: AtomicU32,
}

/// How many checks between two prunings of the keys full again.
const PRUNE_EVERY: u32 = 4_096;

fn per_minute<K: std::hash::Hash + Eq + Clone>(n: u32) -> Keyed<K> {
    RateLimiter::keyed(Quota::per_minute(
        NonZeroU32::new(n.max(1)).expect("at least one"),
    ))
}

impl Throttle {
    pub fn new(limits: MutationLimits) -> Throttle {
        Throttle {
            baskets_by_account: per_minute(limits.baskets_per_account),
            baskets_by_address: per_minute(limits.baskets_per_address),
            tokens_by_address: per_minute(limits.tokens_per_address),
            others_by_account: per_minute(limits.others_per_account),
            others_by_address: per_minute(limits.others_per_address),
            checks: AtomicU32::new(0),
        }
    }

    /// Counts `count` mutations of `class` by `account` (when signed in)
    /// from `address`; when one is over its limit, how long to wait.
    pub fn check(
        &self,
        class: Class,
        account: Option<Uuid>,
        address: IpAddr,
        count: u32,
    ) -> Result<(), Duration> {
        if self.checks.fetch_add(1, Ordering::Relaxed) >= PRUNE_EVERY {
            self.checks.store(0, Ordering::Relaxed);
            self.prune();
        }
        let count = NonZeroU32::new(count.max(1)).expect("at least one");
        let (by_account, by_address) = match class {
            Class::Basket => (Some(&self.baskets_by_account), &self.baskets_by_address),
            Class::Token => (None, &self.tokens_by_address),
            Class::Other => (Some(&self.others_by_account), &self.others_by_address),
        };
        if let (Some(limiter), Some(account)) = (by_account, account) {
            wait(limiter.check_key_n(&account, count))?;
        }
        wait(by_address.check_key_n(&address, count))
    }

    /// Forgets the keys whose counts are full again.
    fn prune(&self) {
        self.baskets_by_account.retain_recent();
        self.baskets_by_address.retain_recent();
        self.tokens_by_address.retain_recent();
        self.others_by_account.retain_recent();
        self.others_by_address.retain_recent();
    }
}

/// How long to wait, from a limiter's answer; asking for more at once than
/// a minute allows waits the minute.
fn wait(
    answer: Result<
        Result<(), governor::NotUntil<<DefaultClock as Clock>::Instant>>,
        governor::InsufficientCapacity,
    >,
) -> Result<(), Duration> {
    match answer {
        Ok(Ok(())) => Ok(()),
        Ok(Err(not_until)) => Err(not_until.wait_time_from(DefaultClock::default().now())),
        Err(_) => Err(Duration::from_secs(60)),
    }
}
