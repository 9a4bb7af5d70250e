//! The load generators' shared ground (`rush` for the bench, `faults` for
//! the fault suite): the seeded commune and its families, their ids, the
//! basket every parent submits, and a small GraphQL client.

use std::sync::Arc;
use std::time::Duration;

use chrono::{Datelike, NaiveDate, NaiveTime, Utc, Weekday};
use espace_famille_api::auth::accounts::{self, Grant};
use espace_famille_api::commands::Commands;
use espace_famille_domain::calendar::{DeadlineRule, OpenDuring, OpeningDays, SchoolYear, Zone};
use espace_famille_domain::collectivity::Collectivity;
use espace_famille_domain::collectivity::{BillingMode, CollectivityCommand, Service, ServiceKind, Unit};
use espace_famille_domain::family::{Child, Enrolment, Family, FamilyCommand};
use espace_famille_projections::store::Metadata;
use serde_json::{json, Value};
use sqlx::PgPool;
use tokio::sync::Semaphore;
use uuid::Uuid;

/// Every seeded account's password.
pub const PASSWORD: &str = "rush-hour-password";
pub const LINES_PER_BASKET: usize = 20;
pub const NAMESPACE: Uuid = Uuid::from_u128(0x7275_7368_0000_4000_8000_0000_0000_0000);

pub fn id(kind: &str, n: usize) -> Uuid {
    Uuid::new_v5(&NAMESPACE, format!("{kind}-{n}").as_bytes())
}

pub fn guardian(n: usize) -> String {
    format!("parent-{n}@rush.example.fr")
}

/// Four weeks of canteen, Monday to Friday, from the Monday two weeks ahead.
pub fn basket_days() -> Vec<NaiveDate> {
    let start = Utc::now().date_naive() + chrono::Duration::days(14);
    let monday = start
        .iter_days()
        .find(|d| d.weekday() == Weekday::Mon)
        .expect("a Monday within a week");
    // The commune's unit runs on weekdays all year, not on public holidays.
    let holiday = |day: NaiveDate| {
        espace_famille_domain::calendar::public_holidays_of(SchoolYear::of(day), false)
            .iter()
            .any(|h| h.date == day)
    };
    monday
        .iter_days()
        .filter(|d| !matches!(d.weekday(), Weekday::Sat | Weekday::Sun) && !holiday(*d))
        .take(LINES_PER_BASKET)
        .collect()
}

pub fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

pub fn report(prefix: &str, mut latencies: Vec<Duration>, elapsed: Duration, units: usize) {
    latencies.sort();
    println!("{prefix}_count={}", latencies.len());
    println!("{prefix}_per_s={:.1}", units as f64 / elapsed.as_secs_f64());
    println!("{prefix}_p50_ms={:.1}", percentile(&latencies, 0.50));
    println!("{prefix}_p95_ms={:.1}", percentile(&latencies, 0.95));
    println!("{prefix}_p99_ms={:.1}", percentile(&latencies, 0.99));
}

pub struct Client {
    pub http: reqwest::Client,
    pub url: String,
}

impl Client {
    pub async fn gql(&self, token: Option<&str>, query: &str, variables: Value) -> anyhow::Result<Value> {
        self.send(
            token,
            json!({ "query": query, "variables": variables }).to_string(),
        )
        .await
    }

    /// Posts a request body already serialised.
    pub async fn send(&self, token: Option<&str>, body: String) -> anyhow::Result<Value> {
        let mut request = self
            .http
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response: Value = request.send().await?.json().await?;
        if let Some(errors) = response.get("errors") {
            anyhow::bail!("{errors}");
        }
        Ok(response["data"].clone())
    }

    /// One child's four weeks, as the portal shows them.
    pub async fn calendar(
        &self,
        token: &str,
        child: Uuid,
        unit: Uuid,
        from: NaiveDate,
        to: NaiveDate,
    ) -> anyhow::Result<()> {
        let data = self
            .gql(
                Some(token),
                "query($c: UUID!, $u: UUID!, $f: NaiveDate!, $t: NaiveDate!) {
                   calendar(childId: $c, unitId: $u, from: $f, to: $t) { date status bookingDeadline canCancel }
                 }",
                json!({ "c": child, "u": unit, "f": from, "t": to }),
            )
            .await?;
        let expected = (to - from).num_days() + 1;
        anyhow::ensure!(
            data["calendar"].as_array().map(|days| days.len() as i64) == Some(expected),
            "{data}"
        );
        Ok(())
    }

    pub async fn login(&self, email: &str) -> anyhow::Result<String> {
        let data = self
            .gql(
                None,
                "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
                json!({ "e": email, "p": PASSWORD }),
            )
            .await?;
        Ok(data["login"]["token"].as_str().unwrap_or_default().to_string())
    }
}

