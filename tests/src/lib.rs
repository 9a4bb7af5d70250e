//! Support for the end-to-end tests: a real server on a random port, on a
//! fresh database of its own, and a small GraphQL client.
#![forbid(unsafe_code)]

use std::net::SocketAddr;

use chrono::{Datelike, Duration, NaiveDate, Utc, Weekday};
use espace_famille_api::app::{Application, Settings};
use serde_json::{json, Value};
use sqlx::PgPool;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use uuid::Uuid;

pub struct TestApp {
    pub address: String,
    pub database_url: String,
    pub pool: PgPool,
    client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    server: Option<JoinHandle<()>>,
}

/// Starts the server on a fresh, migrated database.
pub async fn spawn_app() -> TestApp {
    let (_, url) = espace_famille_projections::testing::fresh_database().await;
    spawn_app_on(&url).await
}

/// Starts another server on the database at `url`, as a second instance
/// behind a load balancer would run.
pub async fn spawn_app_on(url: &str) -> TestApp {
    let mut settings = Settings::new(url.to_string());
    settings.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    settings.max_connections = 16;
    let application = Application::build(settings)
        .await
        .expect("the server did not start");
    let address = format!("http://127.0.0.1:{}", application.port());
    let database_url = url.to_string();
    let pool = application.pool().clone();
    let (stop, stopped) = oneshot::channel();
    let server = tokio::spawn(async move {
        application
            .serve_until(async {
                let _ = stopped.await;
            })
            .await
            .expect("the server failed");
    });
    TestApp {
        address,
        database_url,
        pool,
        client: reqwest::Client::new(),
        stop: Some(stop),
        server: Some(server),
    }
}

/// A GraphQL response.
#[derive(Debug, Clone)]
pub struct Response(pub Value);

impl Response {
    /// The data at `field`, failing the test on any error.
    pub fn data(&self, field: &str) -> &Value {
        assert!(self.0.get("errors").is_none(), "unexpected errors: {}", self.0);
        &self.0["data"][field]
    }

    /// The `extensions.code` of the first error, failing the test when the
    /// request succeeded.
    pub fn error_code(&self) -> &str {
        self.0["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("expected an error, got {}", self.0))
    }
}

impl TestApp {
    /// Posts a GraphQL document as `identity` (the development header).
    pub async fn gql(&self, identity: Option<&str>, query: &str, variables: Value) -> Response {
        let mut request = self
            .client
            .post(format!("{}/graphql", self.address))
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(identity) = identity {
            request = request.header("x-dev-identity", identity);
        }
        let response = request.send().await.expect("the server did not answer");
        assert!(response.status().is_success(), "HTTP {}", response.status());
        Response(response.json().await.expect("the answer is not JSON"))
    }

    /// Stops the server and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = server.await;
        }
    }

    /// How many events a stream holds.
    pub async fn events_in(&self, aggregate_type: &str, aggregate_id: &str) -> i64 {
        sqlx::query_scalar("SELECT count(*) FROM events WHERE aggregate_type = $1 AND aggregate_id = $2")
            .bind(aggregate_type)
            .bind(aggregate_id)
            .fetch_one(&self.pool)
            .await
            .expect("cannot count events")
    }
}

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
}

impl Fixture {
    pub fn agent(&self) -> String {
        format!("agent:{}", self.collectivity)
    }

    pub fn parent(&self) -> String {
        format!("parent:{}", self.family)
    }
}

/// Canteen days (Mon, Tue, Thu, Fri) from two weeks ahead: far enough for
/// every booking and cancellation deadline.
pub fn future_canteen_days(count: usize) -> Vec<NaiveDate> {
    let start = Utc::now().date_naive() + Duration::days(14);
    start
        .iter_days()
        .filter(|d| !matches!(d.weekday(), Weekday::Wed | Weekday::Sat | Weekday::Sun))
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

/// Builds the fixture through the API, as an admin and an agent would.
pub async fn setup_commune(app: &TestApp, enrol_for: &[NaiveDate]) -> Fixture {
    let created = app
        .gql(
            Some("admin"),
            "mutation($name: String!) { createCollectivity(input: { name: $name }) { id } }",
            json!({ "name": "Dammartin-sur-Tigeaux" }),
        )
        .await;
    let collectivity: Uuid =
        serde_json::from_value(created.data("createCollectivity")["id"].clone()).unwrap();
    let agent = format!("agent:{collectivity}");
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
    let family = Uuid::new_v4();
    app.gql(
        Some(&agent),
        "mutation($c: UUID!, $f: UUID!) {
           openFamilyAccount(input: {
             collectivityId: $c, id: $f, familyRef: \"F-0001\", guardianEmail: \"claire.martin@example.fr\"
           }) { id }
         }",
        json!({ "c": collectivity, "f": family }),
    )
    .await
    .data("openFamilyAccount");
    let child = Uuid::new_v4();
    app.gql(
        Some(&format!("parent:{family}")),
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
    }
}

/// The `submitBasket` document, with every field the tests read.
pub const SUBMIT_BASKET: &str = "mutation($input: SubmitBasketInput!) {
  submitBasket(input: $input) {
    basketId familyId status
    lines { index action childId unitId date reservationId accepted refusal { code message deadline closedReason } }
  }
}";

/// The `calendar` document.
pub const CALENDAR: &str = "query($child: UUID!, $unit: UUID!, $from: NaiveDate!, $to: NaiveDate!) {
  calendar(childId: $child, unitId: $unit, from: $from, to: $to) {
    date reservationId status open closedReason bookingDeadline cancellationDeadline
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
