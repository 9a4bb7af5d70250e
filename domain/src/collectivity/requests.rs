//! The requests a commune takes from families ("Faire une demande"): each
//! category's form (named, typed fields) and the attachments it asks for,
//! each with the kinds of file it accepts.

#[allow(unused_imports)]
use super::*;

/// The kinds of file an attachment may be, as their content shows them
/// (never their name or the type the client declares).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum FileKind {
    Pdf,
    Jpeg,
    Png,
    /// A phone's photo (HEIF/HEIC).
    Heic,
}

impl FileKind {
    /// Every kind the product takes.
    pub const ALL: [FileKind; 4] = [FileKind::Pdf, FileKind::Jpeg, FileKind::Png, FileKind::Heic];

    /// The media type a file of this kind is served as.
    pub fn media_type(self) -> &'static str {
        match self {
            FileKind::Pdf => "application/pdf",
            FileKind::Jpeg => "image/jpeg",
            FileKind::Png => "image/png",
            FileKind::Heic => "image/heic",
        }
    }

    /// The kind of the media type a file's content was recognised as.
    pub fn of_media_type(media_type: &str) -> Option<FileKind> {
        match media_type {
            "application/pdf" => Some(FileKind::Pdf),
            "image/jpeg" => Some(FileKind::Jpeg),
            "image/png" => Some(FileKind::Png),
            "image/heic" | "image/heif" => Some(FileKind::Heic),
            _ => None,
        }
    }

    /// The usual extension of a file of this kind.
    pub fn extension(self) -> &'static str {
        match self {
            FileKind::Pdf => "pdf",
            FileKind::Jpeg => "jpg",
            FileKind::Png => "png",
            FileKind::Heic => "heic",
        }
    }
}

/// What a form's field holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FieldKind {
    /// One line of text.
    Text,
    /// Several lines.
    LongText,
    /// A day, `YYYY-MM-DD`.
    Date,
    /// A whole number.
    Number,
    /// Yes or no.
    YesNo,
    /// One of the options.
    Choice { options: Vec<String> },
}

/// One field of a category's form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FormField {
    /// How the client names it: lower-case letters, digits and `_`.
    pub name: String,
    /// What the parent reads.
    pub label: String,
    pub kind: FieldKind,
    pub required: bool,
}

/// One attachment a category asks for: one file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentRule {
    pub name: String,
    pub label: String,
    pub required: bool,
    pub accepts: Vec<FileKind>,
}

/// A kind of request a commune takes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestCategory {
    pub id: Uuid,
    pub name: String,
    pub description: Option<String>,
    pub fields: Vec<FormField>,
    pub attachments: Vec<AttachmentRule>,
    /// Whether a request of it names an absence, which the agent's
    /// acceptance makes justified ("Justificatif d'absence").
    pub justifies_absence: bool,
    /// Retired: no new request of it (the requests made stay).
    #[serde(default)]
    pub retired: bool,
}

/// The most categories a commune keeps, fields a form has, attachments a
/// category asks for, options a choice offers.
pub const MAX_REQUEST_CATEGORIES: usize = 50;
pub const MAX_FORM_FIELDS: usize = 30;
pub const MAX_ATTACHMENTS: usize = 10;
pub const MAX_CHOICES: usize = 30;
/// The longest name a field or an attachment is known by.
pub const MAX_FIELD_NAME: usize = 40;
/// The longest description of a category.
pub const DESCRIPTION: usize = 2_000;

impl RequestCategory {
    /// The category with its texts trimmed, when every bound holds: names
    /// unique and well formed, each attachment accepting at least one kind.
    pub fn checked(self) -> Result<RequestCategory, CollectivityError> {
        let invalid = || CollectivityError::InvalidRequestCategory;
        let name = text::required("a category's name", &self.name, text::NAME)?;
        let description = text::multiline(
            "a category's description",
            self.description.as_deref(),
            DESCRIPTION,
        )?;
        if self.fields.len() > MAX_FORM_FIELDS || self.attachments.len() > MAX_ATTACHMENTS {
            return Err(invalid());
        }
        let mut names: Vec<String> = Vec::new();
        let mut well_named = |name: &str| -> Result<String, CollectivityError> {
            let name = name.trim();
            let formed = !name.is_empty()
                && name.len() <= MAX_FIELD_NAME
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !formed || names.iter().any(|n| n == name) {
                return Err(invalid());
            }
            names.push(name.to_string());
            Ok(name.to_string())
        };
        let mut fields = Vec::with_capacity(self.fields.len());
        for field in self.fields {
            let kind = match field.kind {
                FieldKind::Choice { options } => {
                    let mut checked = Vec::with_capacity(options.len());
                    for option in &options {
                        let option = text::required("an option", option, text::NAME)?;
                        if checked.contains(&option) {
                            return Err(invalid());
                        }
                        checked.push(option);
                    }
                    if checked.is_empty() || checked.len() > MAX_CHOICES {
                        return Err(invalid());
                    }
                    FieldKind::Choice { options: checked }
                }
                kind => kind,
            };
            fields.push(FormField {
                name: well_named(&field.name)?,
                label: text::required("a field's label", &field.label, text::NAME)?,
                kind,
                required: field.required,
            });
        }
        let mut attachments = Vec::with_capacity(self.attachments.len());
        for attachment in self.attachments {
            let mut accepts = attachment.accepts;
            accepts.sort_unstable();
            accepts.dedup();
            if accepts.is_empty() {
                return Err(invalid());
            }
            attachments.push(AttachmentRule {
                name: well_named(&attachment.name)?,
                label: text::required("an attachment's label", &attachment.label, text::NAME)?,
                required: attachment.required,
                accepts,
            });
        }
        Ok(RequestCategory {
            id: self.id,
            name,
            description,
            fields,
            attachments,
            justifies_absence: self.justifies_absence,
            retired: self.retired,
        })
    }
}

impl Collectivity {
    /// The category `id`, retired or not.
    pub fn request_category(&self, id: Uuid) -> Option<&RequestCategory> {
        self.request_categories.iter().find(|c| c.id == id)
    }

    pub(super) fn check_request_category(
        &self,
        category: RequestCategory,
    ) -> Result<Option<RequestCategory>, CollectivityError> {
        let category = category.checked()?;
        match self.request_category(category.id) {
            Some(existing) if *existing == category => Ok(None),
            Some(_) => Ok(Some(category)),
            None if self.request_categories.len() >= MAX_REQUEST_CATEGORIES => {
                Err(CollectivityError::TooManyRequestCategories)
            }
            None => Ok(Some(category)),
        }
    }
}
