//! The day itself: absences reported and judged, the roll call.

use super::*;

fn absent(reason: &str) -> ReservationCommand {
    ReservationCommand::ReportAbsence {
        reason: reason.into(),
    }
}

#[test]
fn an_absence_is_reported_on_the_day_itself_past_the_cancellation_deadline_with_a_communes_reason() {
    // Monday 7 December 2026 at 9:00 Paris: cancelling closed on Friday.
    framework("2026-12-07T08:00:00Z")
        .given(booked())
        .when(absent(" maladie "))
        .then_expect_events(vec![ReservationEvent::AbsenceReported {
            reason: "Maladie".into(),
        }]);
    framework("2026-12-07T08:00:00Z")
        .given(booked())
        .when(absent("Vacances au ski"))
        .then_expect_error(ReservationError::UnknownAbsenceReason("Vacances au ski".into()));
    // The next morning is too late: the commune allows the day itself.
    framework("2026-12-08T07:00:00Z")
        .given(booked())
        .when(absent("Maladie"))
        .then_expect_error(ReservationError::AbsenceTooLate(at("2026-12-07T22:59:59Z")));
    framework("2026-12-01T08:00:00Z")
        .given_no_previous_events()
        .when(absent("Maladie"))
        .then_expect_error(ReservationError::NotBooked);
    let mut reported = booked();
    reported.push(ReservationEvent::AbsenceReported {
        reason: "Maladie".into(),
    });
    framework("2026-12-07T08:00:00Z")
        .given(reported.clone())
        .when(absent("Maladie"))
        .then_expect_error(ReservationError::AbsenceAlreadyReported);
    framework("2026-12-01T08:00:00Z")
        .given(reported)
        .when(ReservationCommand::Cancel)
        .then_expect_error(ReservationError::AbsenceAlreadyReported);
}

#[test]
fn an_agent_judges_a_reported_absence_and_may_correct_it() {
    let judge = |justified| ReservationCommand::JudgeAbsence {
        justified,
        note: Some("certificat médical reçu".into()),
    };
    framework("2026-12-09T08:00:00Z")
        .given(booked())
        .when(judge(true))
        .then_expect_error(ReservationError::NoAbsenceReported);
    let mut reported = booked();
    reported.push(ReservationEvent::AbsenceReported {
        reason: "Maladie".into(),
    });
    framework("2026-12-09T08:00:00Z")
        .given(reported.clone())
        .when(judge(true))
        .then_expect_events(vec![ReservationEvent::AbsenceJustified {
            note: Some("certificat médical reçu".into()),
        }]);
    reported.push(ReservationEvent::AbsenceJustified { note: None });
    framework("2026-12-09T08:00:00Z")
        .given(reported)
        .when(judge(false))
        .then_expect_events(vec![ReservationEvent::AbsenceUnjustified {
            note: Some("certificat médical reçu".into()),
        }]);
}

fn roll_call(present: bool) -> ReservationCommand {
    ReservationCommand::RecordAttendance {
        child_id: LOUISE,
        unit_id: MEAL,
        date: monday(),
        present,
    }
}

#[test]
fn the_roll_call_records_a_booked_child_present_or_absent_and_a_correction_is_a_new_event() {
    // Monday 7 December 2026, 12:30 Paris.
    let lunch = "2026-12-07T11:30:00Z";
    framework(lunch)
        .given(booked())
        .when(roll_call(true))
        .then_expect_events(vec![ReservationEvent::AttendanceRecorded { present: true }]);
    let mut present = booked();
    present.push(ReservationEvent::AttendanceRecorded { present: true });
    // The same roll call sent again writes nothing.
    framework(lunch)
        .given(present.clone())
        .when(roll_call(true))
        .then_expect_events(vec![]);
    framework(lunch)
        .given(present)
        .when(roll_call(false))
        .then_expect_events(vec![ReservationEvent::AttendanceRecorded { present: false }]);
    // A reported absence is still taken at the roll call: the child came.
    let mut reported = booked();
    reported.push(ReservationEvent::AbsenceReported {
        reason: "Maladie".into(),
    });
    framework(lunch)
        .given(reported)
        .when(roll_call(true))
        .then_expect_events(vec![ReservationEvent::AttendanceRecorded { present: true }]);
    // Not before the day: Sunday evening is too early.
    framework("2026-12-06T19:00:00Z")
        .given(booked())
        .when(roll_call(true))
        .then_expect_error(ReservationError::RollCallTooEarly(monday()));
}

#[test]
fn a_child_there_without_a_booking_is_an_unexpected_presence_and_may_be_corrected() {
    let lunch = "2026-12-07T11:30:00Z";
    framework(lunch)
        .given_no_previous_events()
        .when(roll_call(true))
        .then_expect_events(vec![ReservationEvent::UnexpectedPresenceRecorded {
            slot: slot(),
        }]);
    // A cancelled booking is no booking.
    let mut cancelled = booked();
    cancelled.push(ReservationEvent::ReservationCancelled);
    framework(lunch)
        .given(cancelled)
        .when(roll_call(true))
        .then_expect_events(vec![ReservationEvent::UnexpectedPresenceRecorded {
            slot: slot(),
        }]);
    // Recorded there by mistake: absent corrects it.
    framework(lunch)
        .given(vec![ReservationEvent::UnexpectedPresenceRecorded {
            slot: slot(),
        }])
        .when(roll_call(false))
        .then_expect_events(vec![ReservationEvent::AttendanceRecorded { present: false }]);
    // Absent and never booked: nothing to record.
    framework(lunch)
        .given_no_previous_events()
        .when(roll_call(false))
        .then_expect_error(ReservationError::NotBooked);
    // A child of a family outside the commune is not taken.
    let mut stranger = family(true);
    stranger.memberships.clear();
    let context = BookingContext {
        family: Arc::new(stranger),
        ..context_at(lunch)
    };
    TestFramework::<Reservation>::with(context)
        .given_no_previous_events()
        .when(roll_call(true))
        .then_expect_error(ReservationError::NotInCommune(LOUISE));
    // Nor on a day the unit does not run (Sunday 6 December).
    framework("2026-12-06T11:30:00Z")
        .given_no_previous_events()
        .when(ReservationCommand::RecordAttendance {
            child_id: LOUISE,
            unit_id: MEAL,
            date: monday().pred_opt().unwrap(),
            present: true,
        })
        .then_expect_error_message("the unit is closed on 2026-12-06: the unit does not run on Sundays");
}

#[test]
fn attendance_applies_as_the_roll_call_left_it() {
    let mut reservation = Reservation::default();
    for event in booked() {
        reservation.apply(event);
    }
    reservation.apply(ReservationEvent::AttendanceRecorded { present: true });
    assert_eq!(reservation.attendance, Some(Attendance::Present));
    assert_eq!(reservation.status, ReservationStatus::Confirmed);
    let mut unexpected = Reservation::default();
    unexpected.apply(ReservationEvent::UnexpectedPresenceRecorded { slot: slot() });
    assert_eq!(unexpected.slot, Some(slot()));
    assert_eq!(unexpected.status, ReservationStatus::Free, "still not booked");
    assert_eq!(unexpected.attendance, Some(Attendance::Unexpected));
}
