//! What the server counts, served in the Prometheus text format at
//! `GET /metrics` (the `metrics` crate's macros, recorded by
//! `metrics-exporter-prometheus`).
//!
//! Counters and latencies are recorded where they happen; what the
//! database knows (where each projection stands, the outbox, the pool) is
//! read when the page is asked for. No label holds a value a client chose:
//! an operation is named by its first root field, which the schema
//! bounds, and an outcome by its error code.

use std::sync::OnceLock;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Unit};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use sqlx::{PgPool, Row};

use crate::http::AppState;

pub const GRAPHQL_REQUESTS: &str = "espace_famille_graphql_requests_total";
pub const GRAPHQL_SECONDS: &str = "espace_famille_graphql_request_duration_seconds";
pub const BASKETS: &str = "espace_famille_baskets_total";
pub const LINES_WRITTEN: &str = "espace_famille_basket_lines_written_total";
pub const CONFLICTS_RETRIED: &str = "espace_famille_write_conflicts_retried_total";
pub const CONFLICTS_GIVEN_UP: &str = "espace_famille_write_conflicts_given_up_total";
pub const PROJECTION_POSITION: &str = "espace_famille_projection_position";
pub const PROJECTION_LAG: &str = "espace_famille_projection_lag_events";
pub const PROJECTION_LAG_SECONDS: &str = "espace_famille_projection_lag_seconds";
pub const PROJECTION_STOPPED: &str = "espace_famille_projection_stopped";
pub const OUTBOX_UNSENT: &str = "espace_famille_outbox_unsent";
pub const MAIL_FAILURES: &str = "espace_famille_mail_delivery_failures_total";
pub const POOL_CONNECTIONS: &str = "espace_famille_db_pool_connections";
pub const PAYMENT_NOTIFICATIONS: &str = "espace_famille_payment_notifications_total";
pub const OVERLOADED: &str = "espace_famille_requests_overloaded_total";
pub const RATE_LIMITED: &str = "espace_famille_mutations_rate_limited_total";

/// Past this many events behind, a projection's lag reads as this many.
const LAG_COUNTED_UP_TO: i64 = 1_000_000;

/// The latencies' buckets, in seconds: from a cached read to a timeout.
const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The recorder of this process, installed on first use (every server of
/// the process, as in the tests, shares it).
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let handle = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS_BUCKETS)
            .expect("the buckets are not empty")
            .install_recorder()
            .expect("no other metrics recorder is installed");
        describe();
        handle
    })
}

fn describe() {
    describe_counter!(
        GRAPHQL_REQUESTS,
        "GraphQL requests by kind, operation (first root field) and outcome code"
    );
    describe_histogram!(
        GRAPHQL_SECONDS,
        Unit::Seconds,
        "GraphQL requests' latency by kind and operation"
    );
    describe_counter!(BASKETS, "baskets answered, by status");
    describe_counter!(LINES_WRITTEN, "basket lines written to the store");
    describe_counter!(
        CONFLICTS_RETRIED,
        "writes tried again after losing an optimistic-concurrency race"
    );
    describe_counter!(
        CONFLICTS_GIVEN_UP,
        "writes answered CONFLICT after losing every race they were tried in"
    );
    describe_gauge!(
        PROJECTION_POSITION,
        "the global position of the last event each projection applied"
    );
    describe_gauge!(
        PROJECTION_LAG,
        "events committed past each projection's checkpoint (counted up to a million)"
    );
    describe_gauge!(
        PROJECTION_LAG_SECONDS,
        Unit::Seconds,
        "how long ago the first event past each projection's checkpoint was recorded (0: none)"
    );
    describe_gauge!(
        PROJECTION_STOPPED,
        "1 when the projection stopped at an event it cannot apply"
    );
    describe_gauge!(OUTBOX_UNSENT, "messages not delivered yet, by state");
    describe_counter!(MAIL_FAILURES, "deliveries of a message that failed");
    describe_gauge!(POOL_CONNECTIONS, "database connections of this server, by state");
    describe_counter!(PAYMENT_NOTIFICATIONS, "payment notifications, by result");
    describe_counter!(
        RATE_LIMITED,
        "mutation requests refused past a rate limit of their account or address"
    );
    describe_counter!(
        OVERLOADED,
        "requests refused at once, past the requests in flight a server takes"
    );
}

/// Records one GraphQL request.
pub fn graphql_request(kind: &'static str, operation: &str, code: &str, took: Duration) {
    counter!(GRAPHQL_REQUESTS, "kind" => kind, "operation" => operation.to_string(), "code" => code.to_string())
        .increment(1);
    histogram!(GRAPHQL_SECONDS, "kind" => kind, "operation" => operation.to_string())
        .record(took.as_secs_f64());
}

/// `GET /metrics`.
pub async fn page(State(state): State<AppState>) -> Response {
    let handle = handle();
    if let Err(error) = read_database(&state.pool).await {
        tracing::warn!(error = %format!("{error:#}"), "metrics: the database's figures could not be read");
    }
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        handle.render(),
    )
        .into_response()
}

/// Sets the gauges the database knows: the pool first (it needs no query).
async fn read_database(pool: &PgPool) -> anyhow::Result<()> {
    let idle = pool.num_idle() as f64;
    gauge!(POOL_CONNECTIONS, "state" => "idle").set(idle);
    gauge!(POOL_CONNECTIONS, "state" => "in_use").set((pool.size() as f64 - idle).max(0.0));
    gauge!(POOL_CONNECTIONS, "state" => "max").set(pool.options().get_max_connections() as f64);
    let behind = espace_famille_projections::store::projections_behind(pool, LAG_COUNTED_UP_TO).await?;
    for standing in behind {
        let name = standing.projection;
        gauge!(PROJECTION_POSITION, "projection" => name.clone()).set(standing.position as f64);
        gauge!(PROJECTION_LAG, "projection" => name.clone()).set(standing.events as f64);
        gauge!(PROJECTION_LAG_SECONDS, "projection" => name.clone()).set(standing.seconds);
        gauge!(PROJECTION_STOPPED, "projection" => name).set(if standing.stopped { 1.0 } else { 0.0 });
    }
    let outbox = sqlx::query(
        "SELECT count(*) FILTER (WHERE attempts < 10) AS waiting, count(*) FILTER (WHERE attempts >= 10) AS given_up
         FROM outbox WHERE sent_at IS NULL",
    )
    .fetch_one(pool)
    .await?;
    gauge!(OUTBOX_UNSENT, "state" => "waiting").set(outbox.try_get::<i64, _>("waiting")? as f64);
    gauge!(OUTBOX_UNSENT, "state" => "given_up").set(outbox.try_get::<i64, _>("given_up")? as f64);
    Ok(())
}
