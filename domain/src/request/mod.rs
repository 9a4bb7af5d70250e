//! A family's request to its commune ("Faire une demande"): a category of
//! the commune, a message, the form's fields and the attachments the
//! category asks for. `RequestSubmitted` → `RequestAnswered` (any number
//! of times) → `RequestClosed`, accepted or not, by an agent. A request
//! that justifies an absence names the reservation; its acceptance
//! justifies it (see the API's requests service, which writes both).
//!
//! What the family wrote, the files' names and the agents' answers are
//! personal: sealed with the family's key, erased with it. The files
//! themselves are stored outside the events, by content hash; the events
//! name them.

use chrono::NaiveDate;
use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::collectivity::{FieldKind, FileKind, RequestCategory};
use crate::personal::Personal;
use crate::text::{self, TextError};

#[cfg(test)]
mod tests;

/// The longest message of a request or an answer, and value of a long
/// text field.
pub const MESSAGE: usize = 4_000;
/// The longest one-line text field.
pub const LINE: usize = 200;
/// The longest file name kept.
pub const FILE_NAME: usize = 255;
/// The most answers a request takes.
pub const MAX_ANSWERS: usize = 50;

/// A file as stored: by the SHA-256 of its content, with its size, its
/// kind (from its content) and the name it was sent under.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredFile {
    /// Hexadecimal SHA-256 of the content.
    pub sha256: String,
    pub size: u64,
    pub kind: FileKind,
    pub file_name: Personal<String>,
}

impl StoredFile {
    fn check(&self) -> Result<(), RequestError> {
        let hex = self.sha256.len() == 64
            && self
                .sha256
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase());
        if !hex || self.size == 0 {
            return Err(RequestError::InvalidFile);
        }
        if let Personal::Known(name) = &self.file_name {
            text::required("a file's name", name, FILE_NAME)?;
        }
        Ok(())
    }
}

/// One field of the form, as the family filled it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldValue {
    pub name: String,
    pub value: Personal<String>,
}

/// One attachment: the category's attachment it answers, and its file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub name: String,
    pub file: StoredFile,
}

/// What a family sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Submitted {
    pub family_id: Uuid,
    pub collectivity_id: Uuid,
    pub category_id: Uuid,
    /// The category's name then (a category may be renamed later).
    pub category_name: String,
    pub message: Personal<String>,
    pub fields: Vec<FieldValue>,
    pub attachments: Vec<Attachment>,
    /// The reservation whose absence the request justifies.
    pub reservation_id: Option<Uuid>,
}

