//! The demo commune: Dammartin-sur-Tigeaux with its canteen (billed monthly)
//! and supervised study, one family with two children, and an agent. Loaded
//! by `serve --seed-demo` and `seed-demo`; loading it again changes nothing.

use chrono::{NaiveDate, NaiveTime, Utc, Weekday};
use espace_famille_domain::calendar::{DeadlineRule, OpenDuring, OpeningDays, SchoolYear, Zone};
use espace_famille_domain::collectivity::{
    BillingMode, Bracket, Collectivity, CollectivityCommand, Service, ServiceKind, Tariff, Unit,
};
use espace_famille_domain::family::Family;
use espace_famille_domain::family::{Child, Enrolment, FamilyCommand, GuardianProfile, PostalAddress};
use espace_famille_projections::store::{self, Metadata};
use uuid::{uuid, Uuid};

use crate::auth::accounts::Grant;
use crate::commands::Commands;
use crate::error::ApiError;

pub const COMMUNE: Uuid = uuid!("7a1d0000-0000-4000-8000-000000000001");
pub const CANTEEN: Uuid = uuid!("7a1d0000-0000-4000-8000-000000000002");
pub const STUDY: Uuid = uuid!("7a1d0000-0000-4000-8000-000000000003");
pub const MEAL: Uuid = uuid!("7a1d0000-0000-4000-8000-000000000004");
pub const STUDY_SESSION: Uuid = uuid!("7a1d0000-0000-4000-8000-000000000005");
pub const LEISURE: Uuid = uuid!("7a1d0000-0000-4000-8000-000000000006");
pub const WEDNESDAY: Uuid = uuid!("7a1d0000-0000-4000-8000-000000000007");
/// Wednesday mornings, paid when booked.
pub const WEDNESDAY_MORNING: Uuid = uuid!("7a1d0000-0000-4000-8000-000000000008");
pub const FAMILY: Uuid = uuid!("7a1d0000-0000-4000-8000-000000000010");
pub const LOUISE: Uuid = uuid!("7a1d0000-0000-4000-8000-000000000011");
pub const HUGO: Uuid = uuid!("7a1d0000-0000-4000-8000-000000000012");

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).expect("valid demo date")
}

fn time(h: u32, m: u32) -> NaiveTime {
    NaiveTime::from_hms_opt(h, m, 0).expect("valid demo time")
}

fn school_days() -> OpeningDays {
    OpeningDays {
        weekdays: vec![Weekday::Mon, Weekday::Tue, Weekday::Thu, Weekday::Fri],
        during: OpenDuring::SchoolTerms,
    }
}

