//! The auditor's reads of the store: the history of any aggregate, paged.
//! (The states as of an instant are the `asOf` of `reservation`,
//! `invoice`, `family` and `collectivity`.)

#[allow(unused_imports)]
use super::*;

use async_graphql::{Enum, SimpleObject};
use chrono::{DateTime, Utc};

use crate::graphql::reservation_views::HistoryEvent;
use crate::services::audit::{self, Kind};
use espace_famille_projections::store::{FeedFilter, Position};

/// The aggregates whose history can be read.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum AggregateKind {
    Reservation,
    Family,
    Invoice,
    Payment,
    Collectivity,
    Request,
}

impl From<AggregateKind> for Kind {
    fn from(kind: AggregateKind) -> Kind {
        match kind {
            AggregateKind::Reservation => Kind::Reservation,
            AggregateKind::Family => Kind::Family,
            AggregateKind::Invoice => Kind::Invoice,
            AggregateKind::Payment => Kind::Payment,
            AggregateKind::Collectivity => Kind::Collectivity,
            AggregateKind::Request => Kind::Request,
        }
    }
}

/// A page of a stream's events, oldest first.
#[derive(SimpleObject)]
pub struct HistoryPage {
    pub events: Vec<HistoryEvent>,
    /// Give it as `after` for the next page; none: this was the last.
    pub next_after: Option<i64>,
}

/// One event of a correlation or of a feed, with its stream.
#[derive(SimpleObject)]
pub struct CorrelatedEvent {
    pub aggregate_type: String,
    pub aggregate_id: String,
    /// Its place in the commit order, as `after` takes it.
    pub position: String,
    pub event: HistoryEvent,
}

/// A page of events across streams, in commit order.
#[derive(SimpleObject)]
pub struct CorrelationPage {
    pub events: Vec<CorrelatedEvent>,
    /// Give it as `after` for the next page; none: this was the last.
    pub next_after: Option<String>,
}

fn page_of(page: audit::CorrelationPage) -> CorrelationPage {
    CorrelationPage {
        events: page
            .events
            .iter()
            .map(|e| CorrelatedEvent {
                aggregate_type: e.aggregate_type.clone(),
                aggregate_id: e.aggregate_id.clone(),
                position: cursor(e.position),
                event: HistoryEvent::from(e),
            })
            .collect(),
        next_after: page.next_after.map(cursor),
    }
}

/// A place in the commit order as clients see it: `transaction/position`.
fn cursor(position: Position) -> String {
    format!("{}/{}", position.transaction_id, position.global_position)
}

/// Reads a cursor [`cursor`] wrote.
pub fn parse_cursor(text: &str) -> Result<Position, ApiError> {
    let invalid = || ApiError::Validation(say("api.invalid_cursor", &[]));
    let (transaction, position) = text.split_once('/').ok_or_else(invalid)?;
    let number = |text: &str| text.parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(invalid);
    Ok(Position {
        transaction_id: number(transaction)?,
        global_position: number(position)?,
    })
}

#[derive(Default)]
pub struct AuditQuery;

#[Object]
impl AuditQuery {
    /// Every event of one aggregate in order (type, version, recorded time,
    /// actor and role, correlation and causation, payload), for whoever may
    /// read the aggregate: its family's guardians and its commune's agents
    /// and auditors (a commune's, for its staff only). Personal values read
    /// as erased once the family was erased. Paged by sequence.
    async fn history(
        &self,
        ctx: &Context<'_>,
        aggregate: AggregateKind,
        id: Uuid,
        #[graphql(default = 0, desc = "the sequence the previous page ended at")] after: i64,
        #[graphql(default = 100, desc = "at most 500")] first: i64,
    ) -> Result<HistoryPage> {
        let page = audit::history(commands(ctx), caller(ctx), aggregate.into(), id, after, first).await?;
        Ok(HistoryPage {
            events: page.events.iter().map(HistoryEvent::from).collect(),
            next_after: page.next_after,
        })
    }

    /// Every event of one commune in commit order, for its auditors: its
    /// own stream, its families (their events naming it or no commune), the
    /// reservations, invoices and payments made there, its units' places,
    /// its invoice numbers. Filtered by aggregate and event types (up to 20
    /// each) and by the instant recorded (`from` included, `to` not).
    #[allow(clippy::too_many_arguments)]
    async fn audit_feed(
        &self,
        ctx: &Context<'_>,
        collectivity_id: Uuid,
        #[graphql(desc = "the nextAfter of the previous page")] after: Option<String>,
        #[graphql(default = 100, desc = "at most 500")] first: i64,
        aggregate_types: Option<Vec<String>>,
        event_types: Option<Vec<String>>,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Result<CorrelationPage> {
        let after = after.as_deref().map(parse_cursor).transpose()?;
        let filter = FeedFilter {
            aggregate_types,
            event_types,
            from,
            to,
        };
        let page = audit::feed(commands(ctx), caller(ctx), collectivity_id, after, first, &filter).await?;
        Ok(page_of(page))
    }

    /// Everything one business operation did (a basket and what followed
    /// from it: its invoices, its payment, its confirmations; a billing
    /// run; an allocation run), across streams, in commit order: the
    /// events whose correlation id is `id`, among the streams the caller
    /// may read the history of.
    async fn correlation(
        &self,
        ctx: &Context<'_>,
        id: Uuid,
        #[graphql(desc = "the nextAfter of the previous page")] after: Option<String>,
        #[graphql(default = 100, desc = "at most 500")] first: i64,
    ) -> Result<CorrelationPage> {
        let after = after.as_deref().map(parse_cursor).transpose()?;
        let page = audit::correlation(commands(ctx), caller(ctx), id, after, first).await?;
        Ok(page_of(page))
    }
}
