//! The domain's refusals as a person reads them, one function per
//! aggregate's error, each naming what was refused and the rule.

use espace_famille_domain::calendar::DeadlineRuleError;
use espace_famille_domain::collectivity::{
    CollectivityError, MAX_ABSENCE_DELAY_DAYS, MAX_ABSENCE_REASONS, MAX_BOOKING_WINDOWS, MAX_BRACKETS,
    MAX_CLOSURES, MAX_CLOSURE_DAYS, MAX_PLACES, MAX_PLACE_DATES, MAX_PRICE_CENTS, MAX_TARIFFS,
};
use espace_famille_domain::family::{FamilyError, MAX_GUARDIANS};
use espace_famille_domain::invoice::InvoiceError;
use espace_famille_domain::payment::PaymentError;
use espace_famille_domain::request::RequestError;
use espace_famille_domain::reservation::ReservationError;
use espace_famille_domain::text::{TextError, FIRST_YEAR, LAST_YEAR};
use rust_i18n::t;

use super::{closed_reason, day, euros, field, instant, Locale};

/// A value the domain cannot keep.
pub fn text_error(error: &TextError, locale: Locale) -> String {
    let l = locale.code();
    match error {
        TextError::Empty { field: name } => t!("text.empty", locale = l, field = field(name, locale)),
        TextError::TooLong { field: name, max } => {
            t!(
                "text.too_long",
                locale = l,
                field = field(name, locale),
                max = max
            )
        }
        TextError::ControlCharacter { field: name } => {
            t!("text.control_character", locale = l, field = field(name, locale))
        }
        TextError::OutOfRange { field: name } => t!(
            "text.out_of_range",
            locale = l,
            field = field(name, locale),
            first = FIRST_YEAR,
            last = LAST_YEAR
        ),
    }
    .into_owned()
}

/// Why a reservation's command is refused.
pub fn reservation_error(error: &ReservationError, locale: Locale) -> String {
    let l = locale.code();
    match error {
        ReservationError::UnknownUnit(id) => t!("refusal.unknown_unit", locale = l, id = id),
        ReservationError::UnknownChild(id) => t!("refusal.unknown_child", locale = l, id = id),
        ReservationError::UnitClosed { date, reason } => t!(
            "refusal.unit_closed",
            locale = l,
            date = day(*date, locale),
            reason = closed_reason(reason, locale)
        ),
        ReservationError::NotEnrolled(year) => {
            t!("refusal.not_enrolled", locale = l, year = year.to_string())
        }
        ReservationError::DeadlinePassed(at) => {
            t!(
                "refusal.deadline_passed",
                locale = l,
                deadline = instant(*at, locale)
            )
        }
        ReservationError::BookingNotOpen(at) => {
            t!(
                "refusal.booking_not_open",
                locale = l,
                opens = instant(*at, locale)
            )
        }
        ReservationError::AlreadyBooked => t!("refusal.already_booked", locale = l),
        ReservationError::AlreadyWaitListed => t!("refusal.already_wait_listed", locale = l),
        ReservationError::NotWaitListed => t!("refusal.not_wait_listed", locale = l),
        ReservationError::WaitingListFull => t!("refusal.waiting_list_full", locale = l),
        ReservationError::AlreadyRequested => t!("refusal.already_requested", locale = l),
        ReservationError::AllocationClosed => t!("refusal.allocation_closed", locale = l),
        ReservationError::NotBooked => t!("refusal.not_booked", locale = l),
        ReservationError::CancellationAlreadyRequested => t!("refusal.cancellation_pending", locale = l),
        ReservationError::AlreadyCancelled => t!("refusal.already_cancelled", locale = l),
        ReservationError::NoPendingCancellation => t!("refusal.nothing_pending", locale = l),
        ReservationError::EmptyReason => t!("refusal.empty_reason", locale = l),
        ReservationError::UnknownAbsenceReason(reason) => {
            t!("refusal.unknown_absence_reason", locale = l, reason = reason)
        }
        ReservationError::AbsenceTooLate(until) => {
            t!(
                "refusal.absence_too_late",
                locale = l,
                until = instant(*until, locale)
            )
        }
        ReservationError::AbsenceAlreadyReported => t!("refusal.absence_already_reported", locale = l),
        ReservationError::NoAbsenceReported => t!("refusal.no_absence_reported", locale = l),
        ReservationError::RollCallTooEarly(date) => {
            t!(
                "refusal.roll_call_too_early",
                locale = l,
                date = day(*date, locale)
            )
        }
        ReservationError::NotInCommune(id) => t!("refusal.not_in_commune", locale = l, id = id),
        ReservationError::PrepaidNotAvailable => t!("refusal.prepaid_not_available", locale = l),
        ReservationError::AwaitingPayment => t!("refusal.awaiting_payment", locale = l),
        ReservationError::DebtLimit { owed, limit } => t!(
            "refusal.debt_limit",
            locale = l,
            owed = euros(*owed, locale),
            limit = euros(*limit, locale)
        ),
        ReservationError::NotAwaitingPayment => t!("refusal.not_awaiting_payment", locale = l),
        ReservationError::OtherFamily => t!("refusal.other_family", locale = l),
        ReservationError::InvalidText(error) => return text_error(error, locale),
    }
    .into_owned()
}