/// One answer of an agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Answer {
    pub message: Personal<String>,
    pub attachment: Option<StoredFile>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RequestCommand {
    /// `category` is the commune's category as it stands: the request is
    /// checked against it.
    Submit {
        submitted: Submitted,
        category: RequestCategory,
    },
    Answer {
        answer: Answer,
    },
    Close {
        accepted: bool,
        message: Option<String>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RequestEvent {
    RequestSubmitted {
        submitted: Submitted,
    },
    RequestAnswered {
        answer: Answer,
    },
    RequestClosed {
        accepted: bool,
        message: Option<Personal<String>>,
    },
}

impl DomainEvent for RequestEvent {
    fn event_type(&self) -> String {
        match self {
            RequestEvent::RequestSubmitted { .. } => "RequestSubmitted",
            RequestEvent::RequestAnswered { .. } => "RequestAnswered",
            RequestEvent::RequestClosed { .. } => "RequestClosed",
        }
        .to_string()
    }

    fn event_version(&self) -> String {
        "1".to_string()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("this request was already sent")]
    AlreadySubmitted,
    #[error("no such request")]
    NotSubmitted,
    #[error("this request is closed")]
    Closed,
    #[error("this category no longer takes requests")]
    CategoryRetired,
    #[error("the form has no field {0:?}")]
    UnknownField(String),
    #[error("the field {0:?} is required")]
    MissingField(String),
    #[error("the field {0:?} is filled twice")]
    DuplicateField(String),
    #[error("the field {name:?} does not hold {expected}")]
    InvalidField { name: String, expected: String },
    #[error("the category asks for no attachment {0:?}")]
    UnknownAttachment(String),
    #[error("the attachment {0:?} is required")]
    MissingAttachment(String),
    #[error("the attachment {0:?} is sent twice")]
    DuplicateAttachment(String),
    #[error("the attachment {name:?} does not accept a {kind:?} file")]
    FileNotAccepted { name: String, kind: FileKind },
    #[error("a stored file is named by its SHA-256 and is not empty")]
    InvalidFile,
    #[error("a request of this category names the absence it justifies")]
    AbsenceNeeded,
    #[error("a request of this category names no absence")]
    NoAbsenceExpected,
    #[error("a request takes at most {MAX_ANSWERS} answers")]
    TooManyAnswers,
    #[error(transparent)]
    Text(#[from] TextError),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum RequestStatus {
    #[default]
    None,
    Submitted,
    Answered,
    Closed,
}

/// A request as its events built it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub submitted: Option<Submitted>,
    pub status: RequestStatus,
    pub answers: Vec<Answer>,
    /// Once closed: whether the agent accepted it, and what they said.
    pub accepted: Option<bool>,
    pub closing_message: Option<Personal<String>>,
}

impl Request {
    pub fn exists(&self) -> bool {
        self.submitted.is_some()
    }

    /// Every file the request names: its attachments', then the answers'.
    pub fn files(&self) -> impl Iterator<Item = &StoredFile> {
        self.submitted
            .iter()
            .flat_map(|s| s.attachments.iter().map(|a| &a.file))
            .chain(self.answers.iter().filter_map(|a| a.attachment.as_ref()))
    }
}

/// A field's value, checked against its kind: the value kept.
fn checked_value(name: &str, kind: &FieldKind, value: &str) -> Result<String, RequestError> {
    let invalid = |expected: &str| RequestError::InvalidField {
        name: name.to_string(),
        expected: expected.to_string(),
    };
    let value = value.trim();
    Ok(match kind {
        FieldKind::Text => text::required("a field", value, LINE)?,
        FieldKind::LongText => {
            text::multiline("a field", Some(value), MESSAGE)?.ok_or_else(|| invalid("a text"))?
        }
        FieldKind::Date => {
            let day =
                NaiveDate::parse_from_str(value, "%Y-%m-%d").map_err(|_| invalid("a date (YYYY-MM-DD)"))?;
            text::date("a date", day).map_err(|_| invalid("a date (YYYY-MM-DD)"))?;
            day.to_string()
        }
        FieldKind::Number => {
            let number: i64 = value.parse().map_err(|_| invalid("a whole number"))?;
            if number.unsigned_abs() > 1_000_000_000 {
                return Err(invalid("a whole number"));
            }
            number.to_string()
        }
        FieldKind::YesNo => match value {
            "true" | "false" => value.to_string(),
            _ => return Err(invalid("true or false")),
        },
        FieldKind::Choice { options } => options
            .iter()
            .find(|o| o.as_str() == value)
            .cloned()
            .ok_or_else(|| invalid(&format!("one of {}", options.join(", "))))?,
    })
}

/// What was submitted, checked against its category: the texts trimmed,
/// the fields in the form's order.
fn checked(submitted: Submitted, category: &RequestCategory) -> Result<Submitted, RequestError> {
    if category.retired {
        return Err(RequestError::CategoryRetired);
    }
    match (category.justifies_absence, submitted.reservation_id) {
        (true, None) => return Err(RequestError::AbsenceNeeded),
        (false, Some(_)) => return Err(RequestError::NoAbsenceExpected),
        _ => {}
    }
    let message = match &submitted.message {
        Personal::Known(message) => Personal::Known(
            text::multiline("a message", Some(message), MESSAGE)?
                .ok_or(TextError::Empty { field: "a message" })?,
        ),
        Personal::Erased => Personal::Erased,
    };
    for (n, field) in submitted.fields.iter().enumerate() {
        if !category.fields.iter().any(|f| f.name == field.name) {
            return Err(RequestError::UnknownField(field.name.clone()));
        }
        if submitted.fields[..n].iter().any(|f| f.name == field.name) {
            return Err(RequestError::DuplicateField(field.name.clone()));
        }
    }
    let mut fields = Vec::with_capacity(submitted.fields.len());
    for form in &category.fields {
        let given = submitted
            .fields
            .iter()
            .find(|f| f.name == form.name)
            .and_then(|f| f.value.known())
            .filter(|v| !v.trim().is_empty());
        match given {
            None if form.required => return Err(RequestError::MissingField(form.name.clone())),
            None => {}
            Some(value) => fields.push(FieldValue {
                name: form.name.clone(),
                value: Personal::Known(checked_value(&form.name, &form.kind, value)?),
            }),
        }
    }
    for (n, attachment) in submitted.attachments.iter().enumerate() {
        let Some(rule) = category.attachments.iter().find(|a| a.name == attachment.name) else {
            return Err(RequestError::UnknownAttachment(attachment.name.clone()));
        };
        if submitted.attachments[..n]
            .iter()
            .any(|a| a.name == attachment.name)
        {
            return Err(RequestError::DuplicateAttachment(attachment.name.clone()));
        }
        attachment.file.check()?;
        if !rule.accepts.contains(&attachment.file.kind) {
            return Err(RequestError::FileNotAccepted {
                name: attachment.name.clone(),
                kind: attachment.file.kind,
            });
        }
    }
    if let Some(missing) = category
        .attachments
        .iter()
        .find(|rule| rule.required && !submitted.attachments.iter().any(|a| a.name == rule.name))
    {
        return Err(RequestError::MissingAttachment(missing.name.clone()));
    }
    Ok(Submitted {
        category_name: category.name.clone(),
        category_id: category.id,
        message,
        fields,
        ..submitted
    })
}

fn checked_message(message: &Personal<String>) -> Result<Personal<String>, RequestError> {
    Ok(match message {
        Personal::Known(message) => Personal::Known(
            text::multiline("an answer", Some(message), MESSAGE)?
                .ok_or(TextError::Empty { field: "an answer" })?,
        ),
        Personal::Erased => Personal::Erased,
    })
}

impl Aggregate for Request {
    const TYPE: &'static str = "Request";
    type Command = RequestCommand;
    type Event = RequestEvent;
    type Error = RequestError;
    type Services = ();

    async fn handle(
        &mut self,
        command: RequestCommand,
        _: &(),
        sink: &EventSink<Self>,
    ) -> Result<(), RequestError> {
        let event = match command {
            RequestCommand::Submit { submitted, category } => {
                if self.exists() {
                    return Err(RequestError::AlreadySubmitted);
                }
                RequestEvent::RequestSubmitted {
                    submitted: checked(submitted, &category)?,
                }
            }
            RequestCommand::Answer { answer } => {
                match self.status {
                    RequestStatus::None => return Err(RequestError::NotSubmitted),
                    RequestStatus::Closed => return Err(RequestError::Closed),
                    RequestStatus::Submitted | RequestStatus::Answered => {}
                }
                if self.answers.len() >= MAX_ANSWERS {
                    return Err(RequestError::TooManyAnswers);
                }
                if let Some(file) = &answer.attachment {
                    file.check()?;
                }
                RequestEvent::RequestAnswered {
                    answer: Answer {
                        message: checked_message(&answer.message)?,
                        attachment: answer.attachment,
                    },
                }
            }
            RequestCommand::Close { accepted, message } => {
                match self.status {
                    RequestStatus::None => return Err(RequestError::NotSubmitted),
                    // Closed again the same way: nothing more.
                    RequestStatus::Closed if self.accepted == Some(accepted) => return Ok(()),
                    RequestStatus::Closed => return Err(RequestError::Closed),
                    RequestStatus::Submitted | RequestStatus::Answered => {}
                }
                let message = text::multiline("a closing message", message.as_deref(), MESSAGE)?;
                RequestEvent::RequestClosed {
                    accepted,
                    message: message.map(Personal::Known),
                }
            }
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: RequestEvent) {
        match event {
            RequestEvent::RequestSubmitted { submitted } => {
                self.submitted = Some(submitted);
                self.status = RequestStatus::Submitted;
            }
            RequestEvent::RequestAnswered { answer } => {
                self.answers.push(answer);
                self.status = RequestStatus::Answered;
            }
            RequestEvent::RequestClosed { accepted, message } => {
                self.status = RequestStatus::Closed;
                self.accepted = Some(accepted);
                self.closing_message = message;
            }
        }
    }
}
