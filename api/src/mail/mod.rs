//! E-mail: an outbox table written in the same transaction as what caused
//! the message, and a delivery worker. With `SMTP_URL` set, messages go out
//! over SMTP (lettre); otherwise each is written as an `.eml` file into the
//! mail folder (`MAIL_DIR`, `.data/mail` by default).
//!
//! The worker locks the rows it sends (`FOR UPDATE SKIP LOCKED`), so several
//! servers can run it side by side; once sent, a message's body is cleared:
//! it may hold a single-use link.

use std::path::PathBuf;
use std::time::Duration;

use lettre::message::header::{ContentTransferEncoding, ContentType};
use lettre::message::{Body, Mailbox, SinglePart};
use lettre::{AsyncFileTransport, AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use sqlx::{PgConnection, PgPool, Row};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::error::ApiError;

/// Where mail goes. Printed, the SMTP URL shows no password.
#[derive(Clone)]
pub enum MailTransport {
    Smtp(String),
    Folder(PathBuf),
}

impl std::fmt::Debug for MailTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MailTransport::Smtp(url) => f.debug_tuple("Smtp").field(&crate::redact::url(url)).finish(),
            MailTransport::Folder(dir) => f.debug_tuple("Folder").field(dir).finish(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct MailSettings {
    pub transport: MailTransport,
    /// The sender, e.g. `Espace Famille <no-reply@mairie.fr>`.
    pub from: String,
    /// The base of the links in messages (the portal's address).
    pub public_url: String,
    /// The most messages delivered a second. Mail is background work: it
    /// gives way to the parents and agents being served (and SMTP relays
    /// limit senders anyway).
    pub per_second: u32,
}

impl Default for MailSettings {
    fn default() -> Self {
        MailSettings {
            transport: MailTransport::Folder(PathBuf::from(".data/mail")),
            from: "Espace Famille <no-reply@espace-famille.localhost>".into(),
            public_url: "http://127.0.0.1:8080".into(),
            per_second: 100,
        }
    }
}

/// Queues a message in the caller's transaction.
pub async fn enqueue(
    conn: &mut PgConnection,
    family_id: Option<Uuid>,
    recipient: &str,
    subject: &str,
    body: &str,
) -> Result<(), ApiError> {
    let message = Queued {
        family_id,
        recipient: recipient.to_string(),
        subject: subject.to_string(),
        body: body.to_string(),
    };
    enqueue_many(conn, std::slice::from_ref(&message)).await
}

/// A message to queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Queued {
    pub family_id: Option<Uuid>,
    pub recipient: String,
    pub subject: String,
    pub body: String,
}

/// Queues many messages in the caller's transaction, in one statement.
pub async fn enqueue_many(conn: &mut PgConnection, messages: &[Queued]) -> Result<(), ApiError> {
    if messages.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = messages.iter().map(|_| Uuid::new_v4()).collect();
    let families: Vec<Option<Uuid>> = messages.iter().map(|m| m.family_id).collect();
    let column = |get: fn(&Queued) -> &str| messages.iter().map(get).collect::<Vec<&str>>();
    sqlx::query(
        "INSERT INTO outbox (id, family_id, recipient, subject, body)
         SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[])",
    )
    .bind(&ids)
    .bind(&families)
    .bind(column(|m| &m.recipient))
    .bind(column(|m| &m.subject))
    .bind(column(|m| &m.body))
    .execute(&mut *conn)
    .await?;
    sqlx::query("SELECT pg_notify('outbox', '')")
        .execute(&mut *conn)
        .await?;
    Ok(())
}

enum Sender {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    Folder(AsyncFileTransport<Tokio1Executor>),
}

impl Sender {
    fn new(transport: &MailTransport) -> Result<Sender, String> {
        match transport {
            MailTransport::Smtp(url) => AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
                .map(|builder| Sender::Smtp(builder.build()))
                .map_err(|e| format!("SMTP_URL is not usable: {e}")),
            MailTransport::Folder(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
                Ok(Sender::Folder(AsyncFileTransport::new(dir)))
            }
        }
    }

