//! Families' requests to their commune: sent with their files, answered
//! and closed by the commune's agents. Closing a request that justifies an
//! absence, accepted, justifies it in the same transaction.
//!
//! Every id the client gives is checked against who owns it: the family is
//! the caller's and belongs to the commune, the category is that commune's,
//! the reservation is that family's at that commune and has an absence.

use espace_famille_domain::collectivity::{FileKind, RequestCategory};
use espace_famille_domain::personal::Personal;
use espace_famille_domain::request::{
    Answer, Attachment, FieldValue, Request, RequestCommand, StoredFile, Submitted,
};
use espace_famille_domain::reservation::{Reservation, ReservationStatus};
use espace_famille_projections::store::{Metadata, StreamAppend};
use uuid::Uuid;

use super::write::{Failure, Work, Write};
use crate::auth::accounts;
use crate::commands::Commands;
use crate::error::{ApiError, ErrorCode};
use crate::files::{Files, Received};
use crate::i18n::say;
use crate::mail::{self, MailSettings};

/// What a family sends; its files already received and inspected.
pub struct Submission {
    pub request_id: Uuid,
    pub family_id: Uuid,
    pub collectivity_id: Uuid,
    pub category_id: Uuid,
    pub message: String,
    pub fields: Vec<(String, String)>,
    /// Each attachment's name in the category, and its file.
    pub attachments: Vec<(String, Received)>,
    pub reservation_id: Option<Uuid>,
}

/// The commune's category `category_id`, or NOT_FOUND.
pub async fn category(
    commands: &Commands,
    collectivity_id: Uuid,
    category_id: Uuid,
) -> Result<RequestCategory, ApiError> {
    let commune = commands.current_collectivity(collectivity_id).await?;
    commune
        .request_category(category_id)
        .cloned()
        .ok_or_else(|| ApiError::NotFound(say("api.no_request_category", &[("id", &category_id)])))
}

/// Checks each file against the category's attachment it answers, naming
/// the file and the rule it breaks: a known attachment, within the size
/// limit, of a kind the attachment accepts as its content shows it.
pub fn check_files(
    files: &Files,
    category: &RequestCategory,
    attachments: &[(String, Received)],
) -> Result<(), ApiError> {
    if attachments.len() > files.settings.max_files {
        return Err(refused_file(say(
            "api.too_many_files",
            &[("max", &files.settings.max_files)],
        )));
    }
    for (name, received) in attachments {
        let Some(rule) = category.attachments.iter().find(|a| a.name == *name) else {
            return Err(refused_file(say(
                "api.unknown_attachment",
                &[("file", &received.name), ("name", name)],
            )));
        };
        check_file(files, received, &rule.label, &rule.accepts)?;
    }
    Ok(())
}

/// The kind of one file, when it is within the size limit and of a kind
/// `accepts` names, as its content shows it; else why not, naming the file
/// and what it was sent as (`label`).
fn check_file(
    files: &Files,
    received: &Received,
    label: &str,
    accepts: &[FileKind],
) -> Result<FileKind, ApiError> {
    let max = files.settings.max_file_bytes;
    if received.size == 0 || received.size > max {
        return Err(refused_file(say(
            "api.file_too_large",
            &[
                ("file", &received.name),
                ("max", &format!("{} Mio", max / (1024 * 1024))),
            ],
        )));
    }
    received.kind.filter(|k| accepts.contains(k)).ok_or_else(|| {
        let kinds: Vec<&str> = accepts.iter().map(|k| kind_name(*k)).collect();
        refused_file(say(
            "api.file_kind_refused",
            &[
                ("file", &received.name),
                ("label", &label),
                ("kinds", &kinds.join(", ")),
            ],
        ))
    })
}

/// A file refused, with why (`FILE_REFUSED`).
fn refused_file(message: String) -> ApiError {
    ApiError::refused(ErrorCode::FileRefused, &message)
}

/// A kind as people name it.
pub fn kind_name(kind: FileKind) -> &'static str {
    match kind {
        FileKind::Pdf => "PDF",
        FileKind::Jpeg => "JPEG",
        FileKind::Png => "PNG",
        FileKind::Heic => "HEIC",
    }
}

