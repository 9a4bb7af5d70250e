//! Attendance's resolvers: the roll-call sheet of a unit's day, its record
//! in one mutation, the month's counts billing reads and the kitchen's
//! headcount.

#[allow(unused_imports)]
use super::*;

use async_graphql::{Enum, InputObject, SimpleObject};
use espace_famille_domain::reservation::Attendance;
use espace_famille_projections::attendance::{Counts, Headcount};

use crate::services::roll_call::{self, Mark, Marked, SheetLine};

/// What the roll call recorded of a child.
#[derive(Enum, Clone, Copy, PartialEq, Eq)]
#[graphql(remote = "Attendance")]
pub enum AttendanceView {
    /// Booked and there.
    Present,
    /// Not there (or recorded there by mistake, corrected).
    Absent,
    /// There without a booking.
    Unexpected,
}

/// One child on a roll-call sheet.
#[derive(SimpleObject)]
#[graphql(name = "RollCallLine")]
pub struct RollCallLineView {
    pub reservation_id: Uuid,
    pub family_id: Uuid,
    pub child_id: Uuid,
    /// Null once the family was erased.
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub school_class: Option<String>,
    /// The family declared an allergy or a PAI: see the child's file.
    pub needs_care: bool,
    /// False for a child recorded there without a booking.
    pub booked: bool,
    /// The absence the family reported, as the calendar says it
    /// (`absence_reported`, `absent_justified`, `absent_unjustified`).
    pub absence: Option<String>,
    /// What the roll call recorded so far; null until it is taken.
    pub attendance: Option<AttendanceView>,
}

impl From<SheetLine> for RollCallLineView {
    fn from(line: SheetLine) -> Self {
        RollCallLineView {
            reservation_id: line.reservation_id,
            family_id: line.family_id,
            child_id: line.child_id,
            first_name: line.first_name,
            last_name: line.last_name,
            school_class: line.school_class,
            needs_care: line.needs_care,
            booked: line.booked,
            absence: line.absence,
            attendance: line.attendance.map(AttendanceView::from),
        }
    }
}

#[derive(InputObject)]
pub struct RollCallMarkInput {
    pub child_id: Uuid,
    pub present: bool,
}

#[derive(InputObject)]
pub struct RecordRollCallInput {
    pub collectivity_id: Uuid,
    pub unit_id: Uuid,
    pub date: NaiveDate,
    /// 1 to 500 children, each once.
    pub marks: Vec<RollCallMarkInput>,
}

/// One child of a recorded roll call.
#[derive(SimpleObject)]
#[graphql(name = "RollCallMark")]
pub struct RollCallMarkView {
    pub child_id: Uuid,
    pub reservation_id: Uuid,
    pub attendance: AttendanceView,
    /// False when it was already recorded so: nothing was written.
    pub written: bool,
}

impl From<Marked> for RollCallMarkView {
    fn from(marked: Marked) -> Self {
        RollCallMarkView {
            child_id: marked.child_id,
            reservation_id: marked.reservation_id,
            attendance: marked.attendance.into(),
            written: marked.written,
        }
    }
}

/// What billing counts for one child in one unit over a month.
#[derive(SimpleObject)]
#[graphql(name = "AttendanceCounts")]
pub struct CountsView {
    pub child_id: Uuid,
    pub family_id: Uuid,
    pub unit_id: Uuid,
    /// Days booked (confirmed, cancellation pending, or with an absence).
    pub booked: i64,
    /// Booked days the child was there.
    pub present: i64,
    /// Booked days absent with a reason an agent accepted.
    pub absent_justified: i64,
    /// Booked days absent without an accepted reason: judged unjustified,
    /// or absent at the roll call with no absence reported.
    pub absent_unjustified: i64,
    /// Booked days with an absence reported that no agent judged yet.
    pub absence_pending: i64,
    /// Days there without a booking.
    pub unexpected_presences: i64,
    /// Booked days without a roll call or an absence yet.
    pub not_taken: i64,
}

impl From<Counts> for CountsView {
    fn from(c: Counts) -> Self {
        CountsView {
            child_id: c.child_id,
            family_id: c.family_id,
            unit_id: c.unit_id,
            booked: c.booked,
            present: c.present,
            absent_justified: c.absent_justified,
            absent_unjustified: c.absent_unjustified,
            absence_pending: c.absence_pending,
            unexpected_presences: c.unexpected,
            not_taken: c.not_taken,
        }
    }
}

