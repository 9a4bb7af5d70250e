//! The stable codes a client switches on (`extensions.code`): one enum,
//! one spelling each, the same in answers and in stored basket receipts.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    // Any operation.
    Unauthenticated,
    Forbidden,
    NotFound,
    Validation,
    Conflict,
    Unavailable,
    Overloaded,
    Internal,
    // The request itself (GraphQL over HTTP).
    BadRequest,
    UnsupportedMediaType,
    NotAcceptable,
    MethodNotAllowed,
    DocumentTooLarge,
    GraphqlParseFailed,
    GraphqlValidationFailed,
    // The booking rules.
    DeadlinePassed,
    UnitClosed,
    NotEnrolled,
    AlreadyBooked,
    NotBooked,
    CancellationPending,
    AlreadyCancelled,
    NoPendingCancellation,
    PrepaidNotAvailable,
    DuplicateLine,
    UnknownAbsenceReason,
    AbsenceTooLate,
    AbsenceAlreadyReported,
    NoAbsenceReported,
    RollCallTooEarly,
    BookingNotOpen,
    AlreadyWaitListed,
    NotWaitListed,
    WaitingListFull,
    AlreadyRequested,
    AllocationClosed,
    // Invoices and payments.
    InvoiceNotPayable,
    PaymentInProgress,
    BelowMinimum,
    DebtLimit,
    // Accounts and families.
    InvalidCredentials,
    RateLimited,
    InvalidToken,
    TokenExpired,
    FamilyErased,
    TooManyGuardians,
    // Requests.
    FileRefused,
    RequestClosed,
}

