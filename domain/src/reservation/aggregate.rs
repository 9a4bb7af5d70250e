//! How a reservation decides on a command, and applies its events.

#[allow(unused_imports)]
use super::*;

impl Aggregate for Reservation {
    const TYPE: &'static str = "Reservation";
    type Command = ReservationCommand;
    type Event = ReservationEvent;
    type Error = ReservationError;
    type Services = BookingContext;

    async fn handle(
        &mut self,
        command: Self::Command,
        context: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        match command {
            ReservationCommand::Request {
                child_id,
                unit_id,
                date,
                origin,
            } => {
                let slot = self.check_request(child_id, unit_id, date, context)?;
                let unit = context.collectivity.units.get(&unit_id);
                let prepaid =
                    unit.is_some_and(|unit| unit.billing == crate::collectivity::BillingMode::Prepaid);
                let approval = unit.is_some_and(|unit| unit.booking_needs_approval);
                let collecting = context.collectivity.collecting(unit_id, date, context.now);
                sink.write(ReservationEvent::ReservationRequested { slot, origin }, self)
                    .await;
                let next = if let Some(window) = collecting {
                    ReservationEvent::AllocationRequested {
                        window_id: window.id,
                        closes_at: window.allocation.as_ref().map_or(context.now, |a| a.closes_at),
                    }
                } else if prepaid {
                    // Confirmed by its payment, not by an agent.
                    ReservationEvent::PaymentAwaited
                } else if approval {
                    ReservationEvent::BookingAwaitingApproval
                } else {
                    ReservationEvent::ReservationConfirmed
                };
                sink.write(next, self).await;
            }
            ReservationCommand::JoinWaitingList {
                child_id,
                unit_id,
                date,
                origin,
                ticket,
                position,
            } => {
                let slot = self.check_request(child_id, unit_id, date, context)?;
                sink.write(ReservationEvent::ReservationRequested { slot, origin }, self)
                    .await;
                sink.write(ReservationEvent::WaitListed { ticket, position }, self)
                    .await;
            }
            ReservationCommand::ConfirmPayment { invoice_id } => {
                if self.status != ReservationStatus::AwaitingPayment {
                    return Err(ReservationError::NotAwaitingPayment);
                }
                sink.write(ReservationEvent::PrepaymentReceived { invoice_id }, self)
                    .await;
            }
            ReservationCommand::Release => {
                if self.status != ReservationStatus::AwaitingPayment {
                    return Err(ReservationError::NotAwaitingPayment);
                }
                sink.write(ReservationEvent::Released, self).await;
            }
            ReservationCommand::LeaveWaitingList => {
                if self.status != ReservationStatus::WaitListed {
                    return Err(ReservationError::NotWaitListed);
                }
                let event = self.check_cancel(context)?;
                sink.write(event, self).await;
            }
            ReservationCommand::Cancel => {
                let event = self.check_cancel(context)?;
                sink.write(event, self).await;
            }
            ReservationCommand::Approve { comment } => {
                let event = self.check_decision(Decision::Approve { comment })?;
                sink.write(event, self).await;
            }
            ReservationCommand::Reject { reason } => {
                let event = self.check_decision(Decision::Reject { reason })?;
                sink.write(event, self).await;
            }
            ReservationCommand::CancelByCommune { reason } => {
                let event = self.check_cancel_by_commune(&reason)?;
                sink.write(event, self).await;
            }
            ReservationCommand::ReportAbsence { reason } => {
                let event = self.check_report_absence(&reason, context)?;
                sink.write(event, self).await;
            }
            ReservationCommand::JudgeAbsence { justified, note } => {
                let event = self.check_judge_absence(justified, note.as_deref())?;
                sink.write(event, self).await;
            }
            ReservationCommand::RecordAttendance {
                child_id,
                unit_id,
                date,
                present,
            } => {
                if self
                    .slot
                    .is_some_and(|slot| (slot.child_id, slot.unit_id, slot.date) != (child_id, unit_id, date))
                {
                    return Err(ReservationError::OtherFamily);
                }
                let today = crate::calendar::paris_today(context.now);
                match self.check_attendance(date, present, today)? {
                    RollCallEntry::Unchanged => {}
                    RollCallEntry::Record(event) => sink.write(event, self).await,
                    RollCallEntry::Unexpected => {
                        let event = self.check_unexpected_presence(child_id, unit_id, date, context)?;
                        sink.write(event, self).await;
                    }
                }
            }
        }
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            ReservationEvent::ReservationRequested { slot, .. } => {
                self.slot = Some(slot);
                self.paid_by = None;
            }
            ReservationEvent::AttendanceRecorded { present } => {
                self.attendance = Some(match (present, self.status.booked_for_roll_call()) {
                    (false, _) => Attendance::Absent,
                    (true, true) => Attendance::Present,
                    (true, false) => Attendance::Unexpected,
                })
            }
            ReservationEvent::UnexpectedPresenceRecorded { slot } => {
                self.slot.get_or_insert(slot);
                self.attendance = Some(Attendance::Unexpected);
            }
            ReservationEvent::WaitListed { .. } | ReservationEvent::AllocationWaitListed { .. } => {
                self.status = ReservationStatus::WaitListed
            }
            ReservationEvent::AllocationRequested { .. } => {
                self.status = ReservationStatus::AllocationPending
            }
            ReservationEvent::ReservationConfirmed
            | ReservationEvent::Promoted
            | ReservationEvent::PlaceAllocated { .. }
            | ReservationEvent::AgentRejected { .. }
            | ReservationEvent::BookingApproved { .. } => self.status = ReservationStatus::Confirmed,
            ReservationEvent::BookingAwaitingApproval => self.status = ReservationStatus::AwaitingApproval,
            ReservationEvent::PaymentAwaited => self.status = ReservationStatus::AwaitingPayment,
            ReservationEvent::PrepaymentReceived { invoice_id } => {
                self.status = ReservationStatus::Confirmed;
                self.paid_by = Some(invoice_id);
            }
            ReservationEvent::Released => self.status = ReservationStatus::Released,
            ReservationEvent::BookingRejected { .. } => self.status = ReservationStatus::Rejected,
            ReservationEvent::CancellationRequested => self.status = ReservationStatus::CancellationRequested,
            ReservationEvent::ReservationCancelled
            | ReservationEvent::LeftWaitingList
            | ReservationEvent::AgentApproved { .. }
            | ReservationEvent::ReservationCancelledByCommune { .. } => {
                self.status = ReservationStatus::Cancelled
            }
            ReservationEvent::AbsenceReported { .. } => self.status = ReservationStatus::AbsenceReported,
            ReservationEvent::AbsenceJustified { .. } => self.status = ReservationStatus::AbsentJustified,
            ReservationEvent::AbsenceUnjustified { .. } => self.status = ReservationStatus::AbsentUnjustified,
        }
    }
}
