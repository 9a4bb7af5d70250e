//! GraphQL input and output types, and their conversion to and from the
//! domain's own types.

use std::sync::Arc;

use async_graphql::{ComplexObject, Context, Enum, InputObject, Json, OneofObject, SimpleObject};
use chrono::{DateTime, NaiveDate, NaiveTime, Utc, Weekday};
use espace_famille_domain::calendar::{DateRange, DeadlineRule, OpeningDays, SchoolCalendar, SchoolYear};
use espace_famille_domain::collectivity as domain;
use espace_famille_domain::family::{self as family, Enrolment};
use espace_famille_projections::store::{self, RecordedEvent};
use espace_famille_projections::work_queue;
use uuid::Uuid;

use super::booking_views::{BasketActionView, RefusalView};
use crate::commands::Commands;
use crate::error::ApiError;

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "chrono::Weekday", name = "Weekday")]
pub enum WeekdayGql {
    Mon,
    Tue,
    Wed,
    Thu,
    Fri,
    Sat,
    Sun,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(
    remote = "espace_famille_domain::collectivity::ServiceKind",
    name = "ServiceKind"
)]
pub enum ServiceKindGql {
    Canteen,
    SupervisedStudy,
    MorningCare,
    EveningCare,
    LeisureCentre,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(
    remote = "espace_famille_domain::collectivity::BillingMode",
    name = "BillingMode"
)]
pub enum BillingModeGql {
    Prepaid,
    Monthly,
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "espace_famille_domain::calendar::OpenDuring", name = "OpenDuring")]
pub enum OpenDuringGql {
    SchoolTerms,
    SchoolHolidays,
    AllYear,
}

/// "HH:MM", Paris time.
fn parse_time(value: &str) -> Result<NaiveTime, ApiError> {
    NaiveTime::parse_from_str(value.trim(), "%H:%M")
        .map_err(|_| ApiError::Validation(format!("'{value}' is not a time of day as HH:MM")))
}

/// J-n at a time of day.
#[derive(InputObject)]
pub struct DaysBeforeInput {
    pub days: u32,
    /// Paris time, "HH:MM".
    pub at: String,
    #[graphql(default = true)]
    pub skip_weekends: bool,
    #[graphql(default = true)]
    pub skip_holidays: bool,
}

#[derive(InputObject)]
pub struct WeekdayOfPreviousWeekInput {
    pub weekday: WeekdayGql,
    /// Paris time, "HH:MM".
    pub at: String,
}

#[derive(InputObject)]
pub struct DayOfPreviousMonthInput {
    pub day: u32,
    /// Paris time, "HH:MM".
    pub at: String,
}

/// A deadline rule: exactly one of the fields.
#[derive(OneofObject)]
pub enum DeadlineRuleInput {
    DaysBefore(DaysBeforeInput),
    WeekdayOfPreviousWeek(WeekdayOfPreviousWeekInput),
    DayOfPreviousMonth(DayOfPreviousMonthInput),
}

impl DeadlineRuleInput {
    pub fn into_domain(self) -> Result<DeadlineRule, ApiError> {
        Ok(match self {
            DeadlineRuleInput::DaysBefore(input) => DeadlineRule::DaysBefore {
                days: input.days,
                at: parse_time(&input.at)?,
                skip_weekends: input.skip_weekends,
                skip_holidays: input.skip_holidays,
            },
            DeadlineRuleInput::WeekdayOfPreviousWeek(input) => DeadlineRule::WeekdayOfPreviousWeek {
                weekday: input.weekday.into(),
                at: parse_time(&input.at)?,
            },
            DeadlineRuleInput::DayOfPreviousMonth(input) => DeadlineRule::DayOfPreviousMonth {
                day: input.day,
                at: parse_time(&input.at)?,
            },
        })
    }
}

#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum DeadlineKind {
    DaysBefore,
    WeekdayOfPreviousWeek,
    DayOfPreviousMonth,
}

/// A deadline rule as configured; the fields of its kind are set.
#[derive(SimpleObject)]
pub struct DeadlineRuleView {
    pub kind: DeadlineKind,
    /// Paris time, "HH:MM".
    pub at: String,
    pub days: Option<u32>,
    pub skip_weekends: Option<bool>,
    pub skip_holidays: Option<bool>,
    pub weekday: Option<WeekdayGql>,
    pub day_of_month: Option<u32>,
    /// The rule in words, as a commune's rules of procedure put it.
    pub description: String,
}

