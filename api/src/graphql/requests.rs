//! Requests' resolvers ("Faire une demande"): a commune's agents define
//! the categories; a guardian sends a request with its files (the GraphQL
//! multipart request); the commune's agents list them, answer and close
//! them; the family and the commune's staff read them, and download their
//! files through signed links that expire.

#[allow(unused_imports)]
use super::*;

use async_graphql::{Enum, InputObject, SimpleObject, Upload};
use chrono::{DateTime, Utc};
use espace_famille_domain::collectivity::{AttachmentRule, FieldKind, FileKind, FormField, RequestCategory};
use espace_famille_domain::personal::Personal;
use espace_famille_domain::request::{Request, RequestStatus, StoredFile};
use espace_famille_projections::requests::{self, RequestFilter, RequestRow};

use crate::files::{self, Files, Received};
use crate::services::requests::{self as service, Handling, Submission};

fn files_of<'a>(ctx: &'a Context<'_>) -> &'a Arc<Files> {
    ctx.data_unchecked::<Arc<Files>>()
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "FileKind")]
pub enum FileKindGql {
    Pdf,
    Jpeg,
    Png,
    /// A phone's photo (HEIF/HEIC).
    Heic,
}

impl From<FileKindGql> for FileKind {
    fn from(kind: FileKindGql) -> Self {
        match kind {
            FileKindGql::Pdf => FileKind::Pdf,
            FileKindGql::Jpeg => FileKind::Jpeg,
            FileKindGql::Png => FileKind::Png,
            FileKindGql::Heic => FileKind::Heic,
        }
    }
}

impl From<FileKind> for FileKindGql {
    fn from(kind: FileKind) -> Self {
        match kind {
            FileKind::Pdf => FileKindGql::Pdf,
            FileKind::Jpeg => FileKindGql::Jpeg,
            FileKind::Png => FileKindGql::Png,
            FileKind::Heic => FileKindGql::Heic,
        }
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "FieldKind")]
pub enum FieldKindGql {
    Text,
    LongText,
    /// `YYYY-MM-DD`.
    Date,
    Number,
    /// `true` or `false`.
    YesNo,
    /// One of the field's options.
    Choice,
}

#[derive(InputObject)]
pub struct FormFieldInput {
    /// How the form names it: a-z, 0-9 and `_`.
    pub name: String,
    pub label: String,
    pub kind: FieldKindGql,
    #[graphql(default)]
    pub required: bool,
    /// For a `CHOICE`.
    #[graphql(default)]
    pub options: Vec<String>,
}

#[derive(InputObject)]
pub struct AttachmentRuleInput {
    pub name: String,
    pub label: String,
    #[graphql(default)]
    pub required: bool,
    pub accepts: Vec<FileKindGql>,
}

#[derive(InputObject)]
pub struct RequestCategoryInput {
    pub collectivity_id: Uuid,
    /// Chosen by the client; sent again, the category changes.
    pub id: Uuid,
    pub name: String,
    pub description: Option<String>,
    #[graphql(default)]
    pub fields: Vec<FormFieldInput>,
    #[graphql(default)]
    pub attachments: Vec<AttachmentRuleInput>,
    /// Requests of it name the absence they justify.
    #[graphql(default)]
    pub justifies_absence: bool,
    /// No new request of it.
    #[graphql(default)]
    pub retired: bool,
}

#[derive(SimpleObject)]
#[graphql(name = "FormField")]
pub struct FormFieldView {
    pub name: String,
    pub label: String,
    pub kind: FieldKindGql,
    pub required: bool,
    pub options: Vec<String>,
}

#[derive(SimpleObject)]
#[graphql(name = "AttachmentRule")]
pub struct AttachmentRuleView {
    pub name: String,
    pub label: String,
    pub required: bool,
    pub accepts: Vec<FileKindGql>,
}

#[derive(SimpleObject)]
#[graphql(name = "RequestCategory")]
pub struct RequestCategoryView {
    pub id: Uuid,
    pub name: String,
    pub description: Option<String>,
    pub fields: Vec<FormFieldView>,
    pub attachments: Vec<AttachmentRuleView>,
    pub justifies_absence: bool,
    pub retired: bool,
}

