//! Every GraphQL type but the accounts', by feature: one place to import
//! them from.

pub use super::booking_rules_views::*;
pub use super::collectivity_views::*;
pub use super::family_views::*;
pub use super::reservation_views::*;
