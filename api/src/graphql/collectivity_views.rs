//! A commune's GraphQL types: its services and units, opening days and
//! deadline rules, school calendar; the inputs that configure them.

use async_graphql::{Enum, InputObject, OneofObject, SimpleObject};
use chrono::{NaiveDate, NaiveTime, Weekday};
use espace_famille_domain::calendar::{Closure, DateRange, DeadlineRule, OpeningDays, SchoolCalendar};
use espace_famille_domain::collectivity as domain;
use uuid::Uuid;

use super::booking_rules_views::*;
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
        .map_err(|_| ApiError::Validation(crate::i18n::say("api.not_a_time", &[("value", &value)])))
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
    /// Each booking waits for an agent's approval.
    #[graphql(default = false)]
    pub booking_needs_approval: bool,
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
            booking_needs_approval: self.booking_needs_approval,
        };
        Ok((self.collectivity_id, unit))
    }
}

#[derive(InputObject)]
pub struct DateRangeInput {
    pub first: NaiveDate,
    pub last: NaiveDate,
}

/// A school holiday zone of metropolitan France.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
#[graphql(remote = "espace_famille_domain::calendar::Zone", name = "SchoolZone")]
pub enum SchoolZoneGql {
    A,
    B,
    C,
}

#[derive(InputObject)]
pub struct AddClosureInput {
    pub collectivity_id: Uuid,
    /// Chosen by the client: the same closure sent twice is one.
    pub id: Uuid,
    pub first: NaiveDate,
    /// Included.
    pub last: NaiveDate,
    /// One unit; none: every unit of the commune.
    pub unit_id: Option<Uuid>,
    /// What the parents read on the closed days ("Grève", "Pont de l'Ascension").
    pub reason: String,
}

impl AddClosureInput {
    pub fn closure(&self) -> Closure {
        Closure {
            id: self.id,
            range: DateRange {
                first: self.first,
                last: self.last,
            },
            unit_id: self.unit_id,
            reason: self.reason.clone(),
        }
    }
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
    pub booking_needs_approval: bool,
    /// How many children it takes every day; none: no limit.
    pub places: Option<u32>,
    /// The dates it takes another number of children.
    pub places_on: Vec<DayPlacesView>,
}

#[derive(SimpleObject)]
pub struct DateRangeView {
    pub first: NaiveDate,
    pub last: NaiveDate,
}

/// A public holiday.
#[derive(SimpleObject)]
pub struct NamedDayView {
    pub date: NaiveDate,
    pub name: String,
}

/// A period of school holidays.
#[derive(SimpleObject)]
pub struct NamedPeriodView {
    pub first: NaiveDate,
    pub last: NaiveDate,
    pub name: String,
}

/// The days off of one published school year.
#[derive(SimpleObject)]
pub struct SchoolYearView {
    /// The calendar year it starts in (2026 for 2026-2027).
    pub school_year: i32,
    /// "2026-2027".
    pub label: String,
    pub zone: SchoolZoneGql,
    pub public_holidays: Vec<NamedDayView>,
    pub school_holidays: Vec<NamedPeriodView>,
}

/// Days the commune closed, with the reason the parents read.
#[derive(SimpleObject)]
pub struct ClosureView {
    pub id: Uuid,
    pub first: NaiveDate,
    pub last: NaiveDate,
    /// None: every unit.
    pub unit_id: Option<Uuid>,
    pub reason: String,
}