/// Why a commune's set-up is refused.
pub fn collectivity_error(error: &CollectivityError, locale: Locale) -> String {
    let l = locale.code();
    match error {
        CollectivityError::AlreadyExists => t!("commune.already_exists", locale = l),
        CollectivityError::NotFound => t!("commune.not_found", locale = l),
        CollectivityError::EmptyName => t!("commune.empty_name", locale = l),
        CollectivityError::DuplicateService => t!("commune.duplicate_service", locale = l),
        CollectivityError::UnknownService(id) => t!("commune.unknown_service", locale = l, id = id),
        CollectivityError::DuplicateUnit => t!("commune.duplicate_unit", locale = l),
        CollectivityError::NoOpeningDay => t!("commune.no_opening_day", locale = l),
        CollectivityError::InvalidDeadline(DeadlineRuleError::TooFarAhead) => {
            t!("commune.deadline_too_far", locale = l)
        }
        CollectivityError::InvalidDeadline(DeadlineRuleError::InvalidDayOfMonth) => {
            t!("commune.deadline_day_of_month", locale = l)
        }
        CollectivityError::InvalidPeriod(range) => t!(
            "commune.invalid_period",
            locale = l,
            from = day(range.first, locale),
            to = day(range.last, locale)
        ),
        CollectivityError::UnknownDepartment(code) => {
            t!("commune.unknown_department", locale = l, code = code)
        }
        CollectivityError::NoSchoolZone => t!("commune.no_school_zone", locale = l),
        CollectivityError::CalendarNotAvailable(year) => {
            t!(
                "commune.calendar_not_available",
                locale = l,
                year = year.to_string()
            )
        }
        CollectivityError::AlreadyPublished(year) => {
            t!("commune.already_published", locale = l, year = year.to_string())
        }
        CollectivityError::ClosureTooLong => {
            t!("commune.closure_too_long", locale = l, max = MAX_CLOSURE_DAYS)
        }
        CollectivityError::TooManyClosures => t!("commune.too_many_closures", locale = l, max = MAX_CLOSURES),
        CollectivityError::DuplicateClosure(id) => t!("commune.duplicate_closure", locale = l, id = id),
        CollectivityError::UnknownUnit(id) => t!("commune.unknown_unit", locale = l, id = id),
        CollectivityError::InvalidAbsenceRules => t!(
            "commune.invalid_absence_rules",
            locale = l,
            reasons = MAX_ABSENCE_REASONS,
            days = MAX_ABSENCE_DELAY_DAYS
        ),
        CollectivityError::InvalidPaymentRules => t!(
            "commune.invalid_payment_rules",
            locale = l,
            max = espace_famille_domain::collectivity::MAX_RULE_CENTS
        ),
        CollectivityError::WindowTooLong => t!("commune.window_too_long", locale = l, max = MAX_CLOSURE_DAYS),
        CollectivityError::ResidentsOpenLater => t!("commune.residents_open_later", locale = l),
        CollectivityError::TooManyWindows => {
            t!("commune.too_many_windows", locale = l, max = MAX_BOOKING_WINDOWS)
        }
        CollectivityError::AllocationClosesBeforeOpening => {
            t!("commune.allocation_closes_before_opening", locale = l)
        }
        CollectivityError::DuplicateCriterion => t!("commune.duplicate_criterion", locale = l),
        CollectivityError::InvalidSeedCommitment => t!("commune.invalid_seed_commitment", locale = l),
        CollectivityError::InvalidTariff => t!(
            "commune.invalid_tariff",
            locale = l,
            brackets = MAX_BRACKETS,
            max = MAX_PRICE_CENTS
        ),
        CollectivityError::TooManyTariffs => t!("commune.too_many_tariffs", locale = l, max = MAX_TARIFFS),
        CollectivityError::TooManyPlaces => t!("commune.too_many_places", locale = l, max = MAX_PLACES),
        CollectivityError::TooManyPlaceDates => {
            t!("commune.too_many_place_dates", locale = l, max = MAX_PLACE_DATES)
        }
        CollectivityError::InvalidRequestCategory => t!(
            "commune.invalid_request_category",
            locale = l,
            fields = espace_famille_domain::collectivity::MAX_FORM_FIELDS,
            attachments = espace_famille_domain::collectivity::MAX_ATTACHMENTS,
            options = espace_famille_domain::collectivity::MAX_CHOICES
        ),
        CollectivityError::TooManyRequestCategories => t!(
            "commune.too_many_request_categories",
            locale = l,
            max = espace_famille_domain::collectivity::MAX_REQUEST_CATEGORIES
        ),
        CollectivityError::InvalidText(error) => return text_error(error, locale),
    }
    .into_owned()
}

