//! The commune most tests stand on (a canteen billed monthly, an agent, a
//! family with one child), its days, and its bookings, roll calls and
//! tariffs as the tests make them.

use chrono::{Datelike, Duration, NaiveDate, Utc, Weekday};
use espace_famille_domain::reservation::{Origin, ReservationEvent, Slot};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::{admin, Response, TestApp, PASSWORD};

/// A commune with a canteen whose meals are billed monthly, run Monday,
/// Tuesday, Thursday and Friday in term time, bookable until J-2 at noon and
/// cancellable with an agent's approval until J-2 at noon; a family with
/// one child enrolled for the school years of the test dates.
pub struct Fixture {
    pub collectivity: Uuid,
    pub canteen: Uuid,
    pub meal: Uuid,
    pub family: Uuid,
    pub child: Uuid,
    pub admin_token: String,
    pub agent_email: String,
    pub agent_token: String,
    pub guardian_email: String,
    pub parent_token: String,
}

impl Fixture {
    /// The agent's session token.
    pub fn agent(&self) -> String {
        self.agent_token.clone()
    }

    /// The guardian's session token.
    pub fn parent(&self) -> String {
        self.parent_token.clone()
    }
}

/// Whether the fixture's canteen runs on `day`: Mon, Tue, Thu, Fri, in
/// term time, not a public holiday, as its zone C commune publishes them.
pub fn is_canteen_day(day: NaiveDate) -> bool {
    use espace_famille_domain::calendar::{public_holidays_of, school_holidays, SchoolYear, Zone};
    let year = SchoolYear::of(day);
    let holidays = school_holidays(Zone::C, year).expect("the school year is in the shipped data");
    let off = holidays.iter().any(|p| p.range.contains(day))
        || public_holidays_of(year, false).iter().any(|h| h.date == day);
    !off && !matches!(day.weekday(), Weekday::Wed | Weekday::Sat | Weekday::Sun)
}

/// Canteen days (see [`is_canteen_day`]) from two weeks ahead: far enough
/// for every booking and cancellation deadline.
pub fn future_canteen_days(count: usize) -> Vec<NaiveDate> {
    let start = Utc::now().date_naive() + Duration::days(14);
    start
        .iter_days()
        .filter(|d| is_canteen_day(*d))
        .take(count)
        .collect()
}

/// The next Wednesday two weeks ahead or later: the canteen is closed.
pub fn future_wednesday() -> NaiveDate {
    let start = Utc::now().date_naive() + Duration::days(14);
    start
        .iter_days()
        .find(|d| d.weekday() == Weekday::Wed)
        .expect("a Wednesday within a week")
}

/// The school years (by starting calendar year) a set of dates falls in.
pub fn school_years(dates: &[NaiveDate]) -> Vec<i32> {
    let mut years: Vec<i32> = dates
        .iter()
        .map(|d| if d.month() >= 9 { d.year() } else { d.year() - 1 })
        .collect();
    years.sort();
    years.dedup();
    years
}