fn french_weekday(day: Weekday) -> &'static str {
    match day {
        Weekday::Mon => "lundi",
        Weekday::Tue => "mardi",
        Weekday::Wed => "mercredi",
        Weekday::Thu => "jeudi",
        Weekday::Fri => "vendredi",
        Weekday::Sat => "samedi",
        Weekday::Sun => "dimanche",
    }
}

impl From<&DeadlineRule> for DeadlineRuleView {
    fn from(rule: &DeadlineRule) -> Self {
        let empty = DeadlineRuleView {
            kind: DeadlineKind::DaysBefore,
            at: String::new(),
            days: None,
            skip_weekends: None,
            skip_holidays: None,
            weekday: None,
            day_of_month: None,
            description: String::new(),
        };
        match *rule {
            DeadlineRule::DaysBefore {
                days,
                at,
                skip_weekends,
                skip_holidays,
            } => {
                let mut skipped = Vec::new();
                if skip_weekends {
                    skipped.push("week-ends");
                }
                if skip_holidays {
                    skipped.push("jours fériés");
                }
                let mut description = format!("J-{days} à {}", at.format("%H:%M"));
                if !skipped.is_empty() {
                    description.push_str(&format!(" ({} non comptés)", skipped.join(" et ")));
                }
                DeadlineRuleView {
                    kind: DeadlineKind::DaysBefore,
                    at: at.format("%H:%M").to_string(),
                    days: Some(days),
                    skip_weekends: Some(skip_weekends),
                    skip_holidays: Some(skip_holidays),
                    description,
                    ..empty
                }
            }
            DeadlineRule::WeekdayOfPreviousWeek { weekday, at } => DeadlineRuleView {
                kind: DeadlineKind::WeekdayOfPreviousWeek,
                at: at.format("%H:%M").to_string(),
                weekday: Some(weekday.into()),
                description: format!(
                    "le {} de la semaine précédente à {}",
                    french_weekday(weekday),
                    at.format("%H:%M")
                ),
                ..empty
            },
            DeadlineRule::DayOfPreviousMonth { day, at } => DeadlineRuleView {
                kind: DeadlineKind::DayOfPreviousMonth,
                at: at.format("%H:%M").to_string(),
                day_of_month: Some(day),
                description: format!("le {day} du mois précédent à {}", at.format("%H:%M")),
                ..empty
            },
        }
    }
}

#[derive(InputObject)]
pub struct CreateCollectivityInput {
    /// Chosen by the caller, or generated.
    pub id: Option<Uuid>,
    pub name: String,
}

#[derive(InputObject)]
pub struct AddServiceInput {
    pub collectivity_id: Uuid,
    pub id: Option<Uuid>,
    pub name: String,
    pub kind: ServiceKindGql,
}

#[derive(InputObject)]
pub struct AddUnitInput {
    pub collectivity_id: Uuid,
    pub id: Option<Uuid>,
    pub service_id: Uuid,
    pub name: String,
    pub weekdays: Vec<WeekdayGql>,
    pub open_during: OpenDuringGql,
    pub billing: BillingModeGql,
    pub booking_deadline: DeadlineRuleInput,
    pub cancellation_deadline: DeadlineRuleInput,
    #[graphql(default = false)]
    pub cancellation_needs_approval: bool,
}

impl AddUnitInput {
    pub fn into_domain(self) -> Result<(Uuid, domain::Unit), ApiError> {
        let unit = domain::Unit {
            id: self.id.unwrap_or_else(Uuid::new_v4),
            service_id: self.service_id,
            name: self.name,
            opening: OpeningDays {
                weekdays: self.weekdays.into_iter().map(Into::into).collect(),
                during: self.open_during.into(),
            },
            billing: self.billing.into(),
            booking_deadline: self.booking_deadline.into_domain()?,
            cancellation_deadline: self.cancellation_deadline.into_domain()?,
            cancellation_needs_approval: self.cancellation_needs_approval,
        };
        Ok((self.collectivity_id, unit))
    }
}

#[derive(InputObject)]
pub struct DateRangeInput {
    pub first: NaiveDate,
    pub last: NaiveDate,
}

#[derive(InputObject)]
pub struct SetSchoolCalendarInput {
    pub collectivity_id: Uuid,
    pub public_holidays: Vec<NaiveDate>,
    pub school_holidays: Vec<DateRangeInput>,
}

