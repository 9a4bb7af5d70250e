//! The invoices read model: every invoice of every régie with its state —
//! what a family has to pay ("Factures à payer") and has paid, and a
//! régie's invoices of a month with what is still unpaid.

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use espace_famille_domain::invoice::{Invoice, InvoiceEvent, InvoiceKind};
use sqlx::{PgConnection, PgPool, Row};
use uuid::Uuid;

use crate::calendar::parse_id;
use crate::engine::Projection;
use crate::store::{RecordedEvent, StoreError};

pub struct InvoicesProjection;

pub const INVOICES: &str = "invoices";

#[async_trait]
impl Projection for InvoicesProjection {
    fn name(&self) -> &'static str {
        INVOICES
    }

    fn tables(&self) -> &'static [&'static str] {
        &["invoices"]
    }

    fn aggregate_types(&self) -> Option<&'static [&'static str]> {
        Some(&["Invoice"])
    }

    fn metadata_of(&self) -> Option<&'static [&'static str]> {
        Some(&[])
    }

    async fn apply(&self, conn: &mut PgConnection, event: &RecordedEvent) -> Result<(), StoreError> {
        if event.aggregate_type != "Invoice" {
            return Ok(());
        }
        let id = parse_id(event)?;
        match event.decode::<Invoice>()? {
            InvoiceEvent::InvoiceIssued { issued } => {
                let month = match &issued.kind {
                    InvoiceKind::Monthly { month } => Some(month.clone()),
                    InvoiceKind::Prepayment { .. } => None,
                };
                sqlx::query(
                    "INSERT INTO invoices (invoice_id, collectivity_id, family_id, number, month, total_cents,
                                           status, issued_on, payable_online_until, due_on)
                     VALUES ($1, $2, $3, $4, $5, $6, 'issued', $7, $8, $9)",
                )
                .bind(id)
                .bind(issued.collectivity_id)
                .bind(issued.family_id)
                .bind(&issued.number)
                .bind(month)
                .bind(issued.total_cents)
                .bind(issued.issued_on)
                .bind(issued.payable_online_until)
                .bind(issued.due_on)
                .execute(&mut *conn)
                .await?;
            }
            InvoiceEvent::InvoicePaymentStarted { .. } | InvoiceEvent::InvoicePaymentReleased { .. } => {
                let started = event.event_type == "InvoicePaymentStarted";
                sqlx::query("UPDATE invoices SET payment_in_progress = $2 WHERE invoice_id = $1")
                    .bind(id)
                    .bind(started)
                    .execute(&mut *conn)
                    .await?;
            }
            InvoiceEvent::InvoicePaid { paid_at, .. } => {
                sqlx::query(
                    "UPDATE invoices SET status = 'paid', paid_at = $2, payment_in_progress = false
                     WHERE invoice_id = $1",
                )
                .bind(id)
                .bind(paid_at)
                .execute(&mut *conn)
                .await?;
            }
            InvoiceEvent::InvoiceCancelled { .. } => {
                sqlx::query("UPDATE invoices SET status = 'cancelled' WHERE invoice_id = $1")
                    .bind(id)
                    .execute(&mut *conn)
                    .await?;
            }
            InvoiceEvent::CreditNoteIssued { total_cents, .. } => {
                sqlx::query("UPDATE invoices SET credited_cents = credited_cents + $2 WHERE invoice_id = $1")
                    .bind(id)
                    .bind(total_cents)
                    .execute(&mut *conn)
                    .await?;
            }
        }
        Ok(())
    }
}

/// One invoice as the read model keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvoiceRow {
    pub invoice_id: Uuid,
    pub collectivity_id: Uuid,
    pub family_id: Uuid,
    pub number: String,
    pub month: Option<String>,
    pub total_cents: i64,
    pub credited_cents: i64,
    pub status: String,
    pub issued_on: NaiveDate,
    pub payable_online_until: NaiveDate,
    pub due_on: NaiveDate,
    pub paid_at: Option<DateTime<Utc>>,
    pub payment_in_progress: bool,
}

const COLUMNS: &str =
    "invoice_id, collectivity_id, family_id, number, month, total_cents, credited_cents, status,
                       issued_on, payable_online_until, due_on, paid_at, payment_in_progress";

fn row_of(row: &sqlx::postgres::PgRow) -> Result<InvoiceRow, StoreError> {
    Ok(InvoiceRow {
        invoice_id: row.try_get("invoice_id")?,
        collectivity_id: row.try_get("collectivity_id")?,
        family_id: row.try_get("family_id")?,
        number: row.try_get("number")?,
        month: row.try_get("month")?,
        total_cents: row.try_get("total_cents")?,
        credited_cents: row.try_get("credited_cents")?,
        status: row.try_get("status")?,
        issued_on: row.try_get("issued_on")?,
        payable_online_until: row.try_get("payable_online_until")?,
        due_on: row.try_get("due_on")?,
        paid_at: row.try_get("paid_at")?,
        payment_in_progress: row.try_get("payment_in_progress")?,
    })
}

/// A family's invoices at these communes, the oldest due first; only those
/// still to pay when `pending`.
pub async fn of_family(
    pool: &PgPool,
    family_id: Uuid,
    communes: &[Uuid],
    pending: bool,
) -> Result<Vec<InvoiceRow>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM invoices
         WHERE family_id = $1 AND collectivity_id = ANY($2) AND ($3 = false OR status = 'issued')
         ORDER BY due_on, number"
    ))
    .bind(family_id)
    .bind(communes)
    .bind(pending)
    .fetch_all(pool)
    .await?;
    rows.iter().map(row_of).collect()
}

/// A régie's invoices of a month, by number.
pub async fn of_month(
    pool: &PgPool,
    collectivity_id: Uuid,
    month: &str,
) -> Result<Vec<InvoiceRow>, StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM invoices WHERE collectivity_id = $1 AND month = $2 ORDER BY number"
    ))
    .bind(collectivity_id)
    .bind(month)
    .fetch_all(pool)
    .await?;
    rows.iter().map(row_of).collect()
}

/// What a régie's families still owe, every month together, in cents.
pub async fn unpaid_total(pool: &PgPool, collectivity_id: Uuid) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT coalesce(sum(total_cents), 0)::bigint FROM invoices WHERE collectivity_id = $1 AND status = 'issued'",
    )
    .bind(collectivity_id)
    .fetch_one(pool)
    .await?)
}

/// What `family_id` owes `collectivity_id` past its invoices' due dates
/// (before `today`), in cents.
pub async fn overdue(
    pool: &PgPool,
    family_id: Uuid,
    collectivity_id: Uuid,
    today: NaiveDate,
) -> Result<i64, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT coalesce(sum(total_cents), 0)::bigint FROM invoices
         WHERE family_id = $1 AND collectivity_id = $2 AND status = 'issued' AND due_on < $3",
    )
    .bind(family_id)
    .bind(collectivity_id)
    .bind(today)
    .fetch_one(pool)
    .await?)
}
