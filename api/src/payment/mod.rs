//! Paying online: the [`PaymentProvider`] a régie takes payments through,
//! shaped on how the public treasury's PayFiP works, and the built-in
//! provider that stands in for it ([`builtin`]).
//!
//! The server opens an operation (amount, the invoices' references, the
//! payer's e-mail, where to send the payer back and where to notify) and
//! gets its id; the payer pays on the provider's page; the provider
//! notifies the server with the operation's id only, and the server asks
//! the provider for that operation's result before recording anything
//! (see `services::payment`). A payment counts only from that answer,
//! never from the payer's return to the site.
//!
//! Notifications are signed with HMAC-SHA256 over the instant and the body
//! (the `Signature` header: `t=<unix seconds>,v1=<hex>`); one whose
//! signature does not verify, or older than [`NOTIFICATION_TOLERANCE`], is
//! refused. One told again is harmless: the payment is already decided.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use espace_famille_domain::payment::{Observed, OperationStatus};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

pub mod builtin;

/// How old a notification's signature may be.
pub const NOTIFICATION_TOLERANCE: Duration = Duration::from_secs(300);

/// The header carrying a notification's signature.
pub const SIGNATURE_HEADER: &str = "signature";

/// What the server asks the provider to collect.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationRequest {
    pub amount_cents: i64,
    /// The payment's id: the provider's reference for it.
    pub reference: String,
    /// The invoices' numbers, shown to the payer.
    pub invoices: Vec<String>,
    pub payer_email: String,
    /// Where the payer's browser goes once done.
    pub return_url: String,
    /// Where the provider notifies (server to server).
    pub notification_url: String,
}

/// What the provider answers about an operation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationResult {
    pub operation_id: String,
    pub status: OperationStatus,
    pub authorisation: Option<String>,
    pub amount_cents: i64,
    pub at: DateTime<Utc>,
}

impl OperationResult {
    pub fn observed(&self) -> Observed {
        Observed {
            status: self.status,
            authorisation: self.authorisation.clone(),
            amount_cents: self.amount_cents,
            at: self.at,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("the payment provider could not be reached: {0}")]
    Unreachable(String),
    #[error("the payment provider refused: {0}")]
    Refused(String),
    #[error("the payment provider knows no operation {0}")]
    UnknownOperation(String),
}

/// A payment provider, PayFiP or one shaped like it.
#[async_trait]
pub trait PaymentProvider: Send + Sync {
    /// Opens an operation; its id.
    async fn open(&self, request: &OperationRequest) -> Result<String, ProviderError>;

    /// Where the payer pays that operation.
    fn page_url(&self, operation_id: &str) -> String;

    /// The operation's result, as the provider knows it now.
    async fn result(&self, operation_id: &str) -> Result<OperationResult, ProviderError>;

    /// The operation a notification names, if its signature verifies.
    fn verify_notification(&self, signature: Option<&str>, body: &[u8], now: DateTime<Utc>)
        -> Option<String>;
}

/// How the server takes payments.
#[derive(Clone)]
pub struct PaymentSettings {
    /// The server's address as browsers and the provider reach it, e.g.
    /// `https://famille.mairie.fr` (`None`: its listening address).
    pub public_url: Option<String>,
    /// The provider's address (`None`: the built-in provider, under the
    /// server's own `/fournisseur-paiement`).
    pub provider_url: Option<String>,
    /// The secret shared with the provider: the key of its API and of the
    /// notifications' signatures. Several servers share one.
    pub secret: String,
    /// How long after its start an undecided payment is asked about again.
    pub reconcile_after: Duration,
    /// How often the reconciliation looks for them (and for the prepaid
    /// bookings unpaid past their delay).
    pub reconcile_every: Duration,
    /// How long a prepaid booking waits for its payment before it is
    /// released.
    pub prepaid_for: Duration,
    /// What the built-in provider does (it serves only when
    /// `provider_url` is `None`).
    pub builtin: builtin::BuiltinSettings,
}

impl std::fmt::Debug for PaymentSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaymentSettings")
            .field("public_url", &self.public_url)
            .field("provider_url", &self.provider_url)
            .field("secret", &"…")
            .field("reconcile_after", &self.reconcile_after)
            .field("reconcile_every", &self.reconcile_every)
            .field("prepaid_for", &self.prepaid_for)
            .field("builtin", &self.builtin)
            .finish()
    }
}

impl Default for PaymentSettings {
    fn default() -> Self {
        PaymentSettings {
            public_url: None,
            provider_url: None,
            secret: random_secret(),
            reconcile_after: Duration::from_secs(600),
            reconcile_every: Duration::from_secs(30),
            prepaid_for: Duration::from_secs(60 * 60),
            builtin: builtin::BuiltinSettings::default(),
        }
    }
}

/// A secret for one server alone, when none is given.
pub fn random_secret() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// What the server's payments need at run time.
pub struct Payments {
    pub provider: Arc<dyn PaymentProvider>,
    /// The server's address, for the return and notification URLs.
    pub public_url: String,
    /// How long a prepaid booking waits for its payment.
    pub prepaid_for: Duration,
}

impl Payments {
    pub fn return_url(&self) -> String {
        format!("{}/paiement/retour", self.public_url)
    }

    pub fn notification_url(&self) -> String {
        format!("{}/paiement/notification", self.public_url)
    }
}

/// `body` signed at `at` with `secret`: the `Signature` header's value.
pub fn sign(secret: &str, at: DateTime<Utc>, body: &[u8]) -> String {
    let t = at.timestamp();
    format!(
        "t={t},v1={}",
        hex::encode(mac(secret, t, body).finalize().into_bytes())
    )
}

fn mac(secret: &str, t: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac
}

/// Whether `signature` signs `body` with `secret`, less than
/// [`NOTIFICATION_TOLERANCE`] before (or after) `now`; compared in constant
/// time.
pub fn verify(secret: &str, signature: &str, body: &[u8], now: DateTime<Utc>) -> bool {
    let mut t = None;
    let mut v1 = None;
    for part in signature.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => t = value.parse::<i64>().ok(),
            Some(("v1", value)) => v1 = hex::decode(value).ok(),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else {
        return false;
    };
    let tolerance = NOTIFICATION_TOLERANCE.as_secs() as i64;
    if (now.timestamp() - t).abs() > tolerance {
        return false;
    }
    mac(secret, t, body).verify_slice(&v1).is_ok()
}

/// A notification's body: the operation's id, nothing else.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Notification {
    pub operation_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2027-02-03T10:00:00Z".parse().unwrap()
    }

    #[test]
    fn a_signature_verifies_only_its_body_with_its_key_for_a_few_minutes() {
        let body = br#"{"operation_id":"op-1"}"#;
        let signed = sign("key", now(), body);
        assert!(verify("key", &signed, body, now()));
        assert!(verify(
            "key",
            &signed,
            body,
            now() + chrono::Duration::seconds(299)
        ));
        // Altered, forged with another key, too old, or malformed.
        assert!(!verify("key", &signed, br#"{"operation_id":"op-2"}"#, now()));
        assert!(!verify("other", &signed, body, now()));
        assert!(!verify(
            "key",
            &signed,
            body,
            now() + chrono::Duration::seconds(301)
        ));
        let resigned_later = signed.replacen(
            &format!("t={}", now().timestamp()),
            &format!("t={}", now().timestamp() + 10),
            1,
        );
        assert!(!verify("key", &resigned_later, body, now()));
        for bad in ["", "t=1", "v1=00", "t=x,v1=zz"] {
            assert!(!verify("key", bad, body, now()), "{bad}");
        }
    }
}
