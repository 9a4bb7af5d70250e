//! Every GraphQL type but the accounts', by feature: one place to import
//! them from.

pub use super::collectivity_views::*;
pub use super::family_views::*;
pub use super::reservation_views::*;