#[derive(SimpleObject)]
#[graphql(name = "Collectivity")]
pub struct CollectivityView {
    pub id: Uuid,
    pub name: String,
    pub services: Vec<ServiceView>,
    pub units: Vec<UnitView>,
    /// The school holiday zone it follows.
    pub school_zone: Option<SchoolZoneGql>,
    pub department: Option<String>,
    /// The school years published, oldest first; a day of a year not
    /// published cannot be booked.
    pub school_years: Vec<SchoolYearView>,
    pub closures: Vec<ClosureView>,
    /// The reasons of absence a parent chooses from.
    pub absence_reasons: Vec<String>,
    /// How many days after a slot an absence may still be reported (0:
    /// until the end of the day).
    pub absence_report_days_after: u32,
    /// The least amount a family pays online, in cents.
    pub minimum_online_cents: i64,
    /// The unpaid amount past due above which a family cannot book until
    /// it pays; none: no such rule.
    pub debt_limit_cents: Option<i64>,
    /// Every public holiday of the published years (and of a calendar
    /// typed by hand before calendars were published).
    pub public_holidays: Vec<NaiveDate>,
    /// Every period of school holidays, likewise.
    pub school_holidays: Vec<DateRangeView>,
    /// When booking opens, per unit and range.
    pub booking_windows: Vec<BookingWindowView>,
    /// What the units cost, per period, in the order they were set (where
    /// two overlap, the later applies).
    pub tariffs: Vec<TariffView>,
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
                    booking_needs_approval: u.booking_needs_approval,
                    places: c.places.get(&u.id).and_then(|p| p.every_day),
                    places_on: c
                        .places
                        .get(&u.id)
                        .map(|p| {
                            p.on.iter()
                                .map(|(&date, &places)| DayPlacesView { date, places })
                                .collect()
                        })
                        .unwrap_or_default(),
                })
                .collect(),
            school_zone: c.calendar.zone.map(Into::into),
            department: c.calendar.department.clone(),
            school_years: c
                .calendar
                .years
                .iter()
                .map(|(year, published)| SchoolYearView {
                    school_year: year.0,
                    label: year.to_string(),
                    zone: published.zone.into(),
                    public_holidays: published
                        .public_holidays
                        .iter()
                        .map(|d| NamedDayView {
                            date: d.date,
                            name: d.name.clone(),
                        })
                        .collect(),
                    school_holidays: published
                        .school_holidays
                        .iter()
                        .map(|p| NamedPeriodView {
                            first: p.range.first,
                            last: p.range.last,
                            name: p.name.clone(),
                        })
                        .collect(),
                })
                .collect(),
            closures: c
                .calendar
                .closures
                .iter()
                .map(|closure| ClosureView {
                    id: closure.id,
                    first: closure.range.first,
                    last: closure.range.last,
                    unit_id: closure.unit_id,
                    reason: closure.reason.clone(),
                })
                .collect(),
            absence_reasons: c.absence_rules.reasons.clone(),
            absence_report_days_after: c.absence_rules.report_days_after,
            minimum_online_cents: c.payment_rules.minimum_online_cents,
            debt_limit_cents: c.payment_rules.debt_limit_cents,
            public_holidays: public_holidays(&c.calendar),
            school_holidays: school_holidays(&c.calendar),
            tariffs: c.tariffs.iter().map(TariffView::from).collect(),
            booking_windows: c
                .booking_windows
                .iter()
                .map(|w| BookingWindowView {
                    id: w.id,
                    unit_id: w.unit_id,
                    first: w.range.first,
                    last: w.range.last,
                    opens_at: espace_famille_domain::calendar::in_paris(w.opens_at),
                    residents_open_at: w.residents_open_at.map(espace_famille_domain::calendar::in_paris),
                    allocation: w.allocation.as_ref().map(|a| AllocationView {
                        closes_at: espace_famille_domain::calendar::in_paris(a.closes_at),
                        criteria: a.criteria.iter().map(|&c| c.into()).collect(),
                        seed_commitment: a.seed_commitment.clone(),
                    }),
                })
                .collect(),
        }
    }
}

/// Every public holiday a calendar knows, in date order.
fn public_holidays(calendar: &SchoolCalendar) -> Vec<NaiveDate> {
    let mut days: Vec<NaiveDate> = calendar
        .years
        .values()
        .flat_map(|year| year.public_holidays.iter().map(|d| d.date))
        .chain(
            calendar
                .typed
                .iter()
                .flat_map(|t| t.public_holidays.iter().copied()),
        )
        .collect();
    days.sort_unstable();
    days.dedup();
    days
}

/// Every period of school holidays a calendar knows, in date order.
fn school_holidays(calendar: &SchoolCalendar) -> Vec<DateRangeView> {
    let mut ranges: Vec<DateRange> = calendar
        .years
        .values()
        .flat_map(|year| year.school_holidays.iter().map(|p| p.range))
        .chain(
            calendar
                .typed
                .iter()
                .flat_map(|t| t.school_holidays.iter().copied()),
        )
        .collect();
    ranges.sort_unstable_by_key(|r| (r.first, r.last));
    ranges.dedup();
    ranges
        .into_iter()
        .map(|r| DateRangeView {
            first: r.first,
            last: r.last,
        })
        .collect()
}

/// What a closure did.
#[derive(SimpleObject)]
#[graphql(name = "ClosureOutcome")]
pub struct ClosureOutcomeView {
    pub collectivity: CollectivityView,
    /// The bookings it cancelled (none when sent again).
    pub cancelled: Vec<CancelledBookingView>,
}

/// A booking cancelled by the commune.
#[derive(SimpleObject)]
#[graphql(name = "CancelledBooking")]
pub struct CancelledBookingView {
    pub reservation_id: Uuid,
    pub family_id: Uuid,
    pub child_id: Uuid,
    pub unit_id: Uuid,
    pub date: NaiveDate,
}

impl From<&crate::services::closure::Cancelled> for CancelledBookingView {
    fn from(c: &crate::services::closure::Cancelled) -> Self {
        CancelledBookingView {
            reservation_id: c.reservation_id,
            family_id: c.family_id,
            child_id: c.child_id,
            unit_id: c.unit_id,
            date: c.date,
        }
    }
}