/// A unit's day, for the kitchen's order.
#[derive(SimpleObject)]
#[graphql(name = "Headcount")]
pub struct HeadcountView {
    pub date: NaiveDate,
    /// Bookings that stand.
    pub booked: i64,
    /// Of them, without an absence reported: the meals to prepare.
    pub expected: i64,
    /// Children there, booked or not, once the roll call is taken.
    pub present: i64,
    /// Of them, without a booking.
    pub unexpected: i64,
}

impl From<Headcount> for HeadcountView {
    fn from(h: Headcount) -> Self {
        HeadcountView {
            date: h.day,
            booked: h.booked,
            expected: h.expected,
            present: h.present,
            unexpected: h.unexpected,
        }
    }
}

/// The longest range of one headcount query.
const MAX_HEADCOUNT_DAYS: i64 = 93;

use crate::services::calendar::month_bounds;

#[derive(Default)]
pub struct AttendanceQuery;

#[Object]
impl AttendanceQuery {
    /// The roll-call sheet of a unit's day: the children booked (and those
    /// recorded there without a booking), by class and name, with their
    /// allergy/PAI flag and what the roll call recorded so far.
    async fn roll_call(
        &self,
        ctx: &Context<'_>,
        collectivity_id: Uuid,
        unit_id: Uuid,
        date: NaiveDate,
    ) -> Result<Vec<RollCallLineView>> {
        caller(ctx).require_agent_of(collectivity_id)?;
        let sheet = roll_call::sheet(commands(ctx), collectivity_id, unit_id, date).await?;
        Ok(sheet.into_iter().map(RollCallLineView::from).collect())
    }

    /// What billing counts for a month (`2026-12`), per child and unit, in
    /// one unit or every unit of the commune.
    async fn attendance_counts(
        &self,
        ctx: &Context<'_>,
        collectivity_id: Uuid,
        unit_id: Option<Uuid>,
        month: String,
    ) -> Result<Vec<CountsView>> {
        caller(ctx).require_staff_reader_of(collectivity_id)?;
        let (first, last) = month_bounds(&month)?;
        let counts = roll_call::month_counts(commands(ctx), collectivity_id, unit_id, first, last).await?;
        Ok(counts.into_iter().map(CountsView::from).collect())
    }

    /// A unit's headcount for each day with a booking or a presence, from
    /// one date to another (inclusive, at most 93 days).
    async fn headcount(
        &self,
        ctx: &Context<'_>,
        collectivity_id: Uuid,
        unit_id: Uuid,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<Vec<HeadcountView>> {
        caller(ctx).require_staff_reader_of(collectivity_id)?;
        if to < from {
            return Err(ApiError::Validation(say("api.range_reversed", &[])).into());
        }
        if (to - from).num_days() + 1 > MAX_HEADCOUNT_DAYS {
            return Err(
                ApiError::Validation(say("api.headcount_too_long", &[("max", &MAX_HEADCOUNT_DAYS)])).into(),
            );
        }
        let days = roll_call::headcount(commands(ctx), collectivity_id, unit_id, from, to).await?;
        Ok(days.into_iter().map(HeadcountView::from).collect())
    }
}

#[derive(Default)]
pub struct AttendanceMutation;

#[Object]
impl AttendanceMutation {
    /// An agent records the roll call of a unit's day for many children at
    /// once, all or none: present or absent; a child present without a
    /// booking is an unexpected presence. Sent again, what is already
    /// recorded so is not written again; a different mark corrects it.
    async fn record_roll_call(
        &self,
        ctx: &Context<'_>,
        input: RecordRollCallInput,
    ) -> Result<Vec<RollCallMarkView>> {
        let actor = caller(ctx).require_agent_of(input.collectivity_id)?;
        let marks = input
            .marks
            .into_iter()
            .map(|m| Mark {
                child_id: m.child_id,
                present: m.present,
            })
            .collect();
        let marked = roll_call::record(
            commands(ctx),
            input.collectivity_id,
            input.unit_id,
            input.date,
            marks,
            &metadata(actor, None),
        )
        .await?;
        Ok(marked.into_iter().map(RollCallMarkView::from).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_month_is_read_from_its_first_to_its_last_day() {
        let day = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap();
        assert_eq!(
            month_bounds("2026-12").unwrap(),
            (day(2026, 12, 1), day(2026, 12, 31))
        );
        assert_eq!(
            month_bounds("2028-02").unwrap(),
            (day(2028, 2, 1), day(2028, 2, 29))
        );
        for wrong in ["2026-13", "2026", "décembre", "1999-12", "2026-00"] {
            assert!(month_bounds(wrong).is_err(), "{wrong}");
        }
    }
}
