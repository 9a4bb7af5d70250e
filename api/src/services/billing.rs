//! Monthly billing: a régie's month, one invoice per family, from the
//! bookings and the roll call (the calendar and attendance read models).
//!
//! Each day billed is a line that explains itself (see the domain's
//! `invoice` and `tariff`): booked (there, or no roll call said otherwise);
//! absent without an accepted reason (judged unjustified, or absent at the
//! roll call with no absence reported), at the tariff's share; there
//! without a booking, with the penalty. A justified absence is free, and
//! so is an absence reported that no agent judged before the month was
//! billed. Prepaid units are not billed monthly.
//!
//! A monthly invoice's id is derived from the commune, the family and the
//! month, so billing a month again finds its invoices issued and writes
//! nothing, and a run interrupted half-way and run again ends as one clean
//! run would. Invoices are written in groups, each group in one
//! transaction with the numbers it takes from the régie's sequence for the
//! year, under an advisory lock on that sequence: no gap, no duplicate,
//! from any number of servers.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use cqrs_es::Aggregate;
use espace_famille_domain::calendar::{paris_today, SchoolYear};
use espace_famille_domain::collectivity::{Billed, BillingMode, Collectivity};
use espace_famille_domain::family::Family;
use espace_famille_domain::invoice::{
    format_number, monthly_invoice_id, numbers_id, Invoice, InvoiceCommand, InvoiceKind, InvoiceLine,
    InvoiceNumbers, Issued, LineReason, NumbersCommand, MAX_LINES,
};
use espace_famille_domain::reservation::Attendance;
use espace_famille_projections::attendance::{self, BillableDay, ATTENDANCE};
use espace_famille_projections::calendar::CALENDAR;
use espace_famille_projections::store::{self, Metadata, StreamAppend};
use uuid::Uuid;

use crate::commands::Commands;
use crate::error::ApiError;
use crate::i18n::say;
use crate::services::calendar::month_bounds;
use crate::services::{Failure, Work, Write};

/// How many invoices one transaction issues.
pub const GROUP: usize = 200;

/// How long an invoice may be paid online, and is due, after its issue.
const PAYABLE_DAYS: i64 = 30;

/// The first key of the numbers' advisory locks.
const NUMBERS_LOCK: i32 = 4245;

/// What a billing run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MonthBilled {
    /// Families with something to pay that month.
    pub families: usize,
    /// Invoices this run issued.
    pub issued: usize,
    /// Invoices found already issued (by an earlier run).
    pub already: usize,
    /// The month's total over every family's invoice, in cents.
    pub total_cents: i64,
}

/// One family's invoice, ready to issue.
pub(crate) struct Draft {
    pub id: Uuid,
    pub family_id: Uuid,
    pub kind: InvoiceKind,
    pub lines: Vec<InvoiceLine>,
    pub payable_online_until: NaiveDate,
    pub due_on: NaiveDate,
    /// A prepayment's: when its bookings are released if it is not paid.
    pub expires_at: Option<DateTime<Utc>>,
    /// The prepaid days it credits, by the prepayment invoice that was
    /// paid for them: each gets its credit note in the same transaction.
    pub refunds: Vec<(Uuid, Vec<InvoiceLine>)>,
}