    async fn send(&self, message: Message) -> Result<(), String> {
        match self {
            Sender::Smtp(smtp) => smtp.send(message).await.map(|_| ()).map_err(|e| e.to_string()),
            Sender::Folder(folder) => folder.send(message).await.map(|_| ()).map_err(|e| e.to_string()),
        }
    }
}

/// The running delivery worker.
pub struct MailWorker {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl MailWorker {
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// The first and the longest waits after a failed delivery round.
const MIN_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Starts delivering the outbox.
pub fn start(pool: PgPool, settings: MailSettings) -> Result<MailWorker, String> {
    let sender = Sender::new(&settings.transport)?;
    let from: Mailbox = settings
        .from
        .parse()
        .map_err(|e| format!("the sender address '{}' is not valid: {e}", settings.from))?;
    let (stop, mut stopped) = watch::channel(false);
    let task = tokio::spawn(async move {
        let mut listener = sqlx::postgres::PgListener::connect_with(&pool).await.ok();
        if let Some(listener) = listener.as_mut() {
            let _ = listener.listen("outbox").await;
        }
        // While the database is out of reach, each try fails at once:
        // wait longer after each failure (up to half a minute), so an
        // outage costs a few log lines, not a core and the disk.
        let mut backoff = MIN_BACKOFF;
        // Ten batches a second at most, each paced to the rate.
        let per_second = settings.per_second.max(1);
        let per_batch = i64::from((per_second / 10).clamp(1, 100));
        loop {
            let failed = match deliver_batch(&pool, &sender, &from, per_batch).await {
                Ok(sent) if sent > 0 => {
                    backoff = MIN_BACKOFF;
                    let pace = Duration::from_secs_f64(sent as f64 / f64::from(per_second));
                    tokio::select! {
                        _ = tokio::time::sleep(pace) => {}
                        _ = stopped.changed() => return,
                    }
                    continue;
                }
                Ok(_) => false,
                Err(error) => {
                    tracing::warn!(?error, retry_in = ?backoff, "mail delivery failed");
                    true
                }
            };
            let wake = async {
                match listener.as_mut() {
                    Some(listener) if !failed => {
                        if listener.try_recv().await.is_err() {
                            std::future::pending::<()>().await
                        }
                    }
                    _ => std::future::pending::<()>().await,
                }
            };
            let wait = if failed { backoff } else { Duration::from_secs(2) };
            tokio::select! {
                _ = wake => {}
                _ = tokio::time::sleep(wait) => {}
                _ = stopped.changed() => return,
            }
            backoff = if failed {
                (backoff * 2).min(MAX_BACKOFF)
            } else {
                MIN_BACKOFF
            };
        }
    });
    Ok(MailWorker { stop, task })
}

async fn deliver_batch(
    pool: &PgPool,
    sender: &Sender,
    from: &Mailbox,
    limit: i64,
) -> Result<usize, ApiError> {
    let mut tx = pool.begin().await?;
    let rows = sqlx::query(
        "SELECT id, recipient, subject, body FROM outbox
         WHERE sent_at IS NULL AND attempts < 10 AND recipient IS NOT NULL AND body IS NOT NULL
         ORDER BY created_at LIMIT $1 FOR UPDATE SKIP LOCKED",
    )
    .bind(limit)
    .fetch_all(&mut *tx)
    .await?;
    let mut sent: Vec<Uuid> = Vec::with_capacity(rows.len());
    for row in &rows {
        let id: Uuid = row.get("id");
        let recipient: String = row.get("recipient");
        let result = match build(from, &recipient, row.get("subject"), row.get("body")) {
            Ok(message) => sender.send(message).await,
            Err(error) => Err(error),
        };
        match result {
            Ok(()) => sent.push(id),
            Err(error) => {
                tracing::warn!(%id, %error, "message not delivered; will retry");
                metrics::counter!(crate::metrics::MAIL_FAILURES).increment(1);
                sqlx::query("UPDATE outbox SET attempts = attempts + 1, last_error = $2 WHERE id = $1")
                    .bind(id)
                    .bind(error)
                    .execute(&mut *tx)
                    .await?;
            }
        }
    }
    // The delivered ones in one statement, not one per message.
    if !sent.is_empty() {
        sqlx::query(
            "UPDATE outbox SET sent_at = now(), body = NULL, attempts = attempts + 1 WHERE id = ANY($1)",
        )
        .bind(&sent)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(sent.len())
}

/// A message in 8-bit text when its lines allow it (ours do), so that a
/// link reads whole in the raw message as well as in a mail client; in the
/// encoding lettre picks otherwise.
fn build(from: &Mailbox, recipient: &str, subject: String, body: String) -> Result<Message, String> {
    let to: Mailbox = recipient.parse().map_err(|e| format!("bad recipient: {e}"))?;
    // 8-bit text, as MIME allows it: CRLF line ends, lines of at most 998
    // bytes, no NUL (lettre itself would wrap lines past 76 characters in
    // quoted-printable, cutting a link in two).
    let body = body.replace("\r\n", "\n").replace('\r', "");
    let fits = !body.contains('\0') && body.lines().all(|line| line.len() <= 998);
    let body = if fits {
        Body::dangerous_pre_encoded(
            body.replace('\n', "\r\n").into_bytes(),
            ContentTransferEncoding::EightBit,
        )
    } else {
        Body::new(body)
    };
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(subject)
        .singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).body(body))
        .map_err(|e| e.to_string())
}

fn portal(settings: &MailSettings) -> &str {
    settings.public_url.trim_end_matches('/')
}

/// A message of the catalogue, `mail.{name}.subject` and `.body`, in the
/// language of the request being served (French outside one).
macro_rules! catalogue_mail {
    ($name:literal, $settings:expr $(, $key:ident = $value:expr)*) => {{
        let locale = crate::i18n::current().code();
        (
            rust_i18n::t!(concat!("mail.", $name, ".subject"), locale = locale).into_owned(),
            rust_i18n::t!(concat!("mail.", $name, ".body"), locale = locale, url = portal($settings) $(, $key = $value)*)
                .into_owned(),
        )
    }};
}

/// Tells a family that the commune answered its request.
pub fn request_answered(settings: &MailSettings, category: &str, message: &str) -> (String, String) {
    catalogue_mail!(
        "request_answered",
        settings,
        category = category,
        message = message
    )
}

/// Tells a family that the commune closed its request.
pub fn request_closed(
    settings: &MailSettings,
    category: &str,
    accepted: bool,
    message: Option<&str>,
) -> (String, String) {
    let locale = crate::i18n::current().code();
    let outcome = if accepted {
        rust_i18n::t!("mail.request_outcome.accepted", locale = locale)
    } else {
        rust_i18n::t!("mail.request_outcome.refused", locale = locale)
    };
    let message = message.map(|m| format!("\n{m}\n")).unwrap_or_default();
    catalogue_mail!(
        "request_closed",
        settings,
        category = category,
        outcome = outcome,
        message = message
    )
}

/// The activation message of a new account.
pub fn activation(settings: &MailSettings, token: &str) -> (String, String) {
    catalogue_mail!("activation", settings, token = token)
}

/// The password-reset message.
pub fn password_reset(settings: &MailSettings, token: &str) -> (String, String) {
    catalogue_mail!("password_reset", settings, token = token)
}

/// Tells an existing account that it now reaches another family or commune.
pub fn access_added(settings: &MailSettings) -> (String, String) {
    catalogue_mail!("access_added", settings)
}

/// The activation message of a guardian invited to a family.
pub fn guardian_invitation(settings: &MailSettings, token: &str) -> (String, String) {
    catalogue_mail!("guardian_invitation", settings, token = token)
}

/// The confirmation link of a new e-mail address, sent to that address.
pub fn email_change_confirmation(settings: &MailSettings, token: &str) -> (String, String) {
    catalogue_mail!("email_change_confirmation", settings, token = token)
}

/// Tells a new address that it already has an account (the requester is
/// not told: an answer would say which addresses have accounts).
pub fn email_already_used(settings: &MailSettings) -> (String, String) {
    catalogue_mail!("email_already_used", settings)
}

/// Tells the current address that a change was asked for.
pub fn email_change_requested(settings: &MailSettings, new_email: &str) -> (String, String) {
    catalogue_mail!("email_change_requested", settings, email = new_email)
}

/// Tells the former address that the change took effect.
pub fn email_changed(settings: &MailSettings, new_email: &str) -> (String, String) {
    catalogue_mail!("email_changed", settings, email = new_email)
}

/// The months in French, January first.
pub const FRENCH_MONTHS: [&str; 12] = [
    "janvier",
    "février",
    "mars",
    "avril",
    "mai",
    "juin",
    "juillet",
    "août",
    "septembre",
    "octobre",
    "novembre",
    "décembre",
];

/// A date as a French reader writes it: "mardi 9 mars 2027".
pub fn french_date(date: chrono::NaiveDate) -> String {
    use chrono::Datelike;
    const DAYS: [&str; 7] = [
        "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche",
    ];
    // The first of the month is "1er" in French.
    let day = match date.day() {
        1 => "1er".to_string(),
        n => n.to_string(),
    };
    format!(
        "{} {day} {} {}",
        DAYS[date.weekday().num_days_from_monday() as usize],
        FRENCH_MONTHS[date.month0() as usize],
        date.year()
    )
}

/// Tells a family that the commune closed days it had booked: each day
/// (with the child and the unit), the reason, and that nothing is charged.
pub fn closure_cancellations(
    settings: &MailSettings,
    reason: &str,
    days: &[(chrono::NaiveDate, String, String)],
) -> (String, String) {
    let locale = crate::i18n::current();
    let lines: Vec<String> = days
        .iter()
        .map(|(date, child, unit)| {
            rust_i18n::t!(
                "mail.closure.line",
                locale = locale.code(),
                day = crate::i18n::day(*date, locale),
                child = child,
                unit = unit
            )
            .into_owned()
        })
        .collect();
    catalogue_mail!("closure", settings, reason = reason, lines = lines.join("\n"))
}

/// What an agent decided on a family's request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decided {
    BookingApproved,
    BookingRejected,
    CancellationApproved,
    CancellationRejected,
    /// Off the waiting list into a place freed up.
    Promoted,
    /// An allocation run gave the request a place.
    Allocated,
    /// An allocation run put the request on the waiting list (the note is
    /// its rank).
    AllocationWaitListed,
}

