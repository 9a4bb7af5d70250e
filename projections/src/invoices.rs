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
        self.apply_batch(conn, std::slice::from_ref(event)).await
    }

    /// At most two statements per batch: an insert of the invoices issued
    /// in it, with what the rest of the batch did to them, and an update
    /// of the others. One statement an event cost a round trip each: a
    /// month billed and paid for 5,000 families is some 15,000 events.
    async fn apply_batch(&self, conn: &mut PgConnection, events: &[RecordedEvent]) -> Result<(), StoreError> {
        let Folded { issued, changed } = fold(events)?;
        insert(conn, &issued).await?;
        update(conn, &changed).await
    }
}

/// What a batch did to one invoice issued before it: each field the last
/// value an event of the batch gave it, `None` when none did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Change {
    status: Option<&'static str>,
    paid_at: Option<DateTime<Utc>>,
    payment_in_progress: Option<bool>,
    credited_cents: i64,
}

impl Change {
    fn apply(&mut self, event: &InvoiceEvent) {
        match event {
            // Issued twice is refused by the insert's key, as it was.
            InvoiceEvent::InvoiceIssued { .. } => {}
            InvoiceEvent::InvoicePaymentStarted { .. } => self.payment_in_progress = Some(true),
            InvoiceEvent::InvoicePaymentReleased { .. } => self.payment_in_progress = Some(false),
            InvoiceEvent::InvoicePaid { paid_at, .. } => {
                self.status = Some("paid");
                self.paid_at = Some(*paid_at);
                self.payment_in_progress = Some(false);
            }
            InvoiceEvent::InvoiceCancelled { .. } => self.status = Some("cancelled"),
            InvoiceEvent::CreditNoteIssued { total_cents, .. } => self.credited_cents += total_cents,
        }
    }
}

/// An invoice issued in the batch: its row as the rest of the batch left it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct NewInvoice {
    invoice_id: Uuid,
    issued: espace_famille_domain::invoice::Issued,
    change: Change,
}

/// A batch folded: the invoices it issued, and what it changed of the
/// others (never an unchanged one).
struct Folded {
    issued: Vec<NewInvoice>,
    changed: Vec<(Uuid, Change)>,
}

/// Folds a batch, in commit order, into the invoices it issued and what it
/// changed of the others. An event for an invoice never issued changes
/// nothing, as an update of a missing row does.
fn fold(events: &[RecordedEvent]) -> Result<Folded, StoreError> {
    let mut issued: Vec<NewInvoice> = Vec::new();
    let mut changed: Vec<(Uuid, Change)> = Vec::new();
    // Where each invoice's row is, the latest issue winning.
    let mut at: std::collections::HashMap<Uuid, Result<usize, usize>> = std::collections::HashMap::new();
    for event in events.iter().filter(|e| e.aggregate_type == "Invoice") {
        let id = parse_id(event)?;
        match event.decode::<Invoice>()? {
            InvoiceEvent::InvoiceIssued { issued: issue } => {
                // What came before the issue updated no row.
                if let Some(Err(index)) = at.get(&id) {
                    changed[*index].1 = Change::default();
                }
                at.insert(id, Ok(issued.len()));
                issued.push(NewInvoice {
                    invoice_id: id,
                    issued: issue,
                    change: Change::default(),
                });
            }
            event => match at.get(&id) {
                Some(Ok(index)) => issued[*index].change.apply(&event),
                Some(Err(index)) => changed[*index].1.apply(&event),
                None => {
                    let mut change = Change::default();
                    change.apply(&event);
                    at.insert(id, Err(changed.len()));
                    changed.push((id, change));
                }
            },
        }
    }
    changed.retain(|(_, change)| *change != Change::default());
    Ok(Folded { issued, changed })
}

async fn insert(conn: &mut PgConnection, issued: &[NewInvoice]) -> Result<(), StoreError> {
    if issued.is_empty() {
        return Ok(());
    }
    let column = |get: &dyn Fn(&NewInvoice) -> Uuid| issued.iter().map(get).collect::<Vec<_>>();
    let day = |get: &dyn Fn(&NewInvoice) -> NaiveDate| issued.iter().map(get).collect::<Vec<_>>();
    let numbers: Vec<&str> = issued.iter().map(|i| i.issued.number.as_str()).collect();
    let months: Vec<Option<&str>> = issued
        .iter()
        .map(|i| match &i.issued.kind {
            InvoiceKind::Monthly { month } => Some(month.as_str()),
            InvoiceKind::Prepayment { .. } => None,
        })
        .collect();
    let totals: Vec<i64> = issued.iter().map(|i| i.issued.total_cents).collect();
    let credited: Vec<i64> = issued.iter().map(|i| i.change.credited_cents).collect();
    let statuses: Vec<&str> = issued
        .iter()
        .map(|i| i.change.status.unwrap_or("issued"))
        .collect();
    let paid_at: Vec<Option<DateTime<Utc>>> = issued.iter().map(|i| i.change.paid_at).collect();
    let in_progress: Vec<bool> = issued
        .iter()
        .map(|i| i.change.payment_in_progress.unwrap_or(false))
        .collect();
    sqlx::query(&format!(
        "INSERT INTO invoices ({COLUMNS})
         SELECT * FROM UNNEST($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::bigint[],
                              $7::bigint[], $8::text[], $9::date[], $10::date[], $11::date[],
                              $12::timestamptz[], $13::bool[])"
    ))
    .bind(column(&|i| i.invoice_id))
    .bind(column(&|i| i.issued.collectivity_id))
    .bind(column(&|i| i.issued.family_id))
    .bind(&numbers)
    .bind(&months)
    .bind(&totals)
    .bind(&credited)
    .bind(&statuses)
    .bind(day(&|i| i.issued.issued_on))
    .bind(day(&|i| i.issued.payable_online_until))
    .bind(day(&|i| i.issued.due_on))
    .bind(&paid_at)
    .bind(&in_progress)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

async fn update(conn: &mut PgConnection, changed: &[(Uuid, Change)]) -> Result<(), StoreError> {
    if changed.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = changed.iter().map(|(id, _)| *id).collect();
    let statuses: Vec<Option<&str>> = changed.iter().map(|(_, c)| c.status).collect();
    let paid_at: Vec<Option<DateTime<Utc>>> = changed.iter().map(|(_, c)| c.paid_at).collect();
    let in_progress: Vec<Option<bool>> = changed.iter().map(|(_, c)| c.payment_in_progress).collect();
    let credited: Vec<i64> = changed.iter().map(|(_, c)| c.credited_cents).collect();
    sqlx::query(
        "UPDATE invoices i SET status = coalesce(u.status, i.status), paid_at = coalesce(u.paid_at, i.paid_at),
                payment_in_progress = coalesce(u.in_progress, i.payment_in_progress),
                credited_cents = i.credited_cents + u.credited
         FROM UNNEST($1::uuid[], $2::text[], $3::timestamptz[], $4::bool[], $5::bigint[])
              AS u(id, status, paid_at, in_progress, credited)
         WHERE i.invoice_id = u.id",
    )
    .bind(&ids)
    .bind(&statuses)
    .bind(&paid_at)
    .bind(&in_progress)
    .bind(&credited)
    .execute(&mut *conn)
    .await?;
    Ok(())
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