/// Bills `collectivity_id`'s month (`2027-01`), `group` invoices a
/// transaction.
pub async fn bill_month(
    commands: &Commands,
    collectivity_id: Uuid,
    month: &str,
    group: usize,
    metadata: &Metadata,
) -> Result<MonthBilled, ApiError> {
    let (first, last) = month_bounds(month)?;
    let month = first.format("%Y-%m").to_string();
    // Billing reads the bookings and the roll call: every committed event
    // must be in them.
    if !commands.wait_for_everything(&[CALENDAR, ATTENDANCE]).await? {
        return Err(ApiError::Unavailable(say("api.calendar_catching_up", &[])));
    }
    let collectivity = commands.current_collectivity(collectivity_id).await?;
    let units: Vec<Uuid> = collectivity
        .units
        .values()
        .filter(|u| u.billing == BillingMode::Monthly)
        .map(|u| u.id)
        .collect();
    let days = attendance::billable_days(&commands.pool, &units, first, last).await?;
    let mut by_family: BTreeMap<Uuid, Vec<BillableDay>> = BTreeMap::new();
    for day in days {
        by_family.entry(day.family_id).or_default().push(day);
    }
    let mut credits = credits_up_to(commands, &collectivity, last).await?;
    for family_id in credits.keys() {
        by_family.entry(*family_id).or_default();
    }
    let family_ids: Vec<Uuid> = by_family.keys().copied().collect();
    let families: HashMap<Uuid, Family> = {
        let mut conn = commands.pool.acquire().await?;
        let loaded = store::load_families(&mut conn, &family_ids).await?;
        family_ids
            .iter()
            .copied()
            .zip(loaded.into_iter().map(|l| l.aggregate))
            .collect()
    };
    // Every line priced before anything is issued: a day without a tariff
    // stops the run, saying which.
    let mut drafts = Vec::new();
    let issued_on = paris_today(Utc::now());
    for (family_id, days) in by_family {
        let family = families.get(&family_id).cloned().unwrap_or_default();
        let mut lines = lines_of(&collectivity, &family, &days)?;
        // Credits for prepaid days cancelled, as long as the invoice still
        // owes something; otherwise they wait for a later month.
        let refunds = credits.remove(&family_id).unwrap_or_default();
        let charged: i64 = lines.iter().map(|l| l.amount_cents).sum();
        let credited: i64 = refunds.iter().flat_map(|(_, l)| l).map(|l| l.amount_cents).sum();
        let refunds = if charged + credited >= 0 {
            refunds
        } else {
            Vec::new()
        };
        lines.extend(refunds.iter().flat_map(|(_, l)| l.iter().cloned()));
        if lines.is_empty() || (lines.iter().all(|l| l.amount_cents == 0)) {
            continue;
        }
        if lines.len() > MAX_LINES {
            return Err(ApiError::Validation(say(
                "api.invoice_too_long",
                &[("family", &family_id)],
            )));
        }
        drafts.push(Draft {
            id: monthly_invoice_id(collectivity_id, family_id, &month),
            family_id,
            kind: InvoiceKind::Monthly { month: month.clone() },
            lines,
            payable_online_until: issued_on + Duration::days(PAYABLE_DAYS),
            due_on: issued_on + Duration::days(PAYABLE_DAYS),
            expires_at: None,
            refunds,
        });
    }
    let mut billed = MonthBilled {
        families: drafts.len(),
        total_cents: drafts.iter().flat_map(|d| &d.lines).map(|l| l.amount_cents).sum(),
        ..MonthBilled::default()
    };
    for chunk in drafts.chunks(group.max(1)) {
        let issued = issue(commands, collectivity_id, chunk, issued_on, metadata).await?;
        billed.issued += issued;
        billed.already += chunk.len() - issued;
    }
    Ok(billed)
}

/// What the family owes the commune past due, where the commune has a
/// debt rule (otherwise 0, and nothing is read).
pub async fn overdue_for(
    commands: &Commands,
    family_id: Uuid,
    collectivity: &Collectivity,
) -> Result<i64, ApiError> {
    match (collectivity.payment_rules.debt_limit_cents, collectivity.id) {
        (Some(_), Some(id)) => Ok(espace_famille_projections::invoices::overdue(
            &commands.pool,
            family_id,
            id,
            paris_today(Utc::now()),
        )
        .await?),
        _ => Ok(0),
    }
}

