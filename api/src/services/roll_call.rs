//! The roll call (pointage): an agent's sheet of the children booked in a
//! unit on a day, and the record of who was there, for many children in
//! one transaction. A child there without a booking is an unexpected
//! presence; a correction is a new event, never an edit.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use chrono::{NaiveDate, Utc};
use espace_famille_domain::calendar::paris_today;
use espace_famille_domain::collectivity::Collectivity;
use espace_famille_domain::family::Family;
use espace_famille_domain::reservation::{
    reservation_id, Attendance, BookingContext, Reservation, ReservationError, RollCallEntry,
};
use espace_famille_projections::attendance::{self, ATTENDANCE};
use espace_famille_projections::store::{self, Metadata, StreamAppend};
use sqlx::Row;
use uuid::Uuid;

use super::write::{Failure, Work, Write};
use crate::commands::Commands;
use crate::error::ApiError;
use crate::i18n::say;

/// The most children one roll call records: a school's canteen.
pub const MAX_ROLL_CALL: usize = 500;

/// One child's mark on the sheet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mark {
    pub child_id: Uuid,
    pub present: bool,
}

/// What the roll call holds for one child once recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marked {
    pub child_id: Uuid,
    pub reservation_id: Uuid,
    pub attendance: Attendance,
    /// Whether this roll call wrote it (false: it was already recorded so).
    pub written: bool,
}

/// Records the roll call of `unit_id` (of `collectivity_id`) on `date`,
/// all or none: any refusal (a child unknown or of a family outside the
/// commune, a day not yet come, a child absent who was never booked)
/// refuses it all and names the child.
pub async fn record(
    commands: &Commands,
    collectivity_id: Uuid,
    unit_id: Uuid,
    date: NaiveDate,
    marks: Vec<Mark>,
    metadata: &Metadata,
) -> Result<Vec<Marked>, ApiError> {
    if marks.is_empty() || marks.len() > MAX_ROLL_CALL {
        return Err(ApiError::Validation(say(
            "api.roll_call_count",
            &[("max", &MAX_ROLL_CALL)],
        )));
    }
    let mut seen = HashSet::new();
    if let Some(mark) = marks.iter().find(|m| !seen.insert(m.child_id)) {
        return Err(ApiError::Validation(say(
            "api.child_twice",
            &[("id", &mark.child_id)],
        )));
    }
    let collectivity = unit_of(commands, collectivity_id, unit_id).await?;
    commands
        .write(RollCall {
            collectivity,
            unit_id,
            date,
            marks,
            metadata,
        })
        .await
}

/// The commune, once the unit is known to be one of its own.
async fn unit_of(
    commands: &Commands,
    collectivity_id: Uuid,
    unit_id: Uuid,
) -> Result<Arc<Collectivity>, ApiError> {
    let collectivity = commands.current_collectivity(collectivity_id).await?;
    if !collectivity.units.contains_key(&unit_id) {
        return Err(ApiError::NotFound(say("api.no_unit_here", &[("id", &unit_id)])));
    }
    Ok(collectivity)
}

struct RollCall<'a> {
    collectivity: Arc<Collectivity>,
    unit_id: Uuid,
    date: NaiveDate,
    marks: Vec<Mark>,
    metadata: &'a Metadata,
}