impl SetSchoolCalendarInput {
    pub fn calendar(&self) -> SchoolCalendar {
        SchoolCalendar {
            public_holidays: self.public_holidays.iter().copied().collect(),
            school_holidays: self
                .school_holidays
                .iter()
                .map(|r| DateRange {
                    first: r.first,
                    last: r.last,
                })
                .collect(),
        }
    }
}

#[derive(InputObject)]
pub struct OpenFamilyAccountInput {
    pub collectivity_id: Uuid,
    pub id: Option<Uuid>,
    /// The commune's own reference for the family.
    pub family_ref: String,
    pub guardian_email: String,
}

#[derive(InputObject)]
pub struct RegisterChildInput {
    pub family_id: Uuid,
    pub id: Option<Uuid>,
    pub first_name: String,
    pub last_name: String,
    pub birth_date: NaiveDate,
    pub school_class: Option<String>,
}

#[derive(InputObject)]
pub struct EnrolChildInput {
    pub family_id: Uuid,
    pub child_id: Uuid,
    pub collectivity_id: Uuid,
    pub service_id: Uuid,
    /// The calendar year the school year starts in: 2026 for 2026-2027.
    pub school_year: i32,
}

#[derive(InputObject)]
pub struct BasketLineInput {
    pub action: BasketActionView,
    pub child_id: Uuid,
    pub unit_id: Uuid,
    pub date: NaiveDate,
}

#[derive(InputObject)]
pub struct SubmitBasketInput {
    /// Chosen by the client and reused on retry: the same id never books twice.
    pub basket_id: Uuid,
    pub family_id: Uuid,
    pub lines: Vec<BasketLineInput>,
    /// Write the valid lines even when others are refused (default: all or nothing).
    #[graphql(default = false)]
    pub keep_valid_lines: bool,
}

#[derive(SimpleObject)]
pub struct ServiceView {
    pub id: Uuid,
    pub name: String,
    pub kind: ServiceKindGql,
}

#[derive(SimpleObject)]
pub struct UnitView {
    pub id: Uuid,
    pub service_id: Uuid,
    pub name: String,
    pub weekdays: Vec<WeekdayGql>,
    pub open_during: OpenDuringGql,
    pub billing: BillingModeGql,
    pub booking_deadline: DeadlineRuleView,
    pub cancellation_deadline: DeadlineRuleView,
    pub cancellation_needs_approval: bool,
}

#[derive(SimpleObject)]
pub struct DateRangeView {
    pub first: NaiveDate,
    pub last: NaiveDate,
}

#[derive(SimpleObject)]
#[graphql(name = "Collectivity")]
pub struct CollectivityView {
    pub id: Uuid,
    pub name: String,
    pub services: Vec<ServiceView>,
    pub units: Vec<UnitView>,
    pub public_holidays: Vec<NaiveDate>,
    pub school_holidays: Vec<DateRangeView>,
}

impl From<&domain::Collectivity> for CollectivityView {
    fn from(c: &domain::Collectivity) -> Self {
        CollectivityView {
            id: c.id.unwrap_or_default(),
            name: c.name.clone(),
            services: c
                .services
                .values()
                .map(|s| ServiceView {
                    id: s.id,
                    name: s.name.clone(),
                    kind: s.kind.into(),
                })
                .collect(),
            units: c
                .units
                .values()
                .map(|u| UnitView {
                    id: u.id,
                    service_id: u.service_id,
                    name: u.name.clone(),
                    weekdays: u.opening.weekdays.iter().map(|d| (*d).into()).collect(),
                    open_during: u.opening.during.into(),
                    billing: u.billing.into(),
                    booking_deadline: (&u.booking_deadline).into(),
                    cancellation_deadline: (&u.cancellation_deadline).into(),
                    cancellation_needs_approval: u.cancellation_needs_approval,
                })
                .collect(),
            public_holidays: c.calendar.public_holidays.iter().copied().collect(),
            school_holidays: c
                .calendar
                .school_holidays
                .iter()
                .map(|r| DateRangeView {
                    first: r.first,
                    last: r.last,
                })
                .collect(),
        }
    }
}

#[derive(InputObject)]
pub struct JoinFamilyInput {
    pub collectivity_id: Uuid,
    /// The code the family's guardian created (`createFamilyJoinCode`)
    /// and gave the commune.
    pub code: String,
    /// This commune's reference for the family.
    pub family_ref: String,
}

