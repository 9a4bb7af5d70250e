//! How a family decides on a command, and applies its events.

#[allow(unused_imports)]
use super::*;

impl Aggregate for Family {
    const TYPE: &'static str = "Family";
    type Command = FamilyCommand;
    type Event = FamilyEvent;
    type Error = FamilyError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        if let FamilyCommand::OpenAccount {
            id,
            collectivity_id,
            family_ref,
            guardian_email,
        } = command
        {
            if self.exists() {
                return Err(FamilyError::AlreadyOpened);
            }
            let guardian_email = email(&guardian_email)?;
            let family_ref = self::family_ref(&family_ref)?;
            let event = FamilyEvent::FamilyAccountOpened {
                id,
                collectivity_id,
                family_ref,
                guardian_email,
            };
            sink.write(event, self).await;
            return Ok(());
        }
        if !self.exists() {
            return Err(FamilyError::NotFound);
        }
        if self.erased {
            return Err(FamilyError::Erased);
        }
        let event = match command {
            FamilyCommand::OpenAccount { .. } => unreachable!("handled above"),
            FamilyCommand::RegisterChild { mut child } => {
                child.first_name = personal_text(
                    "a first name",
                    child.first_name,
                    text::NAME,
                    FamilyError::EmptyChildName,
                )?;
                child.last_name = personal_text(
                    "a last name",
                    child.last_name,
                    text::NAME,
                    FamilyError::EmptyChildName,
                )?;
                child.school_class =
                    personal_optional("a school class", child.school_class, text::SCHOOL_CLASS)?;
                if let Personal::Known(birth_date) = child.birth_date {
                    text::date("a birth date", birth_date)?;
                }
                if self.children.contains_key(&child.id) {
                    return Err(FamilyError::DuplicateChild);
                }
                FamilyEvent::ChildRegistered { child }
            }
            FamilyCommand::EnrolChild { enrolment } => {
                text::year("a school year", enrolment.school_year.0)?;
                if !self.children.contains_key(&enrolment.child_id) {
                    return Err(FamilyError::UnknownChild(enrolment.child_id));
                }
                if !self.is_member_of(enrolment.collectivity_id) {
                    return Err(FamilyError::NotAMember(enrolment.collectivity_id));
                }
                if self.enrolments.contains(&enrolment) {
                    return Err(FamilyError::AlreadyEnrolled(enrolment.school_year));
                }
                FamilyEvent::ChildEnrolled { enrolment }
            }
            FamilyCommand::DeclareChildHealth { child_id, health } => {
                if !self.children.contains_key(&child_id) {
                    return Err(FamilyError::UnknownChild(child_id));
                }
                let health = match health {
                    Personal::Known(health) => Personal::Known(ChildHealth {
                        allergies: text::multiline("allergies", health.allergies.as_deref(), text::COMMENT)?,
                        pai: health.pai,
                    }),
                    Personal::Erased => return Err(FamilyError::Erased),
                };
                if self.health.get(&child_id) == Some(&health) {
                    return Ok(());
                }
                FamilyEvent::ChildHealthDeclared { child_id, health }
            }
            FamilyCommand::ActivateAccount {
                account_id,
                profile,
                email,
            } => {
                if self.is_guardian(account_id) {
                    return Err(FamilyError::AlreadyActivated);
                }
                let email = email.as_ref().map(self::email).transpose()?;
                FamilyEvent::AccountActivated {
                    account_id,
                    profile: guardians::checked(profile)?,
                    email,
                }
            }
            FamilyCommand::UpdateGuardianProfile { account_id, profile } => {
                if !self.is_guardian(account_id) {
                    return Err(FamilyError::NotAGuardian(account_id));
                }
                FamilyEvent::GuardianProfileUpdated {
                    account_id,
                    profile: guardians::checked(profile)?,
                }
            }
            FamilyCommand::InviteGuardian { email } => {
                let email = self::email(&email)?;
                if self.knows_email(email.known().map(String::as_str).unwrap_or_default()) {
                    return Err(FamilyError::AlreadyInvited);
                }
                if 1 + self.invited.len() >= MAX_GUARDIANS {
                    return Err(FamilyError::TooManyGuardians);
                }
                FamilyEvent::GuardianInvited { email }
            }
            FamilyCommand::ChangeGuardianEmail { account_id, email } => {
                if !self.is_guardian(account_id) {
                    return Err(FamilyError::NotAGuardian(account_id));
                }
                FamilyEvent::GuardianEmailChanged {
                    account_id,
                    email: self::email(&email)?,
                }
            }
            FamilyCommand::JoinCollectivity {
                collectivity_id,
                family_ref,
            } => {
                if self.is_member_of(collectivity_id) {
                    return Err(FamilyError::AlreadyMember(collectivity_id));
                }
                let family_ref = self::family_ref(&family_ref)?;
                FamilyEvent::JoinedCollectivity {
                    collectivity_id,
                    family_ref,
                }
            }
            FamilyCommand::SetResidence {
                collectivity_id,
                resident,
            } => {
                if !self.is_member_of(collectivity_id) {
                    return Err(FamilyError::NotAMember(collectivity_id));
                }
                if self.residences.contains(&collectivity_id) == resident {
                    return Ok(());
                }
                FamilyEvent::ResidenceSet {
                    collectivity_id,
                    resident,
                }
            }
            FamilyCommand::SetWorkingParents {
                collectivity_id,
                both_working,
            } => {
                if !self.is_member_of(collectivity_id) {
                    return Err(FamilyError::NotAMember(collectivity_id));
                }
                if self.working_parents.contains(&collectivity_id) == both_working {
                    return Ok(());
                }
                FamilyEvent::WorkingParentsSet {
                    collectivity_id,
                    both_working,
                }
            }
            FamilyCommand::SetQuotientFamilial { quotient } => {
                if !self.is_member_of(quotient.collectivity_id) {
                    return Err(FamilyError::NotAMember(quotient.collectivity_id));
                }
                text::date("a start of validity", quotient.valid_from)?;
                if let Some(until) = quotient.valid_until {
                    text::date("an end of validity", until)?;
                }
                if quotient
                    .valid_until
                    .is_some_and(|until| until < quotient.valid_from)
                {
                    return Err(FamilyError::InvalidQuotientPeriod);
                }
                FamilyEvent::QuotientFamilialSet { quotient }
            }
            FamilyCommand::Erase => FamilyEvent::FamilyErased,
        };
        sink.write(event, self).await;
        Ok(())
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            FamilyEvent::FamilyAccountOpened {
                id,
                collectivity_id,
                family_ref,
                guardian_email,
            } => {
                self.id = Some(id);
                self.guardian_email = Some(guardian_email);
                self.memberships.insert(collectivity_id, family_ref);
            }
            FamilyEvent::ChildRegistered { child } => {
                self.children.insert(child.id, child);
            }
            FamilyEvent::ChildEnrolled { enrolment } => {
                self.enrolments.insert(enrolment);
            }
            FamilyEvent::ChildHealthDeclared { child_id, health } => {
                self.health.insert(child_id, health);
            }
            FamilyEvent::AccountActivated {
                account_id,
                profile,
                email,
            } => {
                self.guardians.push(Guardian {
                    account_id,
                    profile,
                    email,
                });
            }
            FamilyEvent::GuardianProfileUpdated { account_id, profile } => {
                if let Some(guardian) = self.guardians.iter_mut().find(|g| g.account_id == account_id) {
                    guardian.profile = profile;
                }
            }
            FamilyEvent::GuardianInvited { email } => self.invited.push(email),
            FamilyEvent::GuardianEmailChanged { account_id, email } => {
                if let Some(guardian) = self.guardians.iter_mut().find(|g| g.account_id == account_id) {
                    guardian.email = Some(email);
                }
            }
            FamilyEvent::JoinedCollectivity {
                collectivity_id,
                family_ref,
            } => {
                self.memberships.insert(collectivity_id, family_ref);
            }
            FamilyEvent::QuotientFamilialSet { quotient } => self.quotients.push(quotient),
            FamilyEvent::ResidenceSet {
                collectivity_id,
                resident,
            } => {
                if resident {
                    self.residences.insert(collectivity_id);
                } else {
                    self.residences.remove(&collectivity_id);
                }
            }
            FamilyEvent::WorkingParentsSet {
                collectivity_id,
                both_working,
            } => {
                if both_working {
                    self.working_parents.insert(collectivity_id);
                } else {
                    self.working_parents.remove(&collectivity_id);
                }
            }
            FamilyEvent::FamilyErased => self.erased = true,
        }
    }
}