impl Write for RollCall<'_> {
    type Answer = Vec<Marked>;

    async fn attempt(&mut self, work: &mut Work<'_>) -> Result<Self::Answer, Failure> {
        let now = Utc::now();
        let today = paris_today(now);
        let ids: Vec<Uuid> = self
            .marks
            .iter()
            .map(|m| reservation_id(m.child_id, self.unit_id, self.date))
            .collect();
        let names: Vec<String> = ids.iter().map(Uuid::to_string).collect();
        let loaded = store::load_many::<Reservation>(&work.commands().pool, &names).await?;
        let refused = |child_id: Uuid, error: ReservationError| {
            let mut refusal = crate::error::Refusal::from(&error);
            refusal.message = crate::i18n::about_child(child_id, &refusal.message, crate::i18n::current());
            Failure::Refused(ApiError::Refused(refusal))
        };
        let mut decided = Vec::with_capacity(self.marks.len());
        let mut unexpected = Vec::new();
        for ((mark, id), loaded) in self.marks.iter().zip(&ids).zip(loaded) {
            if let Some(slot) = loaded.aggregate.slot {
                if slot.collectivity_id != self.collectivity.id.unwrap_or_default() {
                    return Err(refused(mark.child_id, ReservationError::OtherFamily));
                }
            }
            match loaded
                .aggregate
                .check_attendance(self.date, mark.present, today)
                .map_err(|e| refused(mark.child_id, e))?
            {
                RollCallEntry::Unchanged => decided.push((*mark, *id, loaded, None)),
                RollCallEntry::Record(event) => decided.push((*mark, *id, loaded, Some(event))),
                RollCallEntry::Unexpected => {
                    unexpected.push(decided.len());
                    decided.push((*mark, *id, loaded, None));
                }
            }
        }
        if !unexpected.is_empty() {
            let children: Vec<Uuid> = unexpected.iter().map(|&i| decided[i].0.child_id).collect();
            let families = families_of(work.commands(), &children).await?;
            for i in unexpected {
                let (mark, _, loaded, event) = &mut decided[i];
                let family = families
                    .get(&mark.child_id)
                    .cloned()
                    .ok_or_else(|| refused(mark.child_id, ReservationError::UnknownChild(mark.child_id)))?;
                let context = BookingContext {
                    now,
                    collectivity: self.collectivity.clone(),
                    family,
                    overdue_cents: 0,
                };
                *event = Some(
                    loaded
                        .aggregate
                        .check_unexpected_presence(mark.child_id, self.unit_id, self.date, &context)
                        .map_err(|e| refused(mark.child_id, e))?,
                );
            }
        }
        let mut streams = Vec::new();
        let mut answer = Vec::with_capacity(decided.len());
        for (mark, id, loaded, event) in decided {
            let mut reservation = loaded.aggregate;
            let written = event.is_some();
            if let Some(event) = event {
                streams.push(StreamAppend::new::<Reservation>(
                    id.to_string(),
                    loaded.version,
                    std::slice::from_ref(&event),
                )?);
                cqrs_es::Aggregate::apply(&mut reservation, event);
            }
            answer.push(Marked {
                child_id: mark.child_id,
                reservation_id: id,
                attendance: reservation
                    .attendance
                    .ok_or_else(|| ApiError::Internal("a roll call left no attendance".into()))?,
                written,
            });
        }
        if !streams.is_empty() {
            work.append(streams, self.metadata)?;
        }
        Ok(answer)
    }

    /// The sheet read again after the roll call shows it.
    fn reads(&self) -> Option<&'static [&'static str]> {
        Some(&[ATTENDANCE])
    }

    fn contended(&self) -> String {
        say("api.contended_roll_call", &[])
    }
}

/// The families of these children, by child; a child the directory does
/// not know is absent from the answer.
async fn families_of(commands: &Commands, children: &[Uuid]) -> Result<HashMap<Uuid, Arc<Family>>, ApiError> {
    let rows = sqlx::query("SELECT child_id, family_id FROM directory_children WHERE child_id = ANY($1)")
        .bind(children)
        .fetch_all(&commands.pool)
        .await
        .map_err(store::StoreError::from)?;
    let mut of_child = Vec::with_capacity(rows.len());
    for row in rows {
        let child_id: Uuid = row.try_get("child_id").map_err(store::StoreError::from)?;
        let family_id: Uuid = row.try_get("family_id").map_err(store::StoreError::from)?;
        of_child.push((child_id, family_id));
    }
    let families = load_families(commands, of_child.iter().map(|(_, family)| *family)).await?;
    Ok(of_child
        .into_iter()
        .filter_map(|(child, family)| Some((child, families.get(&family)?.clone())))
        .collect())
}