#[derive(InputObject)]
pub struct SetQuotientFamilialInput {
    pub family_id: Uuid,
    pub collectivity_id: Uuid,
    /// In euros.
    pub quotient: i32,
    pub valid_from: NaiveDate,
    /// Inclusive; open-ended when absent.
    pub valid_until: Option<NaiveDate>,
}

/// Personal values read as null once the family was erased.
#[derive(SimpleObject)]
pub struct ChildView {
    pub id: Uuid,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub birth_date: Option<NaiveDate>,
    pub school_class: Option<String>,
}

#[derive(SimpleObject)]
pub struct QuotientFamilialView {
    pub collectivity_id: Uuid,
    pub quotient: i32,
    pub valid_from: NaiveDate,
    pub valid_until: Option<NaiveDate>,
}

#[derive(SimpleObject)]
pub struct MembershipView {
    pub collectivity_id: Uuid,
    pub family_ref: String,
}

#[derive(SimpleObject)]
pub struct EnrolmentView {
    pub child_id: Uuid,
    pub collectivity_id: Uuid,
    pub service_id: Uuid,
    pub school_year: i32,
    /// "2026-2027".
    pub school_year_label: String,
}

/// A family as one reader may see it: its guardians see all of it; an
/// agent or auditor of a commune sees that commune's memberships,
/// enrolments and quotients only.
#[derive(SimpleObject)]
#[graphql(name = "Family")]
pub struct FamilyView {
    pub id: Uuid,
    /// Null once the family was erased.
    pub guardian_email: Option<String>,
    pub erased: bool,
    pub guardians: Vec<super::profile::GuardianView>,
    pub memberships: Vec<MembershipView>,
    pub children: Vec<ChildView>,
    pub enrolments: Vec<EnrolmentView>,
    pub quotients_familiaux: Vec<QuotientFamilialView>,
}

impl FamilyView {
    /// `communes`: the communes whose part the reader sees; `None` for all.
    pub fn new(f: &family::Family, communes: Option<&[Uuid]>) -> Self {
        let visible = |c: &Uuid| communes.is_none_or(|only| only.contains(c));
        FamilyView {
            id: f.id.unwrap_or_default(),
            guardian_email: f.guardian_email.as_ref().and_then(|e| e.known().cloned()),
            erased: f.erased,
            guardians: f
                .guardians
                .iter()
                .map(super::profile::GuardianView::from)
                .collect(),
            memberships: f
                .memberships
                .iter()
                .filter(|(c, _)| visible(c))
                .map(|(collectivity_id, family_ref)| MembershipView {
                    collectivity_id: *collectivity_id,
                    family_ref: family_ref.clone(),
                })
                .collect(),
            children: f
                .children
                .values()
                .map(|c| ChildView {
                    id: c.id,
                    first_name: c.first_name.known().cloned(),
                    last_name: c.last_name.known().cloned(),
                    birth_date: c.birth_date.known().copied(),
                    school_class: c.school_class.known().cloned().flatten(),
                })
                .collect(),
            enrolments: f
                .enrolments
                .iter()
                .filter(|e| visible(&e.collectivity_id))
                .map(EnrolmentView::from)
                .collect(),
            quotients_familiaux: f
                .quotients
                .iter()
                .filter(|q| visible(&q.collectivity_id))
                .map(|q| QuotientFamilialView {
                    collectivity_id: q.collectivity_id,
                    quotient: q.quotient as i32,
                    valid_from: q.valid_from,
                    valid_until: q.valid_until,
                })
                .collect(),
        }
    }
}

impl From<&Enrolment> for EnrolmentView {
    fn from(e: &Enrolment) -> Self {
        EnrolmentView {
            child_id: e.child_id,
            collectivity_id: e.collectivity_id,
            service_id: e.service_id,
            school_year: e.school_year.0,
            school_year_label: e.school_year.to_string(),
        }
    }
}

impl EnrolChildInput {
    pub fn enrolment(&self) -> Enrolment {
        Enrolment {
            child_id: self.child_id,
            collectivity_id: self.collectivity_id,
            service_id: self.service_id,
            school_year: SchoolYear(self.school_year),
        }
    }
}

/// The state of a slot.
#[derive(Enum, Copy, Clone, Eq, PartialEq, Debug)]
pub enum SlotStatus {
    /// Not booked.
    Free,
    /// Requested, not yet confirmed.
    Requested,
    Confirmed,
    /// The parent asked to cancel; an agent decides.
    CancellationRequested,
    Cancelled,
}