/// Why a request's command is refused.
pub fn request_error(error: &RequestError, locale: Locale) -> String {
    use RequestError as E;
    let l = locale.code();
    match error {
        E::AlreadySubmitted => t!("request.already_submitted", locale = l),
        E::NotSubmitted => t!("request.not_found", locale = l),
        E::Closed => t!("request.closed", locale = l),
        E::CategoryRetired => t!("request.category_retired", locale = l),
        E::UnknownField(name) => t!("request.unknown_field", locale = l, name = name),
        E::MissingField(name) => t!("request.missing_field", locale = l, name = name),
        E::DuplicateField(name) => t!("request.duplicate_field", locale = l, name = name),
        E::InvalidField { name, expected } => {
            t!(
                "request.invalid_field",
                locale = l,
                name = name,
                expected = expected
            )
        }
        E::UnknownAttachment(name) => t!("request.unknown_attachment", locale = l, name = name),
        E::MissingAttachment(name) => t!("request.missing_attachment", locale = l, name = name),
        E::DuplicateAttachment(name) => t!("request.duplicate_attachment", locale = l, name = name),
        E::FileNotAccepted { name, kind } => t!(
            "request.file_not_accepted",
            locale = l,
            name = name,
            kind = crate::services::requests::kind_name(*kind)
        ),
        E::InvalidFile => t!("request.invalid_file", locale = l),
        E::AbsenceNeeded => t!("request.absence_needed", locale = l),
        E::NoAbsenceExpected => t!("request.no_absence_expected", locale = l),
        E::TooManyAnswers => t!(
            "request.too_many_answers",
            locale = l,
            max = espace_famille_domain::request::MAX_ANSWERS
        ),
        E::Text(error) => return text_error(error, locale),
    }
    .into_owned()
}