impl From<&RequestCategory> for RequestCategoryView {
    fn from(c: &RequestCategory) -> Self {
        RequestCategoryView {
            id: c.id,
            name: c.name.clone(),
            description: c.description.clone(),
            fields: c
                .fields
                .iter()
                .map(|f| {
                    let (kind, options) = match &f.kind {
                        FieldKind::Text => (FieldKindGql::Text, vec![]),
                        FieldKind::LongText => (FieldKindGql::LongText, vec![]),
                        FieldKind::Date => (FieldKindGql::Date, vec![]),
                        FieldKind::Number => (FieldKindGql::Number, vec![]),
                        FieldKind::YesNo => (FieldKindGql::YesNo, vec![]),
                        FieldKind::Choice { options } => (FieldKindGql::Choice, options.clone()),
                    };
                    FormFieldView {
                        name: f.name.clone(),
                        label: f.label.clone(),
                        kind,
                        required: f.required,
                        options,
                    }
                })
                .collect(),
            attachments: c
                .attachments
                .iter()
                .map(|a| AttachmentRuleView {
                    name: a.name.clone(),
                    label: a.label.clone(),
                    required: a.required,
                    accepts: a.accepts.iter().map(|k| (*k).into()).collect(),
                })
                .collect(),
            justifies_absence: c.justifies_absence,
            retired: c.retired,
        }
    }
}

#[derive(InputObject)]
pub struct RequestFieldInput {
    pub name: String,
    pub value: String,
}

#[derive(InputObject)]
pub struct RequestAttachmentInput {
    /// The category's attachment this file is.
    pub name: String,
    pub file: Upload,
}

#[derive(InputObject)]
pub struct SubmitRequestInput {
    /// Chosen by the client: sent again, the request is answered as stored.
    pub request_id: Uuid,
    pub family_id: Uuid,
    pub collectivity_id: Uuid,
    pub category_id: Uuid,
    pub message: String,
    #[graphql(default)]
    pub fields: Vec<RequestFieldInput>,
    #[graphql(default)]
    pub attachments: Vec<RequestAttachmentInput>,
    /// The reservation whose absence it justifies.
    pub reservation_id: Option<Uuid>,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(name = "RequestStatus")]
pub enum RequestStatusGql {
    Submitted,
    Answered,
    Closed,
}

impl RequestStatusGql {
    fn of(status: RequestStatus) -> Self {
        match status {
            RequestStatus::None | RequestStatus::Submitted => RequestStatusGql::Submitted,
            RequestStatus::Answered => RequestStatusGql::Answered,
            RequestStatus::Closed => RequestStatusGql::Closed,
        }
    }

    /// The state as the read model names it.
    fn named(name: &str) -> Self {
        [RequestStatusGql::Answered, RequestStatusGql::Closed]
            .into_iter()
            .find(|s| s.name() == name)
            .unwrap_or(RequestStatusGql::Submitted)
    }

    fn name(self) -> &'static str {
        match self {
            RequestStatusGql::Submitted => "submitted",
            RequestStatusGql::Answered => "answered",
            RequestStatusGql::Closed => "closed",
        }
    }
}

/// A file of a request, with its download link (for this caller, for a
/// while; read with the same session's bearer token).
#[derive(SimpleObject)]
#[graphql(name = "RequestFile")]
pub struct RequestFileView {
    /// The name it was sent under; none once its family was erased.
    pub file_name: Option<String>,
    pub kind: FileKindGql,
    pub size: u64,
    pub sha256: String,
    pub download_url: String,
}

#[derive(SimpleObject)]
#[graphql(name = "RequestAttachment")]
pub struct RequestAttachmentView {
    pub name: String,
    pub file: RequestFileView,
}

#[derive(SimpleObject)]
#[graphql(name = "RequestFieldValue")]
pub struct RequestFieldValueView {
    pub name: String,
    /// None once the family was erased.
    pub value: Option<String>,
}

#[derive(SimpleObject)]
#[graphql(name = "RequestAnswer")]
pub struct RequestAnswerView {
    pub message: Option<String>,
    pub file: Option<RequestFileView>,
}