/// A régie's invoices of a month and their lines, as the commune's
/// accounting software imports them: CSV, `;`-separated, a line per
/// invoice line, amounts in cents, the header in French.
pub async fn month_csv(commands: &Commands, collectivity_id: Uuid, month: &str) -> Result<String, ApiError> {
    let (first, _) = month_bounds(month)?;
    let month = first.format("%Y-%m").to_string();
    let rows =
        espace_famille_projections::invoices::of_month(&commands.pool, collectivity_id, &month).await?;
    let ids: Vec<String> = rows.iter().map(|r| r.invoice_id.to_string()).collect();
    let invoices = store::load_many::<Invoice>(&commands.pool, &ids).await?;
    let family_ids: Vec<Uuid> = rows.iter().map(|r| r.family_id).collect();
    let families = {
        let mut conn = commands.pool.acquire().await?;
        store::load_families(&mut conn, &family_ids).await?
    };
    let collectivity = commands.current_collectivity(collectivity_id).await?;
    let mut out = csv::WriterBuilder::new().delimiter(b';').from_writer(Vec::new());
    let failed = |e: csv::Error| ApiError::Internal(format!("csv: {e}"));
    out.write_record([
        "numero_facture",
        "statut",
        "famille",
        "reference_famille",
        "enfant",
        "unite",
        "jour",
        "motif",
        "quotient_familial",
        "tranche",
        "prix_unitaire_centimes",
        "rang",
        "reduction_pct",
        "part_pct",
        "penalite_centimes",
        "montant_centimes",
    ])
    .map_err(failed)?;
    for ((row, invoice), family) in rows.iter().zip(&invoices).zip(&families) {
        let Some(issued) = &invoice.aggregate.issued else {
            continue;
        };
        let reference = family
            .aggregate
            .memberships
            .get(&collectivity_id)
            .cloned()
            .unwrap_or_default();
        for line in &issued.lines {
            let unit = collectivity
                .units
                .get(&line.unit_id)
                .map_or_else(|| line.unit_id.to_string(), |u| u.name.clone());
            let reason = match &line.reason {
                LineReason::Billed(Billed::Booked) => "reserve",
                LineReason::Billed(Billed::UnjustifiedAbsence) => "absence_non_justifiee",
                LineReason::Billed(Billed::UnexpectedPresence) => "presence_sans_reservation",
                LineReason::Credit { .. } => "avoir",
            };
            let p = &line.priced;
            let bracket = match p.bracket_up_to {
                Some(up_to) => format!("{}-{up_to}", p.bracket_from),
                None => format!("{}+", p.bracket_from),
            };
            out.write_record([
                issued.number.clone(),
                row.status.clone(),
                row.family_id.to_string(),
                reference.clone(),
                line.child_id.to_string(),
                unit,
                line.date.to_string(),
                reason.to_string(),
                p.quotient.map(|q| q.to_string()).unwrap_or_default(),
                bracket,
                p.unit_price_cents.to_string(),
                p.rank.to_string(),
                p.reduction_percent.to_string(),
                p.share_percent.to_string(),
                p.penalty_cents.to_string(),
                line.amount_cents.to_string(),
            ])
            .map_err(failed)?;
        }
    }
    let bytes = out
        .into_inner()
        .map_err(|e| ApiError::Internal(format!("csv: {e}")))?;
    String::from_utf8(bytes).map_err(|e| ApiError::Internal(format!("csv: {e}")))
}

/// A family's billed days as lines, priced by the tariff of each day.
fn lines_of(
    collectivity: &Collectivity,
    family: &Family,
    days: &[BillableDay],
) -> Result<Vec<InvoiceLine>, ApiError> {
    let mut lines = Vec::with_capacity(days.len());
    for day in days {
        let Some(billed) = billed_as(day) else {
            continue;
        };
        lines.push(line_for(
            collectivity,
            family,
            (day.child_id, day.unit_id, day.day),
            day.reservation_id,
            billed,
        )?);
    }
    Ok(lines)
}

/// The line of one child's day in one unit, priced by that day's tariff
/// for the family's quotient familial and the child's rank.
pub(crate) fn line_for(
    collectivity: &Collectivity,
    family: &Family,
    (child_id, unit_id, date): (Uuid, Uuid, NaiveDate),
    reservation_id: Uuid,
    billed: Billed,
) -> Result<InvoiceLine, ApiError> {
    let commune = collectivity.id.unwrap_or_default();
    let unit = collectivity.units.get(&unit_id);
    let Some(tariff) = collectivity.tariff_on(unit_id, date) else {
        let name = unit.map_or_else(|| unit_id.to_string(), |u| u.name.clone());
        return Err(ApiError::Validation(say(
            "api.no_tariff",
            &[
                ("unit", &name),
                ("day", &crate::i18n::day(date, crate::i18n::current())),
            ],
        )));
    };
    let service = unit.map(|u| u.service_id).unwrap_or_default();
    let rank = family.rank_of(child_id, commune, service, SchoolYear::of(date));
    let priced = tariff.price(family.quotient_on(commune, date), rank, billed);
    Ok(InvoiceLine {
        child_id,
        unit_id,
        date,
        reservation_id,
        reason: LineReason::Billed(billed),
        amount_cents: priced.amount_cents,
        priced,
    })
}