fn stored(received: &Received, kind: FileKind) -> StoredFile {
    StoredFile {
        sha256: received.sha256.clone(),
        size: received.size,
        kind,
        file_name: Personal::Known(received.name.clone()),
    }
}

/// Sends a family's request; `metadata` is the guardian's. A request sent
/// again with its id is answered as it was stored.
pub async fn submit(
    commands: &Commands,
    files: &Files,
    submission: Submission,
    metadata: &Metadata,
) -> Result<Request, ApiError> {
    commands
        .write(Submit {
            files,
            submission,
            metadata,
        })
        .await
}

struct Submit<'a> {
    files: &'a Files,
    submission: Submission,
    metadata: &'a Metadata,
}

impl Write for Submit<'_> {
    type Answer = Request;

    async fn attempt(&mut self, work: &mut Work<'_>) -> Result<Request, Failure> {
        let s = &self.submission;
        let loaded = work.load::<Request>(s.request_id).await?;
        if let Some(existing) = &loaded.aggregate.submitted {
            if existing.family_id == s.family_id {
                return Ok(loaded.aggregate);
            }
            return Err(ApiError::Conflict(say("api.request_id_taken", &[("id", &s.request_id)])).into());
        }
        let commands = work.commands();
        let family = commands.current_family(s.family_id).await?;
        if !family.collectivities().contains(&s.collectivity_id) {
            return Err(ApiError::NotFound(say("api.no_collectivity", &[("id", &s.collectivity_id)])).into());
        }
        let category = category(commands, s.collectivity_id, s.category_id).await?;
        check_files(self.files, &category, &s.attachments)?;
        if let Some(reservation_id) = s.reservation_id {
            let reservation = work.load::<Reservation>(reservation_id).await?.aggregate;
            let named = reservation
                .slot
                .filter(|slot| slot.family_id == s.family_id && slot.collectivity_id == s.collectivity_id);
            if named.is_none() {
                return Err(ApiError::NotFound(say("api.no_reservation", &[("id", &reservation_id)])).into());
            }
            if !reservation.status.has_absence() {
                return Err(ApiError::refused(
                    ErrorCode::NoAbsenceReported,
                    &say("api.request_no_absence", &[]),
                )
                .into());
            }
        }
        let attachments = s
            .attachments
            .iter()
            .map(|(name, received)| Attachment {
                name: name.clone(),
                file: stored(received, received.kind.expect("checked above")),
            })
            .collect();
        let submitted = Submitted {
            family_id: s.family_id,
            collectivity_id: s.collectivity_id,
            category_id: s.category_id,
            category_name: String::new(),
            message: Personal::Known(s.message.clone()),
            fields: s
                .fields
                .iter()
                .map(|(name, value)| FieldValue {
                    name: name.clone(),
                    value: Personal::Known(value.clone()),
                })
                .collect(),
            attachments,
            reservation_id: s.reservation_id,
        };
        let request = work
            .decide::<Request>(
                s.request_id,
                loaded,
                RequestCommand::Submit { submitted, category },
                &(),
                self.metadata,
            )
            .await?;
        // Only once the request is decided: a refused one stores nothing.
        for (_, received) in &s.attachments {
            let kind = received.kind.expect("checked above");
            let conn = work.transaction().await?;
            if let Some(path) = self.files.place(conn, s.family_id, received, kind).await? {
                work.placed_file(path);
            }
        }
        Ok(request)
    }

    fn reads(&self) -> Option<&'static [&'static str]> {
        Some(&[espace_famille_projections::requests::REQUESTS])
    }
}

/// What an agent does with a request.
pub enum Handling {
    Answer {
        message: String,
        attachment: Option<Received>,
    },
    Close {
        accepted: bool,
        message: Option<String>,
    },
}

/// Answers or closes a request. `authorise` sees what was submitted and
/// answers with the metadata of the agent allowed to handle it.
pub async fn handle(
    commands: &Commands,
    files: &Files,
    mail: &MailSettings,
    request_id: Uuid,
    handling: Handling,
    authorise: impl Fn(&Submitted) -> Result<Metadata, ApiError> + Send + Sync,
) -> Result<Request, ApiError> {
    commands
        .write(Handle {
            files,
            mail,
            request_id,
            handling,
            authorise,
        })
        .await
}