/// These families, in two statements whatever their number (their events,
/// their keys); a family that does not exist is left out.
async fn load_families(
    commands: &Commands,
    ids: impl Iterator<Item = Uuid>,
) -> Result<HashMap<Uuid, Arc<Family>>, ApiError> {
    let mut ids: Vec<Uuid> = ids.collect();
    ids.sort_unstable();
    ids.dedup();
    let mut conn = commands.pool.acquire().await.map_err(store::StoreError::from)?;
    let loaded = store::load_families(&mut conn, &ids).await?;
    Ok(ids
        .into_iter()
        .zip(loaded)
        .filter(|(_, loaded)| loaded.aggregate.exists())
        .map(|(id, loaded)| (id, Arc::new(loaded.aggregate)))
        .collect())
}

/// One line of the roll-call sheet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SheetLine {
    pub reservation_id: Uuid,
    pub family_id: Uuid,
    pub child_id: Uuid,
    /// Null once the family was erased.
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub school_class: Option<String>,
    /// The family declared an allergy or a PAI.
    pub needs_care: bool,
    /// Booked (false: there without a booking).
    pub booked: bool,
    /// The absence the family reported, if any (its state in the calendar).
    pub absence: Option<String>,
    pub attendance: Option<Attendance>,
}

/// The sheet of `unit_id` (of `collectivity_id`) on `date`: the children
/// booked, and those recorded there without a booking, by class and name.
pub async fn sheet(
    commands: &Commands,
    collectivity_id: Uuid,
    unit_id: Uuid,
    date: NaiveDate,
) -> Result<Vec<SheetLine>, ApiError> {
    unit_of(commands, collectivity_id, unit_id).await?;
    let lines = attendance::sheet(&commands.pool, unit_id, date).await?;
    let families = load_families(commands, lines.iter().map(|line| line.family_id)).await?;
    let mut sheet = Vec::with_capacity(lines.len());
    for line in lines {
        let family = families
            .get(&line.family_id)
            .ok_or_else(|| ApiError::Internal(format!("no family {} for a booking", line.family_id)))?;
        let child = family.children.get(&line.child_id);
        let known = |value: Option<&String>| value.cloned();
        sheet.push(SheetLine {
            reservation_id: line.reservation_id,
            family_id: line.family_id,
            child_id: line.child_id,
            first_name: known(child.and_then(|c| c.first_name.known())),
            last_name: known(child.and_then(|c| c.last_name.known())),
            school_class: child.and_then(|c| c.school_class.known().cloned().flatten()),
            needs_care: family
                .health
                .get(&line.child_id)
                .and_then(|h| h.known())
                .is_some_and(|h| h.needs_care()),
            booked: line.status.is_some(),
            absence: line
                .status
                .filter(|s| s.starts_with("absen"))
                .map(|s| s.to_string()),
            attendance: line.presence,
        });
    }
    sheet.sort_by(|a, b| {
        (&a.school_class, &a.last_name, &a.first_name, a.child_id).cmp(&(
            &b.school_class,
            &b.last_name,
            &b.first_name,
            b.child_id,
        ))
    });
    Ok(sheet)
}

/// The counts of `collectivity_id`'s units (or one of them) over a month.
pub async fn month_counts(
    commands: &Commands,
    collectivity_id: Uuid,
    unit_id: Option<Uuid>,
    first_day: NaiveDate,
    last_day: NaiveDate,
) -> Result<Vec<attendance::Counts>, ApiError> {
    let collectivity = commands.current_collectivity(collectivity_id).await?;
    let units: Vec<Uuid> = match unit_id {
        Some(unit_id) => {
            unit_of(commands, collectivity_id, unit_id).await?;
            vec![unit_id]
        }
        None => collectivity.units.keys().copied().collect(),
    };
    Ok(attendance::counts(&commands.pool, &units, first_day, last_day).await?)
}

/// A unit's headcount by day.
pub async fn headcount(
    commands: &Commands,
    collectivity_id: Uuid,
    unit_id: Uuid,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<attendance::Headcount>, ApiError> {
    unit_of(commands, collectivity_id, unit_id).await?;
    Ok(attendance::headcount(&commands.pool, unit_id, from, to).await?)
}
