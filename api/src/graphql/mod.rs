//! The GraphQL schema. Resolvers are thin: authorise, turn input into domain
//! values, run one command or one query, map the result.

pub mod account;
pub mod attendance;
pub mod audit;
pub mod billing;
pub mod booking_rules_views;
pub mod booking_views;
pub mod collectivity;
pub mod collectivity_views;
pub mod family;
pub mod family_views;
pub mod limits;
pub mod parse_cache;
pub mod payment;
pub mod profile;
pub mod requests;
pub mod reservation;
pub mod reservation_views;
pub mod types;

use espace_famille_domain::collectivity::Collectivity;
use espace_famille_domain::family::Family;
use std::sync::Arc;

use async_graphql::{Context, EmptySubscription, MergedObject, Object, Result, Schema};
use chrono::NaiveDate;
use espace_famille_domain::collectivity::{CollectivityCommand, Service};
use espace_famille_domain::family::{Child, ChildHealth, FamilyCommand, QuotientFamilial};
use espace_famille_domain::reservation::{Decision, Reservation, ReservationError, ReservationEvent};
use espace_famille_projections::work_queue;
use uuid::Uuid;

use crate::auth::accounts::AuthSettings;
use crate::auth::identity::Caller;
use crate::auth::sessions::Sessions;
use crate::commands::{metadata, Commands};
use crate::error::ApiError;
use crate::i18n::say;
use crate::services::basket::{self, Basket, BasketAction, BasketLine, BasketStatus};
use crate::services::calendar;
use booking_views::BasketOutcomeView;
use types::*;

pub type AppSchema = Schema<Query, Mutation, EmptySubscription>;

#[derive(MergedObject, Default)]
pub struct Query(
    collectivity::CollectivityQuery,
    family::FamilyQuery,
    reservation::ReservationQuery,
    attendance::AttendanceQuery,
    billing::BillingQuery,
    payment::PaymentQuery,
    audit::AuditQuery,
    account::AccountQuery,
    requests::RequestQuery,
);

#[derive(MergedObject, Default)]
pub struct Mutation(
    collectivity::CollectivityMutation,
    family::FamilyMutation,
    reservation::ReservationMutation,
    attendance::AttendanceMutation,
    billing::BillingMutation,
    payment::PaymentMutation,
    account::AccountMutation,
    profile::ProfileMutation,
    requests::RequestMutation,
);

/// What the resolvers are given: the write path, the accounts' settings,
/// the sessions, the payments, the files.
pub type Services = (
    Arc<Commands>,
    AuthSettings,
    Arc<Sessions>,
    Arc<crate::payment::Payments>,
    Arc<crate::files::Files>,
);

/// Builds the schema; the commands, settings, kept sessions and caller
/// come through the context.
pub fn schema(services: Option<Services>) -> AppSchema {
    // Depth and aliases are checked before execution (see [`limits`]), with
    // room for the standard introspection query.
    let builder = Schema::build(Query::default(), Mutation::default(), EmptySubscription)
        .limit_complexity(2_000)
        .limit_directives(20);
    match services {
        Some((commands, auth, sessions, payments, files)) => builder
            .data(commands)
            .data(auth)
            .data(sessions)
            .data(payments)
            .data(files)
            .finish(),
        None => builder.finish(),
    }
}

fn commands<'a>(ctx: &'a Context<'_>) -> &'a Arc<Commands> {
    ctx.data_unchecked::<Arc<Commands>>()
}

fn sessions<'a>(ctx: &'a Context<'_>) -> &'a Sessions {
    ctx.data_unchecked::<Arc<Sessions>>()
}

static NOBODY: Caller = Caller {
    identity: None,
    client_address: String::new(),
    bearer: None,
};

fn caller<'a>(ctx: &'a Context<'_>) -> &'a Caller {
    ctx.data_opt::<Caller>().unwrap_or(&NOBODY)
}
