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
}

impl Default for MailSettings {
    fn default() -> Self {
        MailSettings {
            transport: MailTransport::Folder(PathBuf::from(".data/mail")),
            from: "Espace Famille <no-reply@espace-famille.localhost>".into(),
            public_url: "http://127.0.0.1:8080".into(),
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
    sqlx::query("INSERT INTO outbox (id, family_id, recipient, subject, body) VALUES ($1, $2, $3, $4, $5)")
        .bind(Uuid::new_v4())
        .bind(family_id)
        .bind(recipient)
        .bind(subject)
        .bind(body)
        .execute(&mut *conn)
        .await?;
    sqlx::query("SELECT pg_notify('outbox', '')")
        .execute(&mut *conn)
        .await?;
    Ok(())
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
        loop {
            let failed = match deliver_batch(&pool, &sender, &from).await {
                Ok(sent) if sent > 0 => {
                    backoff = MIN_BACKOFF;
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

async fn deliver_batch(pool: &PgPool, sender: &Sender, from: &Mailbox) -> Result<usize, ApiError> {
    let mut tx = pool.begin().await?;
    let rows = sqlx::query(
        "SELECT id, recipient, subject, body FROM outbox
         WHERE sent_at IS NULL AND attempts < 10 AND recipient IS NOT NULL AND body IS NOT NULL
         ORDER BY created_at LIMIT 20 FOR UPDATE SKIP LOCKED",
    )
    .fetch_all(&mut *tx)
    .await?;
    let mut sent = 0;
    for row in &rows {
        let id: Uuid = row.get("id");
        let recipient: String = row.get("recipient");
        let result = match build(from, &recipient, row.get("subject"), row.get("body")) {
            Ok(message) => sender.send(message).await,
            Err(error) => Err(error),
        };
        match result {
            Ok(()) => {
                sqlx::query(
                    "UPDATE outbox SET sent_at = now(), body = NULL, attempts = attempts + 1 WHERE id = $1",
                )
                .bind(id)
                .execute(&mut *tx)
                .await?;
                sent += 1;
            }
            Err(error) => {
                tracing::warn!(%id, %error, "message not delivered; will retry");
                sqlx::query("UPDATE outbox SET attempts = attempts + 1, last_error = $2 WHERE id = $1")
                    .bind(id)
                    .bind(error)
                    .execute(&mut *tx)
                    .await?;
            }
        }
    }
    tx.commit().await?;
    Ok(sent)
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

/// The activation message of a new account.
pub fn activation(settings: &MailSettings, token: &str) -> (String, String) {
    (
        "Activez votre compte Espace Famille".to_string(),
        format!(
            "Bonjour,\n\nVotre commune a ouvert votre compte Espace Famille.\n\
             Pour l'activer et choisir votre mot de passe, ouvrez ce lien (valable 48 heures, une seule fois) :\n\n\
             {}/activation?token={token}\n\n\
             Si vous n'attendiez pas ce message, ignorez-le.\n",
            settings.public_url.trim_end_matches('/')
        ),
    )
}

/// The password-reset message.
pub fn password_reset(settings: &MailSettings, token: &str) -> (String, String) {
    (
        "Réinitialisation de votre mot de passe Espace Famille".to_string(),
        format!(
            "Bonjour,\n\nPour choisir un nouveau mot de passe, ouvrez ce lien (valable 1 heure, une seule fois) :\n\n\
             {}/reinitialisation?token={token}\n\n\
             Si vous n'avez rien demandé, ignorez ce message : votre mot de passe reste le même.\n",
            settings.public_url.trim_end_matches('/')
        ),
    )
}

/// Tells an existing account that it now reaches another family or commune.
pub fn access_added(settings: &MailSettings) -> (String, String) {
    (
        "Nouvel accès dans votre Espace Famille".to_string(),
        format!(
            "Bonjour,\n\nUn nouvel accès a été ajouté à votre compte Espace Famille.\n\
             Connectez-vous avec vos identifiants habituels : {}\n",
            settings.public_url.trim_end_matches('/')
        ),
    )
}

/// The activation message of a guardian invited to a family.
pub fn guardian_invitation(settings: &MailSettings, token: &str) -> (String, String) {
    (
        "Vous êtes invité(e) dans un Espace Famille".to_string(),
        format!(
            "Bonjour,\n\nVous avez été ajouté(e) comme responsable d'une famille dans l'Espace Famille de votre commune,\n\
             avec un compte à votre nom : vous y verrez les enfants, leurs réservations et les factures.\n\
             Pour l'activer et choisir votre mot de passe, ouvrez ce lien (valable 48 heures, une seule fois) :\n\n\
             {}/activation?token={token}\n\n\
             Si vous n'attendiez pas ce message, ignorez-le : aucun compte ne sera activé.\n",
            settings.public_url.trim_end_matches('/')
        ),
    )
}

/// The confirmation link of a new e-mail address, sent to that address.
pub fn email_change_confirmation(settings: &MailSettings, token: &str) -> (String, String) {
    (
        "Confirmez votre nouvelle adresse e-mail".to_string(),
        format!(
            "Bonjour,\n\nVous avez demandé que votre compte Espace Famille utilise désormais cette adresse.\n\
             Pour le confirmer, ouvrez ce lien (valable 24 heures, une seule fois) :\n\n\
             {}/confirmation-email?token={token}\n\n\
             Tant que ce n'est pas fait, votre compte garde son ancienne adresse.\n\
             Si vous n'avez rien demandé, ignorez ce message.\n",
            settings.public_url.trim_end_matches('/')
        ),
    )
}

/// Tells a new address that it already has an account (the requester is
/// not told: an answer would say which addresses have accounts).
pub fn email_already_used(settings: &MailSettings) -> (String, String) {
    (
        "Cette adresse a déjà un compte Espace Famille".to_string(),
        format!(
            "Bonjour,\n\nQuelqu'un a demandé qu'un compte Espace Famille utilise cette adresse,\n\
             mais elle est déjà celle d'un autre compte : rien n'a changé.\n\
             Si vous avez oublié votre mot de passe : {}/mot-de-passe-oublie\n",
            settings.public_url.trim_end_matches('/')
        ),
    )
}

/// Tells the current address that a change was asked for.
pub fn email_change_requested(settings: &MailSettings, new_email: &str) -> (String, String) {
    (
        "Changement d'adresse e-mail demandé".to_string(),
        format!(
            "Bonjour,\n\nUn changement de l'adresse de votre compte Espace Famille vers {new_email} a été demandé.\n\
             Il ne prendra effet qu'une fois confirmé depuis cette nouvelle adresse.\n\n\
             Si ce n'est pas vous, choisissez un nouveau mot de passe : cela annule le changement\n\
             et ferme toutes les sessions ouvertes : {}/mot-de-passe-oublie\n",
            settings.public_url.trim_end_matches('/')
        ),
    )
}

/// Tells the former address that the change took effect.
pub fn email_changed(settings: &MailSettings, new_email: &str) -> (String, String) {
    (
        "Votre adresse e-mail a été changée".to_string(),
        format!(
            "Bonjour,\n\nVotre compte Espace Famille utilise désormais l'adresse {new_email}.\n\
             Si ce n'est pas vous, contactez votre mairie au plus vite.\n\
             Portail : {}\n",
            settings.public_url.trim_end_matches('/')
        ),
    )
}

/// A date as a French reader writes it: "mardi 9 mars 2027".
pub fn french_date(date: chrono::NaiveDate) -> String {
    use chrono::Datelike;
    const DAYS: [&str; 7] = [
        "lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche",
    ];
    const MONTHS: [&str; 12] = [
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
    format!(
        "{} {} {} {}",
        DAYS[date.weekday().num_days_from_monday() as usize],
        date.day(),
        MONTHS[date.month0() as usize],
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
    let lines: String = days
        .iter()
        .map(|(date, child, unit)| format!("  - {} : {child}, {unit}\n", french_date(*date)))
        .collect();
    (
        "Réservations annulées par votre commune".to_string(),
        format!(
            "Bonjour,\n\nVotre commune a fermé le service ces jours-là ({reason}).\n\
             Vos réservations sont annulées ; elles ne vous seront pas facturées :\n\n{lines}\n\
             Votre calendrier : {}\n",
            settings.public_url.trim_end_matches('/')
        ),
    )
}

/// What an agent decided on a family's request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decided {
    BookingApproved,
    BookingRejected,
    CancellationApproved,
    CancellationRejected,
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
    let day = french_date(date);
    let (subject, what) = match decided {
        Decided::BookingApproved => (
            "Réservation acceptée",
            format!("La réservation de {child} le {day} ({unit}) est acceptée."),
        ),
        Decided::BookingRejected => (
            "Réservation refusée",
            format!("La réservation de {child} le {day} ({unit}) est refusée : ce jour n'est pas réservé."),
        ),
        Decided::CancellationApproved => (
            "Annulation acceptée",
            format!("L'annulation de la réservation de {child} le {day} ({unit}) est acceptée : ce jour ne vous sera pas facturé."),
        ),
        Decided::CancellationRejected => (
            "Annulation refusée",
            format!("L'annulation de la réservation de {child} le {day} ({unit}) est refusée : la réservation est maintenue."),
        ),
    };
    let note = match (decided, note) {
        (Decided::BookingRejected | Decided::CancellationRejected, Some(note)) => {
            format!("\nMotif : {note}\n")
        }
        (_, Some(note)) => format!("\nCommentaire : {note}\n"),
        (_, None) => String::new(),
    };
    (
        subject.to_string(),
        format!(
            "Bonjour,\n\n{what}\n{note}\nVotre calendrier : {}\n",
            settings.public_url.trim_end_matches('/')
        ),
    )
}
