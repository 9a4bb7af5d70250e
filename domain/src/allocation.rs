//! A fair allocation of a day's places when more families ask than there
//! are places: instead of the fastest click, the commune's published rule.
//!
//! A booking window may be *allocated*: while it is open, requests are
//! collected, not served; when it closes, one allocation run per unit and
//! day ranks the requests by the commune's priority criteria, in its order
//! (the criteria a request meets, the first criterion first), then by a
//! lottery, and gives the places in that order; the rest wait in it.
//!
//! The lottery is verifiable. Its seed is drawn when the window is set,
//! and only its commitment (the SHA-256 of the seed) is published in the
//! commune's event then, before anyone can ask; the run's event reveals
//! the seed. A request's lottery ticket is the SHA-256 of the seed and its
//! reservation's id: [`draw`] is a pure function of the seed, the criteria
//! and the requests (the order in which they were collected does not
//! change it), so anyone recomputes a run from the events and gets the
//! same order, and nobody, the commune included, could choose the seed
//! after seeing the requests.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// What a commune may allocate places by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Criterion {
    /// The family lives in the commune (an agent's record).
    Resident,
    /// A sister or brother already has a place that day in the unit.
    SiblingPlaced,
    /// Both parents work (an agent's record).
    BothParentsWorking,
}

/// The most criteria a commune ranks by.
pub const MAX_CRITERIA: usize = 3;

/// How an allocated window gives its places.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Allocation {
    /// Requests are collected until this instant; the run follows it.
    pub closes_at: DateTime<Utc>,
    /// The commune's priorities, the most important first.
    pub criteria: Vec<Criterion>,
    /// The SHA-256 of the lottery's seed, in hexadecimal: published when
    /// the window is set, the seed itself only in the run.
    pub seed_commitment: String,
}

/// A request as a run ranks it: whose it is and which of the commune's
/// criteria it meets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub reservation_id: Uuid,
    pub family_id: Uuid,
    pub met: Vec<Criterion>,
}

/// Namespace of run ids; never change it.
const RUN_NAMESPACE: Uuid = Uuid::from_u128(0x51c4_0e2a_7b19_4d63_a8f0_3e57_c26b_9d14);

/// The id of the run of window `window_id` for `unit` on `date`.
pub fn run_id(window_id: Uuid, unit_id: Uuid, date: NaiveDate) -> Uuid {
    let mut name = Vec::with_capacity(42);
    name.extend_from_slice(window_id.as_bytes());
    name.extend_from_slice(unit_id.as_bytes());
    name.extend_from_slice(date.format("%Y-%m-%d").to_string().as_bytes());
    Uuid::new_v5(&RUN_NAMESPACE, &name)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The commitment to a seed: its SHA-256, in hexadecimal.
pub fn commitment(seed: &[u8]) -> String {
    hex(&Sha256::digest(seed))
}

/// A seed as the run reveals it (hexadecimal) read back; `None` if it is
/// not hexadecimal.
pub fn seed_from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The seed in hexadecimal, as a run reveals it.
pub fn seed_to_hex(seed: &[u8]) -> String {
    hex(seed)
}

/// Whether `text` is a commitment: 64 hexadecimal digits.
pub fn is_commitment(text: &str) -> bool {
    text.len() == 64 && text.chars().all(|c| c.is_ascii_hexdigit())
}

/// A request's lottery ticket: the SHA-256 of the seed and its
/// reservation's id.
pub fn lottery_ticket(seed: &[u8], reservation_id: Uuid) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(seed);
    hasher.update(reservation_id.as_bytes());
    hasher.finalize().into()
}

/// The order in which the requests get places: those meeting the first
/// criterion first, then, among equals, the second, and so on; then by
/// lottery ticket. Each request once (a duplicate id is ranked once).
pub fn draw(seed: &[u8], criteria: &[Criterion], requests: &[Request]) -> Vec<Uuid> {
    let mut ranked: Vec<(Vec<bool>, [u8; 32], Uuid)> = requests
        .iter()
        .map(|r| {
            // `false` sorts first: a criterion met is `false` here.
            let unmet = criteria.iter().map(|c| !r.met.contains(c)).collect();
            (unmet, lottery_ticket(seed, r.reservation_id), r.reservation_id)
        })
        .collect();
    ranked.sort();
    ranked.dedup_by_key(|(_, _, id)| *id);
    ranked.into_iter().map(|(_, _, id)| id).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(n: u128, met: &[Criterion]) -> Request {
        Request {
            reservation_id: Uuid::from_u128(n),
            family_id: Uuid::from_u128(0xf00 + n),
            met: met.to_vec(),
        }
    }

    #[test]
    fn priorities_come_first_in_the_communes_order_then_the_lottery() {
        use Criterion::*;
        let requests = vec![
            request(1, &[]),
            request(2, &[BothParentsWorking]),
            request(3, &[Resident]),
            request(4, &[Resident, BothParentsWorking]),
            request(5, &[]),
        ];
        let seed = b"seed of the spring term";
        let order = draw(seed, &[Resident, BothParentsWorking], &requests);
        let ids: Vec<u128> = order.iter().map(|id| id.as_u128()).collect();
        assert_eq!(&ids[..3], &[4, 3, 2], "both, resident, working: {ids:?}");
        let mut rest = ids[3..].to_vec();
        rest.sort_unstable();
        assert_eq!(rest, [1, 5]);
        // Working parents first, then residents: another order.
        let other = draw(seed, &[BothParentsWorking, Resident], &requests);
        assert_eq!(other[..3], [4, 2, 3].map(Uuid::from_u128));
        // A criterion the commune does not use counts for nothing.
        let none = draw(seed, &[], &requests);
        assert_eq!(none.len(), 5);
    }

    #[test]
    fn ties_are_broken_by_the_seed_alone_whatever_the_order_requests_came_in() {
        let requests: Vec<Request> = (1..=50).map(|n| request(n, &[])).collect();
        let mut reversed = requests.clone();
        reversed.reverse();
        let seed = b"a";
        assert_eq!(draw(seed, &[], &requests), draw(seed, &[], &reversed));
        assert_ne!(
            draw(seed, &[], &requests),
            draw(b"b", &[], &requests),
            "another seed, another draw"
        );
        // The draw is the order of the tickets.
        let order = draw(seed, &[], &requests);
        let tickets: Vec<[u8; 32]> = order.iter().map(|id| lottery_ticket(seed, *id)).collect();
        assert!(tickets.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn a_seed_matches_its_commitment_and_reads_back_from_hex() {
        let seed = [7u8; 32];
        let published = commitment(&seed);
        assert!(is_commitment(&published));
        assert_eq!(seed_from_hex(&seed_to_hex(&seed)).as_deref(), Some(&seed[..]));
        assert_ne!(commitment(&[8u8; 32]), published);
        assert_eq!(seed_from_hex("zz"), None);
        assert!(!is_commitment("abc"));
        let window = Uuid::from_u128(1);
        let day = NaiveDate::from_ymd_opt(2027, 1, 13).unwrap();
        assert_ne!(
            run_id(window, Uuid::from_u128(2), day),
            run_id(window, Uuid::from_u128(3), day)
        );
    }
}
