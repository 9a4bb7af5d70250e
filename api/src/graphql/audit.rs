//! The auditor's reads of the store: the history of any aggregate, paged.
//! (The states as of an instant are the `asOf` of `reservation`,
//! `invoice`, `family` and `collectivity`.)

#[allow(unused_imports)]
use super::*;

use async_graphql::{Enum, SimpleObject};

use crate::graphql::reservation_views::HistoryEvent;
use crate::services::audit::{self, Kind};

/// The aggregates whose history can be read.
#[derive(Enum, Copy, Clone, Eq, PartialEq)]
pub enum AggregateKind {
    Reservation,
    Family,
    Invoice,
    Payment,
    Collectivity,
}

impl From<AggregateKind> for Kind {
    fn from(kind: AggregateKind) -> Kind {
        match kind {
            AggregateKind::Reservation => Kind::Reservation,
            AggregateKind::Family => Kind::Family,
            AggregateKind::Invoice => Kind::Invoice,
            AggregateKind::Payment => Kind::Payment,
            AggregateKind::Collectivity => Kind::Collectivity,
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
}
