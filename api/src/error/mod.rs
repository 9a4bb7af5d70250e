//! One error type for the API, and the one mapping from domain errors to the
//! stable `extensions.code` a client can switch on.

use async_graphql::ErrorExtensions;
use espace_famille_domain::collectivity::CollectivityError;
use espace_famille_domain::family::FamilyError;
use espace_famille_domain::invoice::InvoiceError;
use espace_famille_domain::payment::PaymentError;
use espace_famille_domain::request::RequestError;
use espace_famille_domain::reservation::ReservationError;
use espace_famille_projections::store::StoreError;
use serde::{Deserialize, Serialize};

mod code;
pub use code::ErrorCode;

/// What went wrong, as the client sees it.
///
/// Deliberately not `Display`: async-graphql converts any displayable error
/// into a GraphQL error without a code, and every error here must carry one.
#[derive(Debug)]
pub enum ApiError {
    /// No identity on the request → `UNAUTHENTICATED`.
    Unauthenticated,
    /// The caller's grant does not cover this → `FORBIDDEN`.
    Forbidden,
    /// → `NOT_FOUND`.
    NotFound(String),
    /// Input the server cannot accept → `VALIDATION`.
    Validation(String),
    /// A concurrent change won and retrying did not help → `CONFLICT`.
    Conflict(String),
    /// A business rule refused the command: its own code (`DEADLINE_PASSED`,
    /// `UNIT_CLOSED`, ...), see [`Refusal`].
    Refused(Refusal),
    /// The database cannot be reached (an outage, a failover) →
    /// `UNAVAILABLE`: nothing was done, the client may try again.
    Unavailable(String),
    /// Anything else → `INTERNAL`; logged, never shown.
    Internal(String),
}

/// Whether a database error means the database is out of reach, rather
/// than a fault of the request: no connection could be had or kept, or the
/// server is shutting down or starting (SQLSTATE classes 08 and 57P).
pub fn is_outage(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => {
            true
        }
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|code| code.starts_with("08") || code.starts_with("57P")),
        _ => false,
    }
}

/// A business rule's refusal, with a stable code, a readable message and
/// the facts behind it (the deadline that passed, why the day is closed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    pub code: ErrorCode,
    pub message: String,
    /// For `DEADLINE_PASSED`: the instant the deadline passed.
    pub deadline: Option<chrono::DateTime<chrono::Utc>>,
    /// For `UNIT_CLOSED`: why the unit does not run that day.
    pub closed_reason: Option<String>,
    /// For `BOOKING_NOT_OPEN`: the instant booking opens. Not written when
    /// absent: the receipts stored before it read back the same.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opens_at: Option<chrono::DateTime<chrono::Utc>>,
    /// For `BELOW_MINIMUM`: the least amount paid online, in cents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum_cents: Option<i64>,
    /// For `DEBT_LIMIT`: what the family owes past due, in cents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owed_cents: Option<i64>,
}

impl Refusal {
    pub(crate) fn new(code: ErrorCode, message: String) -> Self {
        Refusal {
            code,
            message,
            deadline: None,
            closed_reason: None,
            opens_at: None,
            minimum_cents: None,
            owed_cents: None,
        }
    }
}