/// One day of a child's calendar in one unit.
#[derive(SimpleObject)]
pub struct CalendarDay {
    pub date: NaiveDate,
    /// The id a booking of this day has (or would have).
    pub reservation_id: Uuid,
    pub status: SlotStatus,
    /// Whether the unit runs that day.
    pub open: bool,
    /// Why the unit does not run that day.
    pub closed_reason: Option<String>,
    /// Booking closes at this instant (UTC), on open days.
    pub booking_deadline: Option<DateTime<Utc>>,
    /// Cancelling closes at this instant (UTC), on open days.
    pub cancellation_deadline: Option<DateTime<Utc>>,
    pub can_book: bool,
    /// Why the day cannot be booked now.
    pub book_refusal: Option<RefusalView>,
    pub can_cancel: bool,
    /// Why the day cannot be cancelled now.
    pub cancel_refusal: Option<RefusalView>,
}

/// One stored event, as an auditor reads it.
#[derive(Clone, SimpleObject)]
pub struct HistoryEvent {
    pub sequence: i64,
    pub event_id: Uuid,
    pub event_type: String,
    pub event_version: String,
    pub recorded_at: DateTime<Utc>,
    pub actor_id: Option<String>,
    pub actor_role: Option<String>,
    pub correlation_id: Option<String>,
    pub causation_id: Option<String>,
    pub command_id: Option<String>,
    pub payload: Json<serde_json::Value>,
}

impl From<&RecordedEvent> for HistoryEvent {
    fn from(e: &RecordedEvent) -> Self {
        let meta = |key: &str| e.metadata_field(key);
        HistoryEvent {
            sequence: e.sequence,
            event_id: e.event_id,
            event_type: e.event_type.clone(),
            event_version: e.event_version.clone(),
            recorded_at: e.recorded_at,
            actor_id: meta("actor_id"),
            actor_role: meta("actor_role"),
            correlation_id: meta("correlation_id"),
            causation_id: meta("causation_id"),
            command_id: meta("command_id"),
            payload: Json(e.payload_value()),
        }
    }
}

#[derive(SimpleObject)]
#[graphql(name = "Reservation", complex)]
pub struct ReservationView {
    pub id: Uuid,
    pub family_id: Uuid,
    pub child_id: Uuid,
    pub collectivity_id: Uuid,
    pub service_id: Uuid,
    pub unit_id: Uuid,
    pub date: NaiveDate,
    pub status: SlotStatus,
    /// The history, when it was read to build the view; otherwise it is
    /// read only if the caller asks for it.
    #[graphql(skip)]
    pub history: Option<Vec<HistoryEvent>>,
}

#[ComplexObject]
impl ReservationView {
    /// Every event of the reservation, oldest first.
    async fn history(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<HistoryEvent>> {
        if let Some(history) = &self.history {
            return Ok(history.clone());
        }
        let pool = &ctx.data_unchecked::<Arc<Commands>>().pool;
        let events = store::stream_history(pool, "Reservation", &self.id.to_string())
            .await
            .map_err(ApiError::from)?;
        Ok(events.iter().map(HistoryEvent::from).collect())
    }
}

#[derive(SimpleObject)]
#[graphql(name = "PendingCancellation")]
pub struct PendingCancellationView {
    pub reservation_id: Uuid,
    pub collectivity_id: Uuid,
    pub family_id: Uuid,
    pub child_id: Uuid,
    pub unit_id: Uuid,
    pub date: NaiveDate,
    pub requested_at: DateTime<Utc>,
    pub requested_by: String,
}

impl From<work_queue::PendingCancellation> for PendingCancellationView {
    fn from(p: work_queue::PendingCancellation) -> Self {
        PendingCancellationView {
            reservation_id: p.reservation_id,
            collectivity_id: p.collectivity_id,
            family_id: p.family_id,
            child_id: p.child_id,
            unit_id: p.unit_id,
            date: p.day,
            requested_at: p.requested_at,
            requested_by: p.requested_by,
        }
    }
}

/// A code by which a guardian lets a commune join the family: given to the
/// commune's agent, used once, within a week.
#[derive(SimpleObject)]
pub struct FamilyJoinCode {
    pub family_id: Uuid,
    pub code: String,
    pub expires_at: chrono::DateTime<chrono::Utc>,
}