/// The places of each Wednesday of the contended rush.
pub const CONTENDED_PLACES: u32 = 60;

/// The five Wednesdays of the contended rush, from two weeks ahead (not a
/// public holiday).
pub fn wednesdays() -> Vec<NaiveDate> {
    let start = Utc::now().date_naive() + chrono::Duration::days(14);
    start
        .iter_days()
        .filter(|d| d.weekday() == Weekday::Wed)
        .filter(|d| {
            !espace_famille_domain::calendar::public_holidays_of(SchoolYear::of(*d), false)
                .iter()
                .any(|h| h.date == *d)
        })
        .take(5)
        .collect()
}

/// The school year the period baskets book: the next one, whose days are
/// all far past their booking deadline.
pub fn period_year() -> SchoolYear {
    SchoolYear(SchoolYear::of(Utc::now().date_naive()).0 + 1)
}

/// Waits until the projections have caught up and the outbox is sent.
pub async fn wait_until_quiet(pool: &PgPool) -> anyhow::Result<()> {
    for _ in 0..3000 {
        let (behind, unsent): (bool, i64) = sqlx::query_as(
            "SELECT EXISTS (SELECT 1 FROM events e, projection_checkpoints c
                            WHERE (e.transaction_id, e.global_position) > (c.last_transaction_id, c.last_position)),
                    (SELECT count(*) FROM outbox WHERE sent_at IS NULL)",
        )
        .fetch_one(pool)
        .await?;
        if !behind && unsent == 0 {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    anyhow::bail!("the server did not catch up with the seed in 5 minutes")
}

pub fn system_metadata() -> Metadata {
    let command_id = Uuid::new_v4();
    Metadata {
        actor_id: "rush-seed".into(),
        actor_role: "system".into(),
        correlation_id: command_id,
        causation_id: command_id,
        command_id,
        requested_at: Utc::now(),
    }
}

/// A commune with a canteen open Monday to Friday, its agent, and the
/// families, each with one child enrolled and an active guardian account.
pub async fn seed(pool: &PgPool, families: usize, days: &[NaiveDate]) -> anyhow::Result<()> {
    let commands = Commands::new(pool.clone(), Duration::from_secs(5));
    let unwaited = Commands::new(pool.clone(), Duration::ZERO);
    let mut years: Vec<SchoolYear> = days.iter().map(|d| SchoolYear::of(*d)).collect();
    years.push(period_year());
    years.extend(wednesdays().iter().map(|d| SchoolYear::of(*d)));
    years.sort();
    years.dedup();
    let commune = id("commune", 0);
    let canteen = id("canteen", 0);
    let noon = NaiveTime::from_hms_opt(12, 0, 0).expect("noon");
    let deadline = DeadlineRule::DaysBefore {
        days: 2,
        at: noon,
        skip_weekends: true,
        skip_holidays: true,
    };
    for command in [
        CollectivityCommand::Create {
            id: commune,
            name: "Commune de la ruée".into(),
        },
        CollectivityCommand::AddService {
            service: Service {
                id: canteen,
                name: "Cantine".into(),
                kind: ServiceKind::Canteen,
            },
        },
        CollectivityCommand::AddUnit {
            unit: Unit {
                id: id("meal", 0),
                service_id: canteen,
                name: "Repas".into(),
                opening: OpeningDays {
                    weekdays: vec![
                        Weekday::Mon,
                        Weekday::Tue,
                        Weekday::Wed,
                        Weekday::Thu,
                        Weekday::Fri,
                    ],
                    during: OpenDuring::AllYear,
                },
                billing: BillingMode::Monthly,
                booking_deadline: deadline,
                cancellation_deadline: deadline,
                cancellation_needs_approval: true,
                booking_needs_approval: false,
            },
        },
        // The term-time canteen a school year is booked in by period.
        CollectivityCommand::AddUnit {
            unit: Unit {
                id: id("term-meal", 0),
                service_id: canteen,
                name: "Repas (période scolaire)".into(),
                opening: OpeningDays {
                    weekdays: vec![Weekday::Mon, Weekday::Tue, Weekday::Thu, Weekday::Fri],
                    during: OpenDuring::SchoolTerms,
                },
                billing: BillingMode::Monthly,
                booking_deadline: deadline,
                cancellation_deadline: deadline,
                cancellation_needs_approval: false,
                booking_needs_approval: false,
            },
        },
    ]
    .into_iter()
    // The leisure centre's Wednesdays: as many places as families book,
    // and the same Wednesdays with 60 places a day.
    .chain(
        ["wednesday", "wednesday-60"]
            .into_iter()
            .map(|kind| CollectivityCommand::AddUnit {
                unit: Unit {
                    id: id(kind, 0),
                    service_id: canteen,
                    name: format!("Mercredi ({kind})"),
                    opening: OpeningDays {
                        weekdays: vec![Weekday::Wed],
                        during: OpenDuring::AllYear,
                    },
                    billing: BillingMode::Monthly,
                    booking_deadline: deadline,
                    cancellation_deadline: deadline,
                    cancellation_needs_approval: false,
                    booking_needs_approval: false,
                },
            }),
    )
    .chain([
        CollectivityCommand::SetPlaces {
            unit_id: id("wednesday-60", 0),
            places: Some(CONTENDED_PLACES),
        },
        CollectivityCommand::SetSchoolZone {
            zone: Zone::C,
            department: "77".into(),
        },
    ])
    .chain(
        years
            .iter()
            .map(|&year| CollectivityCommand::PublishSchoolYear { year }),
    ) {
        commands
            .execute::<Collectivity>(commune, command, &system_metadata())
            .await
            .map_err(|e| anyhow::anyhow!("{}", e.message()))?;
    }
    // One hash for every seeded account: hashing 5,000 passwords would
    // measure argon2, not the seed.
    let hash = accounts::hash_password(PASSWORD).map_err(|e| anyhow::anyhow!("{}", e.message()))?;
    let unwaited = Arc::new(unwaited);
    // A family's task holds a connection for its account while the
    // appender's writers and the read-your-writes watcher hold theirs:
    // eight tasks leave room in the pool.
    let limit = Arc::new(Semaphore::new(8));
    let mut tasks = Vec::with_capacity(families + 1);
    for n in 0..=families {
        let (unwaited, limit, hash, years, pool) = (
            unwaited.clone(),
            limit.clone(),
            hash.clone(),
            years.clone(),
            pool.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let _permit = limit.acquire_owned().await?;
            let mut tx = pool.begin().await?;
            // The last one is the commune's agent.
            let (email, grant) = if n == families {
                ("agent@rush.example.fr".to_string(), Grant::Agent(commune))
            } else {
                (guardian(n), Grant::Parent(id("family", n)))
            };
            let account = accounts::ensure_account(&mut tx, &email, &[grant])
                .await
                .map_err(|e| anyhow::anyhow!("{}", e.message()))?;
            sqlx::query("UPDATE accounts SET password_hash = $2, activated_at = now() WHERE id = $1")
                .bind(account.id)
                .bind(&hash)
                .execute(&mut *tx)
                .await?;
            if n < families {
                let family = id("family", n);
                let child = id("child", n);
                let mut commands_for_family = vec![
                    FamilyCommand::OpenAccount {
                        id: family,
                        collectivity_id: commune,
                        family_ref: format!("R-{n:05}"),
                        guardian_email: email.as_str().into(),
                    },
                    FamilyCommand::RegisterChild {
                        child: Child {
                            id: child,
                            first_name: format!("Enfant {n}").into(),
                            last_name: "Ruée".into(),
                            birth_date: NaiveDate::from_ymd_opt(2018, 1, 1).expect("a date").into(),
                            school_class: None.into(),
                        },
                    },
                ];
                for year in &years {
                    commands_for_family.push(FamilyCommand::EnrolChild {
                        enrolment: Enrolment {
                            child_id: child,
                            collectivity_id: commune,
                            service_id: canteen,
                            school_year: *year,
                        },
                    });
                }
                tx.commit().await?;
                // Each command loads what the previous one committed; a lost
                // race (here, the projections' fence moving while the
                // family's key was written: see `engine::fence`) is tried
                // again by the write path. Nothing waits for the read
                // models: the rush starts once they caught up.
                for command in commands_for_family {
                    unwaited
                        .execute::<Family>(family, command, &system_metadata())
                        .await
                        .map_err(|e| anyhow::anyhow!("{}", e.message()))?;
                }
                return anyhow::Ok(());
            }
            tx.commit().await?;
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}