/// Why an invoice refuses, `number` naming it.
pub fn invoice_error(error: &InvoiceError, number: &str, locale: Locale) -> String {
    let l = locale.code();
    match error {
        InvoiceError::AlreadyIssued => t!("invoice.already_issued", locale = l),
        InvoiceError::NotIssued => t!("invoice.not_found", locale = l),
        InvoiceError::InvalidLines => t!(
            "invoice.invalid_lines",
            locale = l,
            max = espace_famille_domain::invoice::MAX_LINES
        ),
        InvoiceError::AlreadyPaid => t!("invoice.already_paid", locale = l, number = number),
        InvoiceError::Cancelled => t!("invoice.cancelled", locale = l, number = number),
        InvoiceError::AmountMismatch { paid, due } => {
            t!("invoice.amount_mismatch", locale = l, paid = paid, due = due)
        }
        InvoiceError::NotRefundable => t!("invoice.not_refundable", locale = l),
        InvoiceError::EmptyReason => t!("invoice.empty_reason", locale = l),
        InvoiceError::PaymentInProgress => t!("invoice.payment_in_progress", locale = l, number = number),
        InvoiceError::NotThisPayment => t!("invoice.not_this_payment", locale = l, number = number),
    }
    .into_owned()
}

/// Why a payment's command is refused.
pub fn payment_error(error: &PaymentError, locale: Locale) -> String {
    let l = locale.code();
    match error {
        PaymentError::AlreadyStarted | PaymentError::AlreadyOpened => {
            t!("payment.already_opened", locale = l)
        }
        PaymentError::NotStarted => t!("payment.not_found", locale = l),
        PaymentError::InvalidInvoices => t!(
            "payment.invalid",
            locale = l,
            max = espace_famille_domain::payment::MAX_INVOICES
        ),
        PaymentError::NotOpened => t!("payment.not_opened", locale = l),
        PaymentError::InvalidOperationId => t!("payment.invalid_operation_id", locale = l),
    }
    .into_owned()
}

/// Why a family's change is refused.
pub fn family_error(error: &FamilyError, locale: Locale) -> String {
    let l = locale.code();
    match error {
        FamilyError::AlreadyOpened => t!("family.already_opened", locale = l),
        FamilyError::NotFound => t!("family.not_found", locale = l),
        FamilyError::InvalidEmail(email) => t!("family.invalid_email", locale = l, email = email),
        FamilyError::EmptyFamilyRef => t!("family.empty_family_ref", locale = l),
        FamilyError::EmptyChildName => t!("family.empty_child_name", locale = l),
        FamilyError::DuplicateChild => t!("family.duplicate_child", locale = l),
        FamilyError::UnknownChild(id) => t!("family.unknown_child", locale = l, id = id),
        FamilyError::NotAMember(id) => t!("family.not_a_member", locale = l, id = id),
        FamilyError::AlreadyEnrolled(year) => {
            t!("family.already_enrolled", locale = l, year = year.to_string())
        }
        FamilyError::AlreadyActivated => t!("family.already_activated", locale = l),
        FamilyError::EmptyGuardianName => t!("family.empty_guardian_name", locale = l),
        FamilyError::InvalidPhone(phone) => t!("family.invalid_phone", locale = l, phone = phone),
        FamilyError::InvalidAddress(detail) => t!("family.invalid_address", locale = l, detail = detail),
        FamilyError::NotAGuardian(id) => t!("family.not_a_guardian", locale = l, id = id),
        FamilyError::AlreadyInvited => t!("family.already_invited", locale = l),
        FamilyError::TooManyGuardians => t!("family.too_many_guardians", locale = l, max = MAX_GUARDIANS),
        FamilyError::AlreadyMember(id) => t!("family.already_member", locale = l, id = id),
        FamilyError::InvalidQuotientPeriod => t!("family.invalid_quotient_period", locale = l),
        FamilyError::Erased => t!("family.erased", locale = l),
        FamilyError::InvalidText(error) => return text_error(error, locale),
    }
    .into_owned()
}
