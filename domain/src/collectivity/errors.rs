//! Why a commune's command is refused.

#[allow(unused_imports)]
use super::*;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CollectivityError {
    #[error("this collectivity already exists")]
    AlreadyExists,
    #[error("no such collectivity")]
    NotFound,
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
    #[error("a holiday period ends before it starts: {0:?}")]
    InvalidPeriod(DateRange),
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