#[derive(SimpleObject)]
#[graphql(name = "Request")]
pub struct RequestView {
    pub id: Uuid,
    pub family_id: Uuid,
    pub collectivity_id: Uuid,
    pub category_id: Uuid,
    pub category_name: String,
    pub status: RequestStatusGql,
    /// Once closed: whether the commune accepted it.
    pub accepted: Option<bool>,
    /// What the family wrote; none once it was erased.
    pub message: Option<String>,
    pub fields: Vec<RequestFieldValueView>,
    pub attachments: Vec<RequestAttachmentView>,
    pub answers: Vec<RequestAnswerView>,
    pub closing_message: Option<String>,
    pub reservation_id: Option<Uuid>,
}

fn known(value: &Personal<String>) -> Option<String> {
    value.known().cloned()
}

impl RequestView {
    fn of(id: Uuid, request: &Request, files: &Files, account_id: Uuid) -> Option<RequestView> {
        let submitted = request.submitted.as_ref()?;
        let now = Utc::now();
        let file = |f: &StoredFile| RequestFileView {
            file_name: known(&f.file_name),
            kind: f.kind.into(),
            size: f.size,
            sha256: f.sha256.clone(),
            download_url: files.link(account_id, id, &f.sha256, now),
        };
        Some(RequestView {
            id,
            family_id: submitted.family_id,
            collectivity_id: submitted.collectivity_id,
            category_id: submitted.category_id,
            category_name: submitted.category_name.clone(),
            status: RequestStatusGql::of(request.status),
            accepted: request.accepted,
            message: known(&submitted.message),
            fields: submitted
                .fields
                .iter()
                .map(|f| RequestFieldValueView {
                    name: f.name.clone(),
                    value: known(&f.value),
                })
                .collect(),
            attachments: submitted
                .attachments
                .iter()
                .map(|a| RequestAttachmentView {
                    name: a.name.clone(),
                    file: file(&a.file),
                })
                .collect(),
            answers: request
                .answers
                .iter()
                .map(|a| RequestAnswerView {
                    message: known(&a.message),
                    file: a.attachment.as_ref().map(file),
                })
                .collect(),
            closing_message: request.closing_message.as_ref().and_then(known),
            reservation_id: submitted.reservation_id,
        })
    }
}

/// A request in a list (what the read model keeps).
#[derive(SimpleObject)]
#[graphql(name = "RequestSummary")]
pub struct RequestSummaryView {
    pub id: Uuid,
    pub family_id: Uuid,
    pub collectivity_id: Uuid,
    pub category_id: Uuid,
    pub category_name: String,
    pub status: RequestStatusGql,
    pub accepted: Option<bool>,
    pub attachments: i32,
    pub answers: i32,
    pub reservation_id: Option<Uuid>,
    pub submitted_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<RequestRow> for RequestSummaryView {
    fn from(r: RequestRow) -> Self {
        RequestSummaryView {
            id: r.request_id,
            family_id: r.family_id,
            collectivity_id: r.collectivity_id,
            category_id: r.category_id,
            category_name: r.category_name,
            status: RequestStatusGql::named(&r.status),
            accepted: r.accepted,
            attachments: r.attachments,
            answers: r.answers,
            reservation_id: r.reservation_id,
            submitted_at: r.submitted_at,
            updated_at: r.updated_at,
        }
    }
}

/// A page of a commune's requests; `nextAfter` asks for the next one.
#[derive(SimpleObject)]
#[graphql(name = "RequestPage")]
pub struct RequestPageView {
    pub requests: Vec<RequestSummaryView>,
    pub next_after: Option<String>,
}

/// The most requests of one page.
const MAX_PAGE: i64 = 500;

/// Reads an upload: the file the multipart reader spooled, hashed and
/// recognised by its content.
async fn received(ctx: &Context<'_>, upload: &Upload) -> Result<Received, ApiError> {
    let value = upload
        .value(ctx)
        .map_err(|_| ApiError::Validation(say("api.upload_missing", &[])))?;
    let name = value.filename.clone();
    tokio::task::spawn_blocking(move || files::inspect(&name, value.content))
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .map_err(|e| ApiError::Internal(e.to_string()))
}

#[derive(Default)]
pub struct RequestQuery;

#[Object]
impl RequestQuery {
    /// The kinds of request a commune takes, with their forms; for anyone
    /// signed in (a family chooses among them).
    async fn request_categories(
        &self,
        ctx: &Context<'_>,
        collectivity_id: Uuid,
    ) -> Result<Vec<RequestCategoryView>> {
        caller(ctx).identity()?;
        let commune = commands(ctx).current_collectivity(collectivity_id).await?;
        Ok(commune.request_categories.iter().map(Into::into).collect())
    }