impl From<&ReservationError> for Refusal {
    /// In the language of the request being served.
    fn from(error: &ReservationError) -> Self {
        let locale = crate::i18n::current();
        let message = crate::i18n::reservation_error(error, locale);
        match error {
            ReservationError::DeadlinePassed(deadline) => Refusal {
                deadline: Some(*deadline),
                ..Refusal::new(ErrorCode::DeadlinePassed, message)
            },
            ReservationError::UnitClosed { reason, .. } => Refusal {
                closed_reason: Some(crate::i18n::closed_reason(reason, locale)),
                ..Refusal::new(ErrorCode::UnitClosed, message)
            },
            ReservationError::UnknownUnit(_)
            | ReservationError::UnknownChild(_)
            | ReservationError::NotInCommune(_) => Refusal::new(ErrorCode::NotFound, message),
            ReservationError::NotEnrolled(_) => Refusal::new(ErrorCode::NotEnrolled, message),
            ReservationError::BookingNotOpen(opens) => Refusal {
                opens_at: Some(*opens),
                ..Refusal::new(ErrorCode::BookingNotOpen, message)
            },
            ReservationError::AlreadyBooked => Refusal::new(ErrorCode::AlreadyBooked, message),
            ReservationError::AlreadyWaitListed => Refusal::new(ErrorCode::AlreadyWaitListed, message),
            ReservationError::NotWaitListed => Refusal::new(ErrorCode::NotWaitListed, message),
            ReservationError::WaitingListFull => Refusal::new(ErrorCode::WaitingListFull, message),
            ReservationError::AlreadyRequested => Refusal::new(ErrorCode::AlreadyRequested, message),
            ReservationError::AllocationClosed => Refusal::new(ErrorCode::AllocationClosed, message),
            ReservationError::NotBooked => Refusal::new(ErrorCode::NotBooked, message),
            ReservationError::CancellationAlreadyRequested => {
                Refusal::new(ErrorCode::CancellationPending, message)
            }
            ReservationError::AlreadyCancelled => Refusal::new(ErrorCode::AlreadyCancelled, message),
            ReservationError::NoPendingCancellation => {
                Refusal::new(ErrorCode::NoPendingCancellation, message)
            }
            ReservationError::EmptyReason | ReservationError::InvalidText(_) => {
                Refusal::new(ErrorCode::Validation, message)
            }
            ReservationError::OtherFamily => Refusal::new(ErrorCode::Forbidden, message),
            ReservationError::PrepaidNotAvailable => Refusal::new(ErrorCode::PrepaidNotAvailable, message),
            ReservationError::AwaitingPayment => Refusal::new(ErrorCode::PaymentInProgress, message),
            ReservationError::DebtLimit { owed, .. } => Refusal {
                owed_cents: Some(*owed),
                ..Refusal::new(ErrorCode::DebtLimit, message)
            },
            ReservationError::NotAwaitingPayment => Refusal::new(ErrorCode::Conflict, message),
            ReservationError::UnknownAbsenceReason(_) => {
                Refusal::new(ErrorCode::UnknownAbsenceReason, message)
            }
            ReservationError::AbsenceTooLate(until) => Refusal {
                deadline: Some(*until),
                ..Refusal::new(ErrorCode::AbsenceTooLate, message)
            },
            ReservationError::AbsenceAlreadyReported => {
                Refusal::new(ErrorCode::AbsenceAlreadyReported, message)
            }
            ReservationError::NoAbsenceReported => Refusal::new(ErrorCode::NoAbsenceReported, message),
            ReservationError::RollCallTooEarly(_) => Refusal::new(ErrorCode::RollCallTooEarly, message),
        }
    }
}

impl From<ReservationError> for ApiError {
    fn from(error: ReservationError) -> Self {
        ApiError::Refused(Refusal::from(&error))
    }
}