/// Loads whatever part of the demo data is missing (an interrupted load
/// resumes); returns how many commands it ran.
pub async fn seed(commands: &Commands) -> Result<usize, ApiError> {
    let command_id = Uuid::new_v4();
    let metadata = Metadata {
        actor_id: "seed-demo".into(),
        actor_role: "system".into(),
        correlation_id: command_id,
        causation_id: command_id,
        command_id,
        requested_at: Utc::now(),
    };
    let commune = [
        CollectivityCommand::Create {
            id: COMMUNE,
            name: "Dammartin-sur-Tigeaux".into(),
        },
        CollectivityCommand::AddService {
            service: Service {
                id: CANTEEN,
                name: "Restauration scolaire".into(),
                kind: ServiceKind::Canteen,
            },
        },
        CollectivityCommand::AddService {
            service: Service {
                id: STUDY,
                name: "Étude surveillée".into(),
                kind: ServiceKind::SupervisedStudy,
            },
        },
        CollectivityCommand::AddUnit {
            unit: Unit {
                id: MEAL,
                service_id: CANTEEN,
                name: "Repas".into(),
                opening: school_days(),
                billing: BillingMode::Monthly,
                booking_deadline: DeadlineRule::DaysBefore {
                    days: 2,
                    at: time(12, 0),
                    skip_weekends: true,
                    skip_holidays: true,
                },
                cancellation_deadline: DeadlineRule::DaysBefore {
                    days: 2,
                    at: time(12, 0),
                    skip_weekends: true,
                    skip_holidays: true,
                },
                cancellation_needs_approval: true,
                booking_needs_approval: false,
            },
        },
        CollectivityCommand::AddUnit {
            unit: Unit {
                id: STUDY_SESSION,
                service_id: STUDY,
                name: "Étude (16h30-18h)".into(),
                opening: school_days(),
                billing: BillingMode::Monthly,
                booking_deadline: DeadlineRule::WeekdayOfPreviousWeek {
                    weekday: Weekday::Thu,
                    at: time(9, 0),
                },
                cancellation_deadline: DeadlineRule::DaysBefore {
                    days: 1,
                    at: time(18, 0),
                    skip_weekends: true,
                    skip_holidays: false,
                },
                cancellation_needs_approval: false,
                booking_needs_approval: false,
            },
        },
        CollectivityCommand::AddService {
            service: Service {
                id: LEISURE,
                name: "Accueil de loisirs".into(),
                kind: ServiceKind::LeisureCentre,
            },
        },
        CollectivityCommand::AddUnit {
            unit: Unit {
                id: WEDNESDAY,
                service_id: LEISURE,
                name: "Mercredi (journée)".into(),
                opening: OpeningDays {
                    weekdays: vec![Weekday::Wed],
                    during: OpenDuring::SchoolTerms,
                },
                billing: BillingMode::Monthly,
                booking_deadline: DeadlineRule::WeekdayOfPreviousWeek {
                    weekday: Weekday::Thu,
                    at: time(9, 0),
                },
                cancellation_deadline: DeadlineRule::DaysBefore {
                    days: 2,
                    at: time(12, 0),
                    skip_weekends: true,
                    skip_holidays: true,
                },
                cancellation_needs_approval: false,
                booking_needs_approval: false,
            },
        },
        // Twenty-four children a Wednesday: the next ones wait.
        CollectivityCommand::SetPlaces {
            unit_id: WEDNESDAY,
            places: Some(24),
        },
        CollectivityCommand::AddUnit {
            unit: Unit {
                id: WEDNESDAY_MORNING,
                service_id: LEISURE,
                name: "Mercredi matin (prépayé)".into(),
                opening: OpeningDays {
                    weekdays: vec![Weekday::Wed],
                    during: OpenDuring::SchoolTerms,
                },
                billing: BillingMode::Prepaid,
                booking_deadline: DeadlineRule::DaysBefore {
                    days: 1,
                    at: time(18, 0),
                    skip_weekends: false,
                    skip_holidays: false,
                },
                cancellation_deadline: DeadlineRule::DaysBefore {
                    days: 2,
                    at: time(12, 0),
                    skip_weekends: true,
                    skip_holidays: true,
                },
                cancellation_needs_approval: false,
                booking_needs_approval: false,
            },
        },
    ];
    let mut ran = 0;
    for command in commune {
        ran += applied(
            commands
                .execute::<Collectivity>(COMMUNE, command, &metadata)
                .await,
        )?;
    }
    // Dammartin-sur-Tigeaux is in Seine-et-Marne, zone C. Publishing a
    // year already published changes nothing, so a second run keeps what
    // an agent added since (closures, another year).
    let calendar = [
        CollectivityCommand::SetSchoolZone {
            zone: Zone::C,
            department: "77".into(),
        },
        CollectivityCommand::PublishSchoolYear {
            year: SchoolYear(2026),
        },
        CollectivityCommand::PublishSchoolYear {
            year: SchoolYear(2027),
        },
    ];
    let current = store::load::<Collectivity>(&commands.pool, &COMMUNE.to_string()).await?;
    let zoned = current.aggregate.calendar.zone.is_some();
    // Its tariffs, by quotient familial, set once: a second run keeps an
    // agent's.
    if current.aggregate.tariffs.is_empty() {
        for tariff in tariffs() {
            ran += applied(
                commands
                    .execute::<Collectivity>(COMMUNE, CollectivityCommand::SetTariff { tariff }, &metadata)
                    .await,
            )?;
        }
    }
    for command in calendar {
        if zoned && matches!(command, CollectivityCommand::SetSchoolZone { .. }) {
            continue;
        }
        ran += applied(
            commands
                .execute::<Collectivity>(COMMUNE, command, &metadata)
                .await,
        )?;
    }
    let this_year = SchoolYear::of(Utc::now().date_naive());
    let years = [this_year, SchoolYear(this_year.0 + 1)];
    let mut family = vec![
        FamilyCommand::OpenAccount {
            id: FAMILY,
            collectivity_id: COMMUNE,
            family_ref: "DST-0001".into(),
            guardian_email: "claire.martin@example.fr".into(),
        },
        FamilyCommand::RegisterChild {
            child: Child {
                id: LOUISE,
                first_name: "Louise".into(),
                last_name: "Martin".into(),
                birth_date: date(2018, 4, 2).into(),
                school_class: Some("École Les Tilleuls, CE1".to_string()).into(),
            },
        },
        FamilyCommand::RegisterChild {
            child: Child {
                id: HUGO,
                first_name: "Hugo".into(),
                last_name: "Martin".into(),
                birth_date: date(2015, 9, 14).into(),
                school_class: Some("École Les Tilleuls, CM2".to_string()).into(),
            },
        },
    ];
    for year in years {
        for (child_id, service_id) in [
            (LOUISE, CANTEEN),
            (LOUISE, STUDY),
            (LOUISE, LEISURE),
            (HUGO, CANTEEN),
        ] {
            family.push(FamilyCommand::EnrolChild {
                enrolment: Enrolment {
                    child_id,
                    collectivity_id: COMMUNE,
                    service_id,
                    school_year: year,
                },
            });
        }
    }
    for command in family {
        ran += applied(commands.execute::<Family>(FAMILY, command, &metadata).await)?;
    }
    ran += accounts(commands, &metadata).await?;
    Ok(ran)
}