impl ErrorCode {
    /// Every code, for the tests and the documentation.
    pub const ALL: &'static [ErrorCode] = &[
        ErrorCode::Unauthenticated,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::Validation,
        ErrorCode::Conflict,
        ErrorCode::Unavailable,
        ErrorCode::Overloaded,
        ErrorCode::Internal,
        ErrorCode::BadRequest,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::NotAcceptable,
        ErrorCode::MethodNotAllowed,
        ErrorCode::DocumentTooLarge,
        ErrorCode::GraphqlParseFailed,
        ErrorCode::GraphqlValidationFailed,
        ErrorCode::DeadlinePassed,
        ErrorCode::UnitClosed,
        ErrorCode::NotEnrolled,
        ErrorCode::AlreadyBooked,
        ErrorCode::NotBooked,
        ErrorCode::CancellationPending,
        ErrorCode::AlreadyCancelled,
        ErrorCode::NoPendingCancellation,
        ErrorCode::PrepaidNotAvailable,
        ErrorCode::DuplicateLine,
        ErrorCode::UnknownAbsenceReason,
        ErrorCode::AbsenceTooLate,
        ErrorCode::AbsenceAlreadyReported,
        ErrorCode::NoAbsenceReported,
        ErrorCode::RollCallTooEarly,
        ErrorCode::BookingNotOpen,
        ErrorCode::AlreadyWaitListed,
        ErrorCode::NotWaitListed,
        ErrorCode::WaitingListFull,
        ErrorCode::AlreadyRequested,
        ErrorCode::AllocationClosed,
        ErrorCode::InvoiceNotPayable,
        ErrorCode::PaymentInProgress,
        ErrorCode::BelowMinimum,
        ErrorCode::DebtLimit,
        ErrorCode::InvalidCredentials,
        ErrorCode::RateLimited,
        ErrorCode::InvalidToken,
        ErrorCode::TokenExpired,
        ErrorCode::FamilyErased,
        ErrorCode::TooManyGuardians,
        ErrorCode::FileRefused,
        ErrorCode::RequestClosed,
    ];

    /// The code as clients read it.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Unauthenticated => "UNAUTHENTICATED",
            ErrorCode::Forbidden => "FORBIDDEN",
            ErrorCode::NotFound => "NOT_FOUND",
            ErrorCode::Validation => "VALIDATION",
            ErrorCode::Conflict => "CONFLICT",
            ErrorCode::Unavailable => "UNAVAILABLE",
            ErrorCode::Overloaded => "OVERLOADED",
            ErrorCode::Internal => "INTERNAL",
            ErrorCode::BadRequest => "BAD_REQUEST",
            ErrorCode::UnsupportedMediaType => "UNSUPPORTED_MEDIA_TYPE",
            ErrorCode::NotAcceptable => "NOT_ACCEPTABLE",
            ErrorCode::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            ErrorCode::DocumentTooLarge => "DOCUMENT_TOO_LARGE",
            ErrorCode::GraphqlParseFailed => "GRAPHQL_PARSE_FAILED",
            ErrorCode::GraphqlValidationFailed => "GRAPHQL_VALIDATION_FAILED",
            ErrorCode::DeadlinePassed => "DEADLINE_PASSED",
            ErrorCode::UnitClosed => "UNIT_CLOSED",
            ErrorCode::NotEnrolled => "NOT_ENROLLED",
            ErrorCode::AlreadyBooked => "ALREADY_BOOKED",
            ErrorCode::NotBooked => "NOT_BOOKED",
            ErrorCode::CancellationPending => "CANCELLATION_PENDING",
            ErrorCode::AlreadyCancelled => "ALREADY_CANCELLED",
            ErrorCode::NoPendingCancellation => "NO_PENDING_CANCELLATION",
            ErrorCode::PrepaidNotAvailable => "PREPAID_NOT_AVAILABLE",
            ErrorCode::DuplicateLine => "DUPLICATE_LINE",
            ErrorCode::UnknownAbsenceReason => "UNKNOWN_ABSENCE_REASON",
            ErrorCode::AbsenceTooLate => "ABSENCE_TOO_LATE",
            ErrorCode::AbsenceAlreadyReported => "ABSENCE_ALREADY_REPORTED",
            ErrorCode::NoAbsenceReported => "NO_ABSENCE_REPORTED",
            ErrorCode::RollCallTooEarly => "ROLL_CALL_TOO_EARLY",
            ErrorCode::BookingNotOpen => "BOOKING_NOT_OPEN",
            ErrorCode::AlreadyWaitListed => "ALREADY_WAIT_LISTED",
            ErrorCode::NotWaitListed => "NOT_WAIT_LISTED",
            ErrorCode::WaitingListFull => "WAITING_LIST_FULL",
            ErrorCode::AlreadyRequested => "ALREADY_REQUESTED",
            ErrorCode::AllocationClosed => "ALLOCATION_CLOSED",
            ErrorCode::InvoiceNotPayable => "INVOICE_NOT_PAYABLE",
            ErrorCode::PaymentInProgress => "PAYMENT_IN_PROGRESS",
            ErrorCode::BelowMinimum => "BELOW_MINIMUM",
            ErrorCode::DebtLimit => "DEBT_LIMIT",
            ErrorCode::InvalidCredentials => "INVALID_CREDENTIALS",
            ErrorCode::RateLimited => "RATE_LIMITED",
            ErrorCode::InvalidToken => "INVALID_TOKEN",
            ErrorCode::TokenExpired => "TOKEN_EXPIRED",
            ErrorCode::FamilyErased => "FAMILY_ERASED",
            ErrorCode::TooManyGuardians => "TOO_MANY_GUARDIANS",
            ErrorCode::FileRefused => "FILE_REFUSED",
            ErrorCode::RequestClosed => "REQUEST_CLOSED",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_is_spelled_the_same_in_answers_and_in_stored_receipts() {
        for code in ErrorCode::ALL {
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
            let read: ErrorCode = serde_json::from_value(code.as_str().into()).unwrap();
            assert_eq!(read, *code);
        }
        let mut spelled: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        spelled.sort();
        spelled.dedup();
        assert_eq!(spelled.len(), ErrorCode::ALL.len(), "each code once");
    }

    #[test]
    fn the_documentation_lists_every_code_a_client_may_get() {
        let documented = [
            include_str!("../../../README.md"),
            include_str!("../../../docs/operations.md"),
        ]
        .concat();
        for code in ErrorCode::ALL {
            assert!(
                documented.contains(&format!("`{code}`")),
                "{code} is in neither the README nor docs/operations.md"
            );
        }
    }
}