impl From<CollectivityError> for ApiError {
    /// In the language of the request being served.
    fn from(error: CollectivityError) -> Self {
        let message = crate::i18n::collectivity_error(&error, crate::i18n::current());
        match error {
            CollectivityError::NotFound
            | CollectivityError::UnknownService(_)
            | CollectivityError::UnknownUnit(_) => ApiError::NotFound(message),
            CollectivityError::AlreadyExists
            | CollectivityError::DuplicateService
            | CollectivityError::DuplicateUnit
            | CollectivityError::AlreadyPublished(_)
            | CollectivityError::DuplicateClosure(_) => ApiError::Conflict(message),
            CollectivityError::EmptyName
            | CollectivityError::NoOpeningDay
            | CollectivityError::InvalidDeadline(_)
            | CollectivityError::InvalidPeriod(_)
            | CollectivityError::InvalidText(_)
            | CollectivityError::UnknownDepartment(_)
            | CollectivityError::NoSchoolZone
            | CollectivityError::CalendarNotAvailable(_)
            | CollectivityError::ClosureTooLong
            | CollectivityError::TooManyClosures
            | CollectivityError::InvalidAbsenceRules
            | CollectivityError::InvalidPaymentRules
            | CollectivityError::WindowTooLong
            | CollectivityError::ResidentsOpenLater
            | CollectivityError::TooManyWindows
            | CollectivityError::AllocationClosesBeforeOpening
            | CollectivityError::DuplicateCriterion
            | CollectivityError::InvalidSeedCommitment
            | CollectivityError::InvalidTariff
            | CollectivityError::TooManyTariffs
            | CollectivityError::TooManyPlaces
            | CollectivityError::TooManyPlaceDates
            | CollectivityError::InvalidRequestCategory
            | CollectivityError::TooManyRequestCategories => ApiError::Validation(message),
        }
    }
}

impl From<InvoiceError> for ApiError {
    /// An invoice's refusal outside the context that names it (the
    /// payments say which invoice themselves).
    fn from(error: InvoiceError) -> Self {
        let message = crate::i18n::invoice_error(&error, "", crate::i18n::current());
        match error {
            InvoiceError::NotIssued => ApiError::NotFound(message),
            InvoiceError::AlreadyIssued => ApiError::Conflict(message),
            InvoiceError::PaymentInProgress | InvoiceError::NotThisPayment => {
                ApiError::refused(ErrorCode::PaymentInProgress, &message)
            }
            InvoiceError::AlreadyPaid | InvoiceError::Cancelled | InvoiceError::AmountMismatch { .. } => {
                ApiError::refused(ErrorCode::InvoiceNotPayable, &message)
            }
            InvoiceError::InvalidLines | InvoiceError::NotRefundable | InvoiceError::EmptyReason => {
                ApiError::Validation(message)
            }
        }
    }
}

impl From<RequestError> for ApiError {
    fn from(error: RequestError) -> Self {
        let message = crate::i18n::request_error(&error, crate::i18n::current());
        match error {
            RequestError::NotSubmitted => ApiError::NotFound(message),
            RequestError::AlreadySubmitted => ApiError::Conflict(message),
            RequestError::Closed => ApiError::refused(ErrorCode::RequestClosed, &message),
            RequestError::FileNotAccepted { .. } | RequestError::InvalidFile => {
                ApiError::refused(ErrorCode::FileRefused, &message)
            }
            _ => ApiError::Validation(message),
        }
    }
}

impl From<PaymentError> for ApiError {
    fn from(error: PaymentError) -> Self {
        let message = crate::i18n::payment_error(&error, crate::i18n::current());
        match error {
            PaymentError::NotStarted => ApiError::NotFound(message),
            PaymentError::AlreadyStarted | PaymentError::AlreadyOpened => ApiError::Conflict(message),
            PaymentError::InvalidInvoices | PaymentError::NotOpened | PaymentError::InvalidOperationId => {
                ApiError::Validation(message)
            }
        }
    }
}