    /// A commune's requests for its agents and auditors, the oldest
    /// first: of a category, in a state, come between two instants.
    #[allow(clippy::too_many_arguments)]
    async fn requests(
        &self,
        ctx: &Context<'_>,
        collectivity_id: Uuid,
        category_id: Option<Uuid>,
        status: Option<RequestStatusGql>,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
        #[graphql(desc = "the `nextAfter` of the previous page")] after: Option<String>,
        #[graphql(default = 50)] first: i64,
    ) -> Result<RequestPageView> {
        caller(ctx).require_staff_reader_of(collectivity_id)?;
        if !(1..=MAX_PAGE).contains(&first) {
            return Err(ApiError::Validation(say("api.first_out_of_range", &[])).into());
        }
        let after = after
            .map(|cursor| {
                parse_cursor(&cursor).ok_or_else(|| ApiError::Validation(say("api.bad_cursor", &[])))
            })
            .transpose()?;
        let filter = RequestFilter {
            category_id,
            status: status.map(|s| s.name().to_string()),
            from,
            to,
            after,
        };
        let mut rows = requests::of_commune(&commands(ctx).pool, collectivity_id, &filter, first + 1)
            .await
            .map_err(ApiError::from)?;
        let more = rows.len() as i64 > first;
        rows.truncate(first as usize);
        let next_after = more
            .then(|| {
                rows.last()
                    .map(|r| format!("{}/{}", r.submitted_at.to_rfc3339(), r.request_id))
            })
            .flatten();
        Ok(RequestPageView {
            requests: rows.into_iter().map(Into::into).collect(),
            next_after,
        })
    }

    /// A family's requests, the latest first, for its guardians and the
    /// staff of its communes (each sees its own commune's).
    async fn family_requests(&self, ctx: &Context<'_>, family_id: Uuid) -> Result<Vec<RequestSummaryView>> {
        let caller = caller(ctx);
        let commands = commands(ctx);
        let family = commands.current_family(family_id).await?;
        let memberships = family.collectivities();
        caller.require_reader_of(family_id, &memberships)?;
        let visible = caller.visible_of(family_id, memberships);
        let rows = requests::of_family(&commands.pool, family_id, &visible)
            .await
            .map_err(ApiError::from)?;
        Ok(rows.into_iter().map(Into::into).collect())
    }

    /// One request, with what the family wrote and its files, for its
    /// family's guardians and its commune's agents and auditors.
    async fn request(&self, ctx: &Context<'_>, id: Uuid) -> Result<RequestView> {
        let caller = caller(ctx);
        let account_id = caller.identity()?.account_id;
        let hidden = || ApiError::NotFound(say("api.no_request", &[("id", &id)]));
        let request = crate::services::audit::as_of::<Request>(commands(ctx), id, None).await?;
        let submitted = request.submitted.as_ref().ok_or_else(hidden)?;
        caller
            .require_reader_of(submitted.family_id, &[submitted.collectivity_id])
            .map_err(|_| hidden())?;
        Ok(RequestView::of(id, &request, files_of(ctx), account_id).ok_or_else(hidden)?)
    }
}

/// `<RFC 3339 instant>/<uuid>`.
fn parse_cursor(cursor: &str) -> Option<(DateTime<Utc>, Uuid)> {
    let (at, id) = cursor.rsplit_once('/')?;
    Some((
        DateTime::parse_from_rfc3339(at).ok()?.with_timezone(&Utc),
        id.parse().ok()?,
    ))
}

#[derive(Default)]
pub struct RequestMutation;

#[Object]
impl RequestMutation {
    /// An agent defines a kind of request the commune takes (sent again
    /// with its id, it changes; `retired`, no new request of it).
    async fn define_request_category(
        &self,
        ctx: &Context<'_>,
        input: RequestCategoryInput,
    ) -> Result<RequestCategoryView> {
        let actor = caller(ctx).require_agent_of(input.collectivity_id)?;
        let category = RequestCategory {
            id: input.id,
            name: input.name,
            description: input.description,
            fields: input
                .fields
                .into_iter()
                .map(|f| FormField {
                    name: f.name,
                    label: f.label,
                    kind: match f.kind {
                        FieldKindGql::Text => FieldKind::Text,
                        FieldKindGql::LongText => FieldKind::LongText,
                        FieldKindGql::Date => FieldKind::Date,
                        FieldKindGql::Number => FieldKind::Number,
                        FieldKindGql::YesNo => FieldKind::YesNo,
                        FieldKindGql::Choice => FieldKind::Choice { options: f.options },
                    },
                    required: f.required,
                })
                .collect(),
            attachments: input
                .attachments
                .into_iter()
                .map(|a| AttachmentRule {
                    name: a.name,
                    label: a.label,
                    required: a.required,
                    accepts: a.accepts.into_iter().map(Into::into).collect(),
                })
                .collect(),
            justifies_absence: input.justifies_absence,
            retired: input.retired,
        };
        let commune = commands(ctx)
            .execute::<espace_famille_domain::collectivity::Collectivity>(
                input.collectivity_id,
                CollectivityCommand::DefineRequestCategory { category },
                &metadata(actor, None),
            )
            .await?;
        let defined = commune
            .request_category(input.id)
            .ok_or_else(|| ApiError::Internal("the category was not kept".into()))?;
        Ok(defined.into())
    }