/// The demo's logins, as the README gives them.
/// The demo's tariffs from September 2026, by quotient familial.
fn tariffs() -> Vec<Tariff> {
    let brackets = |prices: [i64; 3]| {
        vec![
            Bracket {
                up_to: Some(700),
                price_cents: prices[0],
            },
            Bracket {
                up_to: Some(1_200),
                price_cents: prices[1],
            },
            Bracket {
                up_to: None,
                price_cents: prices[2],
            },
        ]
    };
    [
        (
            uuid!("7a1d0000-0000-4000-8000-000000000021"),
            MEAL,
            [215, 360, 485],
        ),
        (
            uuid!("7a1d0000-0000-4000-8000-000000000022"),
            STUDY_SESSION,
            [120, 190, 250],
        ),
        (
            uuid!("7a1d0000-0000-4000-8000-000000000023"),
            WEDNESDAY,
            [600, 950, 1_300],
        ),
        (
            uuid!("7a1d0000-0000-4000-8000-000000000024"),
            WEDNESDAY_MORNING,
            [350, 520, 700],
        ),
    ]
    .into_iter()
    .map(|(id, unit_id, prices)| Tariff {
        id,
        unit_id,
        valid_from: date(2026, 9, 1),
        valid_until: None,
        brackets: brackets(prices),
        // The second child 10 % less, the third and more 20 %.
        sibling_reductions: vec![10, 20],
        unjustified_absence_percent: 100,
        unexpected_presence_penalty_cents: 200,
    })
    .collect()
}

pub const DEMO_ACCOUNTS: &[(&str, &str, &str)] = &[
    ("admin@espace-famille.localhost", "demo-admin-2026!", "admin"),
    (
        "agent@dammartin-sur-tigeaux.fr",
        "demo-agent-2026!",
        "agent:7a1d0000-0000-4000-8000-000000000001",
    ),
    (
        "auditeur@dammartin-sur-tigeaux.fr",
        "demo-auditeur-2026!",
        "auditor:7a1d0000-0000-4000-8000-000000000001",
    ),
    (
        "claire.martin@example.fr",
        "demo-parent-2026!",
        "parent:7a1d0000-0000-4000-8000-000000000010",
    ),
];

/// Creates the demo accounts that do not exist yet, and activates the
/// guardian's (with `AccountActivated`, as the activation link would).
async fn accounts(commands: &Commands, metadata: &Metadata) -> Result<usize, ApiError> {
    let mut ran = 0;
    for (email, password, grant) in DEMO_ACCOUNTS {
        let grant: Grant = grant.parse().map_err(ApiError::Internal)?;
        let mut tx = commands.pool.begin().await?;
        let account = crate::auth::accounts::ensure_account(&mut tx, email, &[grant]).await?;
        if !account.active {
            crate::auth::accounts::set_password(&mut tx, &account, password).await?;
            ran += 1;
        }
        tx.commit().await?;
        if let Grant::Parent(family) = grant {
            let command = FamilyCommand::ActivateAccount {
                account_id: account.id,
                profile: GuardianProfile {
                    first_name: "Claire".into(),
                    last_name: "Martin".into(),
                    phone: Some("06 12 34 56 78".to_string()).into(),
                    address: Some(PostalAddress {
                        line1: "3 place de la Mairie".into(),
                        line2: None,
                        postcode: "77580".into(),
                        city: "Dammartin-sur-Tigeaux".into(),
                    })
                    .into(),
                },
                email: Some(account.email.clone().into()),
            };
            ran += applied(commands.execute::<Family>(family, command, metadata).await)?;
        }
    }
    Ok(ran)
}

/// 1 when the command ran, 0 when it was already done before.
fn applied<T>(result: Result<T, ApiError>) -> Result<usize, ApiError> {
    match result {
        Ok(_) => Ok(1),
        Err(ApiError::Conflict(_)) => Ok(0),
        Err(other) => Err(other),
    }
}