/// Builds the fixture through the API, as an administrator, an agent and a
/// guardian would: accounts activated from their e-mails.
pub async fn setup_commune(app: &TestApp, enrol_for: &[NaiveDate]) -> Fixture {
    let admin_token = admin(app).await;
    let created = app
        .gql(
            Some(&admin_token),
            "mutation($name: String!) { createCollectivity(input: { name: $name }) { id } }",
            json!({ "name": "Dammartin-sur-Tigeaux" }),
        )
        .await;
    let collectivity: Uuid =
        serde_json::from_value(created.data("createCollectivity")["id"].clone()).unwrap();
    let agent_email = format!("agent-{}@mairie.example.fr", Uuid::new_v4().simple());
    app.gql(
        Some(&admin_token),
        "mutation($c: UUID!, $e: String!) { createAgentAccount(collectivityId: $c, email: $e) { role } }",
        json!({ "c": collectivity, "e": agent_email }),
    )
    .await
    .data("createAgentAccount");
    let agent_token = app.activate_from_mail(&agent_email, PASSWORD).await;
    let agent = agent_token.clone();
    let canteen = Uuid::new_v4();
    let meal = Uuid::new_v4();
    app.gql(
        Some(&agent),
        "mutation($c: UUID!, $s: UUID!) {
           addService(input: { collectivityId: $c, id: $s, name: \"Cantine\", kind: CANTEEN }) { id }
         }",
        json!({ "c": collectivity, "s": canteen }),
    )
    .await
    .data("addService");
    app.gql(
        Some(&agent),
        "mutation($c: UUID!, $s: UUID!, $u: UUID!) {
           addUnit(input: {
             collectivityId: $c, id: $u, serviceId: $s, name: \"Repas\",
             weekdays: [MON, TUE, THU, FRI], openDuring: SCHOOL_TERMS, billing: MONTHLY,
             bookingDeadline: { daysBefore: { days: 2, at: \"12:00\", skipWeekends: true } },
             cancellationDeadline: { daysBefore: { days: 2, at: \"12:00\", skipWeekends: true } },
             cancellationNeedsApproval: true
           }) { id }
         }",
        json!({ "c": collectivity, "s": canteen, "u": meal }),
    )
    .await
    .data("addUnit");
    // Seine-et-Marne, zone C; the school years of the days, and the current
    // one, published.
    app.gql(
        Some(&agent),
        "mutation($c: UUID!) { setSchoolZone(collectivityId: $c, zone: C, department: \"77\") { id } }",
        json!({ "c": collectivity }),
    )
    .await
    .data("setSchoolZone");
    let mut published = school_years(enrol_for);
    published.extend(school_years(&[Utc::now().date_naive()]));
    published.sort_unstable();
    published.dedup();
    for year in published {
        app.gql(
            Some(&agent),
            "mutation($c: UUID!, $y: Int!) { publishSchoolYear(collectivityId: $c, schoolYear: $y) { id } }",
            json!({ "c": collectivity, "y": year }),
        )
        .await
        .data("publishSchoolYear");
    }
    let family = Uuid::new_v4();
    let guardian_email = format!("guardian.{}@example.fr", Uuid::new_v4().simple());
    app.gql(
        Some(&agent),
        "mutation($c: UUID!, $f: UUID!, $e: String!) {
           openFamilyAccount(input: {
             collectivityId: $c, id: $f, familyRef: \"F-0001\", guardianEmail: $e
           }) { id }
         }",
        json!({ "c": collectivity, "f": family, "e": guardian_email }),
    )
    .await
    .data("openFamilyAccount");
    let parent_token = app.activate_from_mail(&guardian_email, PASSWORD).await;
    let child = Uuid::new_v4();
    app.gql(
        Some(&parent_token),
        "mutation($f: UUID!, $k: UUID!) {
           registerChild(input: {
             familyId: $f, id: $k, firstName: \"Louise\", lastName: \"Martin\", birthDate: \"2018-04-02\"
           }) { id }
         }",
        json!({ "f": family, "k": child }),
    )
    .await
    .data("registerChild");
    for year in school_years(enrol_for) {
        app.gql(
            Some(&agent),
            "mutation($f: UUID!, $k: UUID!, $c: UUID!, $s: UUID!, $y: Int!) {
               enrolChild(input: { familyId: $f, childId: $k, collectivityId: $c, serviceId: $s, schoolYear: $y }) { id }
             }",
            json!({ "f": family, "k": child, "c": collectivity, "s": canteen, "y": year }),
        )
        .await
        .data("enrolChild");
    }
    Fixture {
        collectivity,
        canteen,
        meal,
        family,
        child,
        admin_token,
        agent_email,
        agent_token,
        guardian_email,
        parent_token,
    }
}

/// The `submitBasket` document, with every field the tests read.
pub const SUBMIT_BASKET: &str = "mutation($input: SubmitBasketInput!) {
  submitBasket(input: $input) {
    basketId familyId status
    lines { index action childId unitId date reservationId accepted written skipped refusal { code message deadline closedReason opensAt } }
  }
}";

/// The `calendar` document.
pub const CALENDAR: &str = "query($child: UUID!, $unit: UUID!, $from: NaiveDate!, $to: NaiveDate!) {
  calendar(childId: $child, unitId: $unit, from: $from, to: $to) {
    date reservationId status state open closedReason bookingDeadline cancellationDeadline
    canBook bookRefusal { code } canCancel cancelRefusal { code }
  }
}";

/// Booking lines for one child in one unit.
pub fn book_lines(fixture: &Fixture, dates: &[NaiveDate]) -> Value {
    Value::Array(
        dates
            .iter()
            .map(|d| json!({ "action": "BOOK", "childId": fixture.child, "unitId": fixture.meal, "date": d }))
            .collect(),
    )
}

impl TestApp {
    /// The parent books `dates` in one basket; the outcome.
    pub async fn book(&self, fixture: &Fixture, dates: &[NaiveDate]) -> Response {
        self.gql(
            Some(&fixture.parent()),
            SUBMIT_BASKET,
            json!({ "input": { "basketId": Uuid::new_v4(), "familyId": fixture.family, "lines": book_lines(fixture, dates) } }),
        )
        .await
    }

    /// The parent asks to cancel a reservation.
    pub async fn request_cancellation(&self, fixture: &Fixture, reservation_id: &Value) -> Response {
        self.gql(
            Some(&fixture.parent()),
            "mutation($id: UUID!) { requestCancellation(reservationId: $id) { status } }",
            json!({ "id": reservation_id }),
        )
        .await
    }

    /// The child's canteen days between two dates, as the parent sees them.
    pub async fn calendar(&self, fixture: &Fixture, from: NaiveDate, to: NaiveDate) -> Response {
        self.gql(
            Some(&fixture.parent()),
            CALENDAR,
            json!({ "child": fixture.child, "unit": fixture.meal, "from": from, "to": to }),
        )
        .await
    }
}