    /// A guardian sends the family's request, with its files: sent as a
    /// GraphQL multipart request (each file an `Upload`). A file is taken
    /// for what its content is, whatever its name says; a file refused
    /// names itself and the rule, and nothing of the request is stored.
    async fn submit_request(&self, ctx: &Context<'_>, input: SubmitRequestInput) -> Result<RequestView> {
        let caller = caller(ctx);
        let actor = caller.require_parent_of(input.family_id)?;
        let mut attachments = Vec::with_capacity(input.attachments.len());
        for attachment in &input.attachments {
            attachments.push((attachment.name.clone(), received(ctx, &attachment.file).await?));
        }
        let files = files_of(ctx);
        let request = service::submit(
            commands(ctx),
            files,
            Submission {
                request_id: input.request_id,
                family_id: input.family_id,
                collectivity_id: input.collectivity_id,
                category_id: input.category_id,
                message: input.message,
                fields: input.fields.into_iter().map(|f| (f.name, f.value)).collect(),
                attachments,
                reservation_id: input.reservation_id,
            },
            &metadata(actor, None),
        )
        .await?;
        Ok(
            RequestView::of(input.request_id, &request, files, actor.account_id)
                .ok_or_else(|| ApiError::Internal("the request was not kept".into()))?,
        )
    }

    /// An agent of the request's commune answers it, with a file or not;
    /// the family gets an e-mail.
    async fn answer_request(
        &self,
        ctx: &Context<'_>,
        request_id: Uuid,
        message: String,
        file: Option<Upload>,
    ) -> Result<RequestView> {
        let attachment = match &file {
            Some(upload) => Some(received(ctx, upload).await?),
            None => None,
        };
        handle(ctx, request_id, Handling::Answer { message, attachment }).await
    }

    /// An agent of the request's commune closes it, accepted or not: an
    /// accepted justification justifies its absence.
    async fn close_request(
        &self,
        ctx: &Context<'_>,
        request_id: Uuid,
        accepted: bool,
        message: Option<String>,
    ) -> Result<RequestView> {
        handle(ctx, request_id, Handling::Close { accepted, message }).await
    }
}

async fn handle(ctx: &Context<'_>, request_id: Uuid, handling: Handling) -> Result<RequestView> {
    let caller = caller(ctx);
    let account_id = caller.identity()?.account_id;
    let files = files_of(ctx);
    let mail = &ctx.data_unchecked::<AuthSettings>().mail;
    let request = service::handle(commands(ctx), files, mail, request_id, handling, |submitted| {
        let actor = caller
            .require_agent_of(submitted.collectivity_id)
            .map_err(|_| ApiError::NotFound(say("api.no_request", &[("id", &request_id)])))?;
        Ok(metadata(actor, None))
    })
    .await?;
    Ok(RequestView::of(request_id, &request, files, account_id)
        .ok_or_else(|| ApiError::Internal("the request was not kept".into()))?)
}
