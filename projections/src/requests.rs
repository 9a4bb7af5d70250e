//! The requests read model: every family's request to its commune, with
//! what the agents' work queue filters and sorts by (commune, category,
//! status, the day it came) and what the family's list shows. Nothing a
//! family wrote is kept here (it is personal, read from the request's
//! events): only ids, the category's name, the state and its instants.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use espace_famille_domain::request::{Request, RequestEvent};
use sqlx::{PgConnection, PgPool, Row};
use uuid::Uuid;

use crate::calendar::parse_id;
use crate::engine::Projection;
use crate::store::{RecordedEvent, StoreError};

pub struct RequestsProjection;

pub const REQUESTS: &str = "requests";

#[async_trait]
impl Projection for RequestsProjection {
    fn name(&self) -> &'static str {
        REQUESTS
    }

    fn tables(&self) -> &'static [&'static str] {
        &["requests"]
    }

    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        Some(&["Request"])
    }

    fn metadata_of(&self) -> Option<&'static [&'static str]> {
        Some(&[])
    }

    async fn apply(&self, conn: &mut PgConnection, event: &RecordedEvent) -> Result<(), StoreError> {
        if event.aggregate_type != "Request" {
            return Ok(());
        }
        let id = parse_id(event)?;
        let at = event.recorded_at;
        match event.decode::<Request>()? {
            RequestEvent::RequestSubmitted { submitted } => {
                sqlx::query(
                    "INSERT INTO requests (request_id, collectivity_id, family_id, category_id, category_name,
                                           reservation_id, attachments, status, submitted_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, 'submitted', $8, $8)",
                )
                .bind(id)
                .bind(submitted.collectivity_id)
                .bind(submitted.family_id)
                .bind(submitted.category_id)
                .bind(&submitted.category_name)
                .bind(submitted.reservation_id)
                .bind(submitted.attachments.len() as i32)
                .bind(at)
                .execute(&mut *conn)
                .await?;
            }
            RequestEvent::RequestAnswered { .. } => {
                sqlx::query(
                    "UPDATE requests SET status = 'answered', answers = answers + 1, updated_at = $2
                     WHERE request_id = $1",
                )
                .bind(id)
                .bind(at)
                .execute(&mut *conn)
                .await?;
            }
            RequestEvent::RequestClosed { accepted, .. } => {
                sqlx::query(
                    "UPDATE requests SET status = 'closed', accepted = $2, updated_at = $3 WHERE request_id = $1",
                )
                .bind(id)
                .bind(accepted)
                .bind(at)
                .execute(&mut *conn)
                .await?;
            }
        }
        Ok(())
    }
}

/// One request as the read model keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestRow {
    pub request_id: Uuid,
    pub collectivity_id: Uuid,
    pub family_id: Uuid,
    pub category_id: Uuid,
    pub category_name: String,
    pub reservation_id: Option<Uuid>,
    pub attachments: i32,
    pub answers: i32,
    /// `submitted`, `answered` or `closed`.
    pub status: String,
    pub accepted: Option<bool>,
    pub submitted_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

const COLUMNS: &str = "request_id, collectivity_id, family_id, category_id, category_name, reservation_id,
                       attachments, answers, status, accepted, submitted_at, updated_at";

fn row_of(row: &sqlx::postgres::PgRow) -> Result<RequestRow, StoreError> {
    Ok(RequestRow {
        request_id: row.try_get("request_id")?,
        collectivity_id: row.try_get("collectivity_id")?,
        family_id: row.try_get("family_id")?,
        category_id: row.try_get("category_id")?,
        category_name: row.try_get("category_name")?,
        reservation_id: row.try_get("reservation_id")?,
        attachments: row.try_get("attachments")?,
        answers: row.try_get("answers")?,
        status: row.try_get("status")?,
        accepted: row.try_get("accepted")?,
        submitted_at: row.try_get("submitted_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// What an agent's queue asks for: one commune's requests, of a category,
/// in a state, that came in a range of instants; the oldest first, paged
/// by (submitted_at, request_id).
#[derive(Debug, Clone, Default)]
pub struct RequestFilter {
    pub category_id: Option<Uuid>,
    pub status: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub after: Option<(DateTime<Utc>, Uuid)>,
}

/// A page of commune `collectivity_id`'s requests.
pub async fn of_commune(
    pool: &PgPool,
    collectivity_id: Uuid,
    filter: &RequestFilter,
    first: i64,
) -> Result<Vec<RequestRow>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM requests
         WHERE collectivity_id = $1
           AND ($2::uuid IS NULL OR category_id = $2)
           AND ($3::text IS NULL OR status = $3)
           AND ($4::timestamptz IS NULL OR submitted_at >= $4)
           AND ($5::timestamptz IS NULL OR submitted_at < $5)
           AND ($6::timestamptz IS NULL OR (submitted_at, request_id) > ($6, $7))
         ORDER BY submitted_at, request_id
         LIMIT $8"
    ))
    .bind(collectivity_id)
    .bind(filter.category_id)
    .bind(&filter.status)
    .bind(filter.from)
    .bind(filter.to)
    .bind(filter.after.map(|a| a.0))
    .bind(filter.after.map(|a| a.1))
    .bind(first)
    .fetch_all(pool)
    .await?;
    rows.iter().map(row_of).collect()
}

/// A family's requests at these communes, the latest first.
pub async fn of_family(
    pool: &PgPool,
    family_id: Uuid,
    communes: &[Uuid],
) -> Result<Vec<RequestRow>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM requests WHERE family_id = $1 AND collectivity_id = ANY($2)
         ORDER BY submitted_at DESC, request_id LIMIT 500"
    ))
    .bind(family_id)
    .bind(communes)
    .fetch_all(pool)
    .await?;
    rows.iter().map(row_of).collect()
}