/// Tells a family what an agent decided on a booking or a cancellation it
/// asked for: the day, the child, the unit, and the agent's reason or
/// comment.
pub fn decision(
    settings: &MailSettings,
    decided: Decided,
    date: chrono::NaiveDate,
    child: &str,
    unit: &str,
    note: Option<&str>,
) -> (String, String) {
    let locale = crate::i18n::current();
    let l = locale.code();
    let day = crate::i18n::day(date, locale);
    let name = match decided {
        Decided::BookingApproved => "booking_approved",
        Decided::BookingRejected => "booking_rejected",
        Decided::CancellationApproved => "cancellation_approved",
        Decided::CancellationRejected => "cancellation_rejected",
        Decided::Promoted => "promoted",
        Decided::Allocated => "allocated",
        Decided::AllocationWaitListed => "allocation_wait_listed",
    };
    let (subject_key, what_key) = (
        format!("mail.decision.{name}.subject"),
        format!("mail.decision.{name}.what"),
    );
    let subject = rust_i18n::t!(&subject_key, locale = l).into_owned();
    let rank = note.unwrap_or_default();
    let what = rust_i18n::t!(
        &what_key,
        locale = l,
        child = child,
        day = day,
        unit = unit,
        position = rank
    );
    let note = match (decided, note) {
        (Decided::AllocationWaitListed, _) => String::new(),
        (Decided::BookingRejected | Decided::CancellationRejected, Some(note)) => {
            format!(
                "\n{}\n",
                rust_i18n::t!("mail.decision.reason", locale = l, note = note)
            )
        }
        (_, Some(note)) => format!(
            "\n{}\n",
            rust_i18n::t!("mail.decision.comment", locale = l, note = note)
        ),
        (_, None) => String::new(),
    };
    let body = rust_i18n::t!(
        "mail.decision.body",
        locale = l,
        what = what,
        note = note,
        url = portal(settings)
    )
    .into_owned();
    (subject, body)
}