struct Handle<'a, F> {
    files: &'a Files,
    mail: &'a MailSettings,
    request_id: Uuid,
    handling: Handling,
    authorise: F,
}

impl<F> Write for Handle<'_, F>
where
    F: Fn(&Submitted) -> Result<Metadata, ApiError> + Send + Sync,
{
    type Answer = Request;

    async fn attempt(&mut self, work: &mut Work<'_>) -> Result<Request, Failure> {
        let loaded = work.load::<Request>(self.request_id).await?;
        let Some(submitted) = loaded.aggregate.submitted.clone() else {
            return Err(ApiError::NotFound(say("api.no_request", &[("id", &self.request_id)])).into());
        };
        let metadata = (self.authorise)(&submitted)?;
        match &self.handling {
            Handling::Answer { message, attachment } => {
                // An answer's file: any kind the product takes.
                let checked = match attachment {
                    Some(received) => Some((
                        received,
                        check_file(self.files, received, &say("api.answer_file", &[]), &FileKind::ALL)?,
                    )),
                    None => None,
                };
                let answer = Answer {
                    message: Personal::Known(message.clone()),
                    attachment: checked.map(|(received, kind)| stored(received, kind)),
                };
                let request = work
                    .decide::<Request>(
                        self.request_id,
                        loaded,
                        RequestCommand::Answer { answer },
                        &(),
                        &metadata,
                    )
                    .await?;
                if let Some((received, kind)) = checked {
                    let conn = work.transaction().await?;
                    if let Some(path) = self
                        .files
                        .place(conn, submitted.family_id, received, kind)
                        .await?
                    {
                        work.placed_file(path);
                    }
                }
                let (subject, body) = mail::request_answered(self.mail, &submitted.category_name, message);
                tell_family(work, submitted.family_id, &subject, &body).await?;
                Ok(request)
            }
            Handling::Close { accepted, message } => {
                let was_open = loaded.aggregate.accepted.is_none();
                let request = work
                    .decide::<Request>(
                        self.request_id,
                        loaded,
                        RequestCommand::Close {
                            accepted: *accepted,
                            message: message.clone(),
                        },
                        &(),
                        &metadata,
                    )
                    .await?;
                // An accepted justification justifies its absence, in the
                // same transaction.
                if let (true, true, Some(reservation_id)) = (was_open, *accepted, submitted.reservation_id) {
                    let reservation = work.load::<Reservation>(reservation_id).await?;
                    if reservation.aggregate.status != ReservationStatus::AbsentJustified {
                        let note = say(
                            "api.absence_justified_by_request",
                            &[("category", &submitted.category_name)],
                        );
                        let event = reservation
                            .aggregate
                            .check_judge_absence(true, Some(&note))
                            .map_err(ApiError::from)?;
                        let stream = StreamAppend::new::<Reservation>(
                            reservation_id.to_string(),
                            reservation.version,
                            std::slice::from_ref(&event),
                        )?;
                        work.append(vec![stream], &metadata)?;
                    }
                }
                if was_open {
                    let closing = request.closing_message.as_ref().and_then(|m| m.known().cloned());
                    let (subject, body) = mail::request_closed(
                        self.mail,
                        &submitted.category_name,
                        *accepted,
                        closing.as_deref(),
                    );
                    tell_family(work, submitted.family_id, &subject, &body).await?;
                }
                Ok(request)
            }
        }
    }

    fn contended(&self) -> String {
        say("api.contended_request", &[("id", &self.request_id)])
    }
}

/// Mails the family's guardians, in the write's transaction.
async fn tell_family(work: &mut Work<'_>, family_id: Uuid, subject: &str, body: &str) -> Result<(), Failure> {
    let conn = work.transaction().await?;
    for email in accounts::guardian_emails(&mut *conn, family_id).await? {
        mail::enqueue(&mut *conn, Some(family_id), &email, subject, body).await?;
    }
    Ok(())
}
