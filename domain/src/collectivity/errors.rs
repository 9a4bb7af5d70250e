//! Why a commune's command is refused.

#[allow(unused_imports)]
use super::*;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CollectivityError {
    #[error("this collectivity already exists")]
    AlreadyExists,
    #[error("no such collectivity")]
    NotFound,
    #[error("a request category names each field and attachment once (a-z, 0-9, _), offers 1 to {MAX_CHOICES} distinct options a choice, and accepts at least one kind of file an attachment; at most {MAX_FORM_FIELDS} fields and {MAX_ATTACHMENTS} attachments")]
    InvalidRequestCategory,
    #[error("a commune keeps at most {MAX_REQUEST_CATEGORIES} request categories")]
    TooManyRequestCategories,
    #[error("a name cannot be empty")]
    EmptyName,
    #[error("a service with this id already exists")]
    DuplicateService,
    #[error("no service {0} in this collectivity")]
    UnknownService(Uuid),
    #[error("a unit with this id already exists")]
    DuplicateUnit,
    #[error("a unit must be open on at least one day of the week")]
    NoOpeningDay,
    #[error("invalid deadline: {0}")]
    InvalidDeadline(#[from] DeadlineRuleError),
    #[error("a period ends before it starts: {0:?}")]
    InvalidPeriod(DateRange),
    #[error("no département {0:?} (01 to 95, 2A, 2B, 971 to 976)")]
    UnknownDepartment(String),
    #[error("the commune's school zone is not set")]
    NoSchoolZone,
    #[error("the official school calendar of {0} is not available")]
    CalendarNotAvailable(SchoolYear),
    #[error("the school year {0} is already published")]
    AlreadyPublished(SchoolYear),
    #[error("a closure covers at most {MAX_CLOSURE_DAYS} days")]
    ClosureTooLong,
    #[error("a commune keeps at most {MAX_CLOSURES} closures")]
    TooManyClosures,
    #[error("a closure {0} already exists with other days, unit or reason")]
    DuplicateClosure(Uuid),
    #[error("no unit {0} in this collectivity")]
    UnknownUnit(Uuid),
    #[error("a commune lists 1 to {MAX_ABSENCE_REASONS} reasons of absence, each once, and allows at most {MAX_ABSENCE_DELAY_DAYS} days")]
    InvalidAbsenceRules,
    #[error("the least amount paid online is 1 cent to {MAX_RULE_CENTS} cents, and a debt limit 0 to {MAX_RULE_CENTS} cents")]
    InvalidPaymentRules,

    #[error("a booking window covers at most {MAX_CLOSURE_DAYS} days")]
    WindowTooLong,
    #[error("residents cannot be let in later than everyone else")]
    ResidentsOpenLater,
    #[error("a commune keeps at most {MAX_BOOKING_WINDOWS} booking windows")]
    TooManyWindows,
    #[error("an allocated window closes after it opens")]
    AllocationClosesBeforeOpening,
    #[error("a priority criterion is listed twice")]
    DuplicateCriterion,
    #[error("a lottery's seed commitment is 64 hexadecimal digits, and never changes once published")]
    InvalidSeedCommitment,
    #[error("a tariff has 1 to {MAX_BRACKETS} brackets with rising bounds, the last open, prices from 0 to {MAX_PRICE_CENTS} cents, percentages up to 100, and ends after it starts")]
    InvalidTariff,
    #[error("a commune keeps at most {MAX_TARIFFS} tariffs")]
    TooManyTariffs,
    #[error("a unit takes at most {MAX_PLACES} children a day")]
    TooManyPlaces,
    #[error("a unit's places are set for at most {MAX_PLACE_DATES} dates")]
    TooManyPlaceDates,
    #[error(transparent)]
    InvalidText(#[from] TextError),
}

/// A name as the commune types it: trimmed, bounded, never empty.
pub(super) fn clean_name(value: &str) -> Result<String, CollectivityError> {
    text::required("a name", value, text::NAME).map_err(|error| match error {
        TextError::Empty { .. } => CollectivityError::EmptyName,
        other => other.into(),
    })
}

/// The longest closure, in days.
pub const MAX_CLOSURE_DAYS: i64 = 366;

/// The most closures a commune keeps.
pub const MAX_CLOSURES: usize = 2_000;

/// Whether `code` is a French département: 01 to 95 (no 20), 2A, 2B, 971
/// to 976.
pub fn is_department(code: &str) -> bool {
    match code {
        "2A" | "2B" => true,
        _ if code.len() == 2 => code.parse::<u8>().is_ok_and(|n| (1..=95).contains(&n) && n != 20),
        _ if code.len() == 3 => code.parse::<u16>().is_ok_and(|n| (971..=976).contains(&n)),
        _ => false,
    }
}