impl From<FamilyError> for ApiError {
    /// In the language of the request being served.
    fn from(error: FamilyError) -> Self {
        let message = crate::i18n::family_error(&error, crate::i18n::current());
        match error {
            FamilyError::NotFound | FamilyError::UnknownChild(_) => ApiError::NotFound(message),
            FamilyError::AlreadyOpened
            | FamilyError::DuplicateChild
            | FamilyError::AlreadyEnrolled(_)
            | FamilyError::AlreadyActivated
            | FamilyError::AlreadyMember(_)
            | FamilyError::AlreadyInvited => ApiError::Conflict(message),
            FamilyError::NotAMember(_) | FamilyError::NotAGuardian(_) => ApiError::Forbidden,
            FamilyError::TooManyGuardians => ApiError::refused(ErrorCode::TooManyGuardians, &message),
            FamilyError::Erased => ApiError::refused(ErrorCode::FamilyErased, &message),
            FamilyError::InvalidEmail(_)
            | FamilyError::EmptyFamilyRef
            | FamilyError::EmptyChildName
            | FamilyError::EmptyGuardianName
            | FamilyError::InvalidPhone(_)
            | FamilyError::InvalidAddress(_)
            | FamilyError::InvalidQuotientPeriod
            | FamilyError::InvalidText(_) => ApiError::Validation(message),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict => ApiError::Conflict(crate::i18n::say("api.store_conflict", &[])),
            StoreError::IdTaken => ApiError::Conflict(crate::i18n::say("api.store_id_taken", &[])),
            StoreError::Database(error) => error.into(),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(error: sqlx::Error) -> Self {
        if is_outage(&error) {
            ApiError::Unavailable(error.to_string())
        } else {
            ApiError::Internal(error.to_string())
        }
    }
}

impl ApiError {
    /// A refusal with its own stable code.
    pub fn refused(code: ErrorCode, message: &str) -> ApiError {
        ApiError::Refused(Refusal::new(code, message.to_string()))
    }

    /// The message the client reads; internal details are never in it.
    pub fn message(&self) -> String {
        match self {
            ApiError::Unauthenticated => crate::i18n::say("api.unauthenticated", &[]),
            ApiError::Forbidden => crate::i18n::say("api.forbidden", &[]),
            ApiError::NotFound(message) | ApiError::Validation(message) | ApiError::Conflict(message) => {
                message.clone()
            }
            ApiError::Refused(refusal) => refusal.message.clone(),
            ApiError::Unavailable(_) => crate::i18n::say("api.unavailable", &[]),
            ApiError::Internal(_) => crate::i18n::say("api.internal", &[]),
        }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            ApiError::Unauthenticated => ErrorCode::Unauthenticated,
            ApiError::Forbidden => ErrorCode::Forbidden,
            ApiError::NotFound(_) => ErrorCode::NotFound,
            ApiError::Validation(_) => ErrorCode::Validation,
            ApiError::Conflict(_) => ErrorCode::Conflict,
            ApiError::Refused(refusal) => refusal.code,
            ApiError::Unavailable(_) => ErrorCode::Unavailable,
            ApiError::Internal(_) => ErrorCode::Internal,
        }
    }
}

impl From<ApiError> for async_graphql::Error {
    fn from(error: ApiError) -> Self {
        match &error {
            ApiError::Internal(detail) => tracing::error!(%detail, "internal error"),
            ApiError::Unavailable(detail) => tracing::warn!(%detail, "database unavailable"),
            _ => {}
        }
        let code = error.code().as_str();
        let refusal = match &error {
            ApiError::Refused(refusal) => Some(refusal.clone()),
            _ => None,
        };
        async_graphql::Error::new(error.message()).extend_with(|_, extensions| {
            extensions.set("code", code);
            if let Some(refusal) = &refusal {
                if let Some(deadline) = refusal.deadline {
                    extensions.set(
                        "deadline",
                        espace_famille_domain::calendar::in_paris(deadline).to_rfc3339(),
                    );
                }
                if let Some(reason) = &refusal.closed_reason {
                    extensions.set("closedReason", reason.as_str());
                }
                if let Some(owed) = refusal.owed_cents {
                    extensions.set("owedCents", owed);
                }
                if let Some(minimum) = refusal.minimum_cents {
                    extensions.set("minimumCents", minimum);
                }
                if let Some(opens) = refusal.opens_at {
                    extensions.set(
                        "opensAt",
                        espace_famille_domain::calendar::in_paris(opens).to_rfc3339(),
                    );
                }
            }
        })
    }
}