/// Bookings made before their day, written as their events would have
/// been (a day that has come is past its booking deadline: no parent can
/// book it now), each stream from its start.
pub async fn seed_reservations(app: &TestApp, streams: &[(Slot, Vec<ReservationEvent>)]) {
    use espace_famille_domain::reservation::{reservation_id, Reservation};
    use espace_famille_projections::store::{self, Metadata, StreamAppend};
    let appends: Vec<StreamAppend> = streams
        .iter()
        .map(|(slot, events)| {
            let id = reservation_id(slot.child_id, slot.unit_id, slot.date);
            StreamAppend::new::<Reservation>(id.to_string(), 0, events).expect("the events serialise")
        })
        .collect();
    let id = Uuid::new_v4();
    let metadata = Metadata {
        actor_id: "seed".into(),
        actor_role: "parent".into(),
        correlation_id: id,
        causation_id: id,
        command_id: id,
        requested_at: Utc::now(),
    };
    let mut conn = app.pool.acquire().await.expect("a connection");
    store::append(&mut conn, &appends, &metadata)
        .await
        .expect("the seed is written");
}

/// A fixture's slot for its child in its canteen unit on `date`.
pub fn slot_of(fixture: &Fixture, child_id: Uuid, family_id: Uuid, date: NaiveDate) -> Slot {
    Slot {
        family_id,
        child_id,
        collectivity_id: fixture.collectivity,
        service_id: fixture.canteen,
        unit_id: fixture.meal,
        date,
    }
}

/// A booking confirmed from the calendar, as its events would have been
/// written.
pub fn confirmed(slot: Slot) -> (Slot, Vec<ReservationEvent>) {
    (
        slot,
        vec![
            ReservationEvent::ReservationRequested {
                slot,
                origin: Origin::Calendar,
            },
            ReservationEvent::ReservationConfirmed,
        ],
    )
}

/// The fixture's child booked and confirmed on each of `days`, in the
/// past (see [`seed_reservations`]).
pub async fn seed_confirmed(app: &TestApp, fixture: &Fixture, days: &[NaiveDate]) {
    let booked: Vec<_> = days
        .iter()
        .map(|&day| confirmed(slot_of(fixture, fixture.child, fixture.family, day)))
        .collect();
    seed_reservations(app, &booked).await;
}

/// Canteen days of last month.
pub fn last_month_days(count: usize) -> Vec<NaiveDate> {
    let first = Utc::now().date_naive().with_day(1).expect("a first day") - chrono::Months::new(1);
    first
        .iter_days()
        .take_while(|d| d.month() == first.month())
        .filter(|d| is_canteen_day(*d))
        .take(count)
        .collect()
}

/// One price for every quotient in one of the fixture's units from
/// `from`, an unjustified absence billed in full, no penalty for an
/// unbooked presence.
pub async fn flat_tariff(app: &TestApp, fixture: &Fixture, unit: Uuid, from: NaiveDate, price_cents: i64) {
    app.gql(
        Some(&fixture.agent()),
        "mutation($input: SetTariffInput!) { setTariff(input: $input) { id } }",
        json!({ "input": {
            "collectivityId": fixture.collectivity, "unitId": unit, "validFrom": from,
            "brackets": [{ "upTo": null, "priceCents": price_cents }],
            "unjustifiedAbsencePercent": 100, "unexpectedPresencePenaltyCents": 0
        } }),
    )
    .await
    .data("setTariff");
}

/// The agent marks the fixture's child present or absent on `day`.
pub async fn roll_call(app: &TestApp, fixture: &Fixture, day: NaiveDate, present: bool) {
    app.gql(
        Some(&fixture.agent()),
        "mutation($input: RecordRollCallInput!) { recordRollCall(input: $input) { written } }",
        json!({ "input": { "collectivityId": fixture.collectivity, "unitId": fixture.meal, "date": day,
                           "marks": [{ "childId": fixture.child, "present": present }] } }),
    )
    .await
    .data("recordRollCall");
}

/// Waits until the calendar shows at least `rows` of the unit's
/// reservations.
pub async fn until_in_calendar(app: &TestApp, unit: Uuid, rows: i64) {
    for _ in 0..100 {
        let seen: i64 = sqlx::query_scalar("SELECT count(*) FROM calendar_reservations WHERE unit_id = $1")
            .bind(unit)
            .fetch_one(&app.pool)
            .await
            .expect("the calendar is read");
        if seen >= rows {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the calendar never showed {rows} reservations");
}

/// The last day the fixture's canteen ran, today included.
pub fn last_canteen_day() -> NaiveDate {
    let today = Utc::now().date_naive();
    (0..60)
        .map(|back| today - Duration::days(back))
        .find(|day| is_canteen_day(*day))
        .expect("a canteen day in the last two months")
}