/// The credits owed to the commune's families for prepaid days up to
/// `last` that were paid and then cancelled (an approved cancellation, a
/// day the commune closed), not credited yet: by family, by the invoice
/// that was paid for them.
async fn credits_up_to(
    commands: &Commands,
    collectivity: &Collectivity,
    last: NaiveDate,
) -> Result<BTreeMap<Uuid, Vec<(Uuid, Vec<InvoiceLine>)>>, ApiError> {
    let prepaid: Vec<Uuid> = collectivity
        .units
        .values()
        .filter(|u| u.billing == BillingMode::Prepaid)
        .map(|u| u.id)
        .collect();
    let mut credits: BTreeMap<Uuid, BTreeMap<Uuid, Vec<InvoiceLine>>> = BTreeMap::new();
    if prepaid.is_empty() {
        return Ok(BTreeMap::new());
    }
    let cancelled =
        espace_famille_projections::calendar::cancelled_up_to(&commands.pool, &prepaid, last).await?;
    let ids: Vec<String> = cancelled.iter().map(|(id, _)| id.to_string()).collect();
    let reservations =
        store::load_many::<espace_famille_domain::reservation::Reservation>(&commands.pool, &ids).await?;
    let mut invoices: HashMap<Uuid, Invoice> = HashMap::new();
    for ((reservation_id, family_id), reservation) in cancelled.iter().zip(reservations) {
        let Some(paid_by) = reservation.aggregate.paid_by else {
            continue;
        };
        if let std::collections::hash_map::Entry::Vacant(entry) = invoices.entry(paid_by) {
            let loaded = store::load_many::<Invoice>(&commands.pool, &[paid_by.to_string()]).await?;
            entry.insert(loaded.into_iter().next().unwrap_or_default().aggregate);
        }
        let invoice = &invoices[&paid_by];
        let Some(issued) = &invoice.issued else {
            continue;
        };
        if invoice.status != espace_famille_domain::invoice::InvoiceStatus::Paid
            || invoice.refunded.contains(reservation_id)
        {
            continue;
        }
        let Some(line) = issued
            .lines
            .iter()
            .find(|l| l.reservation_id == *reservation_id && l.amount_cents > 0)
        else {
            continue;
        };
        credits
            .entry(*family_id)
            .or_default()
            .entry(paid_by)
            .or_default()
            .push(InvoiceLine {
                reason: LineReason::Credit {
                    invoice_number: issued.number.clone(),
                },
                amount_cents: -line.amount_cents,
                ..line.clone()
            });
    }
    Ok(credits
        .into_iter()
        .map(|(family, by_invoice)| (family, by_invoice.into_iter().collect()))
        .collect())
}

/// How a day is billed, if it is.
fn billed_as(day: &BillableDay) -> Option<Billed> {
    match (day.status.as_deref(), day.presence) {
        (_, Some(Attendance::Unexpected)) => Some(Billed::UnexpectedPresence),
        (Some("absent_unjustified"), _) => Some(Billed::UnjustifiedAbsence),
        (Some("confirmed" | "cancellation_requested"), Some(Attendance::Absent)) => {
            Some(Billed::UnjustifiedAbsence)
        }
        (Some("confirmed" | "cancellation_requested"), _) => Some(Billed::Booked),
        // Justified, or reported and not judged: free.
        _ => None,
    }
}

/// Issues the drafts not issued yet, with their numbers, in one
/// transaction: how many it issued.
pub(crate) async fn issue(
    commands: &Commands,
    collectivity_id: Uuid,
    drafts: &[Draft],
    issued_on: NaiveDate,
    metadata: &Metadata,
) -> Result<usize, ApiError> {
    commands
        .write(IssueGroup {
            collectivity_id,
            drafts,
            issued_on,
            metadata,
        })
        .await
}

/// One group of invoices, with their numbers, in one transaction.
struct IssueGroup<'a> {
    collectivity_id: Uuid,
    drafts: &'a [Draft],
    issued_on: NaiveDate,
    metadata: &'a Metadata,
}

impl Write for IssueGroup<'_> {
    /// How many it issued (the others were issued already).
    type Answer = usize;

    async fn attempt(&mut self, work: &mut Work<'_>) -> Result<usize, Failure> {
        let year = self.issued_on.year();
        let numbers = numbers_id(self.collectivity_id, year);
        let commands = work.commands();
        let conn = work.transaction().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1, hashtext($2))")
            .bind(NUMBERS_LOCK)
            .bind(numbers.to_string())
            .execute(&mut *conn)
            .await?;
        let ids: Vec<String> = self.drafts.iter().map(|d| d.id.to_string()).collect();
        let invoices = store::load_many::<Invoice>(&commands.pool, &ids).await?;
        let new: Vec<&Draft> = self
            .drafts
            .iter()
            .zip(&invoices)
            .filter(|(_, loaded)| loaded.version == 0)
            .map(|(draft, _)| draft)
            .collect();
        if new.is_empty() {
            return Ok(0);
        }
        let given = store::load_many::<InvoiceNumbers>(&commands.pool, &[numbers.to_string()])
            .await?
            .pop()
            .unwrap_or_default();
        let from = given.aggregate.given;
        let mut streams = Vec::with_capacity(new.len() + 1);
        let mut numbered = Vec::with_capacity(new.len());
        for (n, draft) in new.iter().enumerate() {
            let number = format_number(year, from + n as u32 + 1);
            let total = draft.lines.iter().map(|l| l.amount_cents).sum();
            let issued = Issued {
                collectivity_id: self.collectivity_id,
                family_id: draft.family_id,
                number,
                kind: draft.kind.clone(),
                lines: draft.lines.clone(),
                total_cents: total,
                issued_on: self.issued_on,
                payable_online_until: draft.payable_online_until,
                due_on: draft.due_on,
            };
            let events = decided::<Invoice>(InvoiceCommand::Issue { issued }).await?;
            streams.push(StreamAppend::new::<Invoice>(draft.id.to_string(), 0, &events)?);
            numbered.push(draft.id);
        }
        let mut sequence = given.aggregate.clone();
        let sink = cqrs_es::event_sink::EventSink::default();
        sequence
            .handle(NumbersCommand::Give { invoices: numbered }, &(), &sink)
            .await
            .map_err(|e| Failure::Refused(ApiError::Internal(e.to_string())))?;
        let numbers_events = sink.collect().await;
        streams.push(StreamAppend::new::<InvoiceNumbers>(
            numbers.to_string(),
            given.version,
            &numbers_events,
        )?);
        // The credit notes of the prepaid days it credits.
        for draft in &new {
            for (paid, lines) in &draft.refunds {
                let credit = InvoiceCommand::IssueCreditNote { lines: lines.clone() };
                work.execute::<Invoice>(*paid, credit, &(), self.metadata).await?;
            }
        }
        let conn = work.transaction().await?;
        // A prepayment's bookings are released if it is not paid in time.
        for draft in &new {
            if let Some(expires_at) = draft.expires_at {
                sqlx::query(
                    "INSERT INTO prepayments (invoice_id, collectivity_id, family_id, expires_at)
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(draft.id)
                .bind(self.collectivity_id)
                .bind(draft.family_id)
                .bind(expires_at)
                .execute(&mut *conn)
                .await?;
            }
        }
        work.append(streams, self.metadata)?;
        Ok(new.len())
    }

    /// The agent's next screen reads the invoices.
    fn reads(&self) -> Option<&'static [&'static str]> {
        Some(&[espace_famille_projections::invoices::INVOICES])
    }
}

/// The events a command on a new aggregate records.
async fn decided<A: Aggregate<Services = ()>>(command: A::Command) -> Result<Vec<A::Event>, Failure>
where
    A::Error: std::fmt::Display,
{
    let mut aggregate = A::default();
    let sink = cqrs_es::event_sink::EventSink::default();
    aggregate
        .handle(command, &(), &sink)
        .await
        .map_err(|e| Failure::Refused(ApiError::Internal(e.to_string())))?;
    Ok(sink.collect().await)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(status: Option<&str>, presence: Option<Attendance>) -> BillableDay {
        BillableDay {
            reservation_id: Uuid::from_u128(1),
            family_id: Uuid::from_u128(2),
            child_id: Uuid::from_u128(3),
            unit_id: Uuid::from_u128(4),
            day: NaiveDate::from_ymd_opt(2027, 1, 4).unwrap(),
            status: status.map(str::to_string),
            presence,
        }
    }

    #[test]
    fn a_day_is_billed_by_its_booking_and_what_the_roll_call_saw() {
        use Attendance::*;
        let cases = [
            (Some("confirmed"), None, Some(Billed::Booked)),
            (Some("confirmed"), Some(Present), Some(Billed::Booked)),
            (Some("cancellation_requested"), None, Some(Billed::Booked)),
            (Some("confirmed"), Some(Absent), Some(Billed::UnjustifiedAbsence)),
            (Some("absent_unjustified"), None, Some(Billed::UnjustifiedAbsence)),
            (Some("absent_justified"), Some(Absent), None),
            (Some("absence_reported"), Some(Absent), None),
            (None, Some(Unexpected), Some(Billed::UnexpectedPresence)),
            (
                Some("cancelled"),
                Some(Unexpected),
                Some(Billed::UnexpectedPresence),
            ),
        ];
        for (status, presence, expected) in cases {
            assert_eq!(
                billed_as(&day(status, presence)),
                expected,
                "{status:?} {presence:?}"
            );
        }
    }
}
