//! What a group reads: the union of the types and metadata its
//! projections read. The reading itself, in commit order below the
//! horizon, is the store's ([`crate::store::read_after`]).

use super::*;

/// The event types whose metadata a group reads: `None` when one of its
/// projections reads every event's.
pub(super) fn group_metadata(projections: &[&dyn Projection]) -> Option<Vec<&'static str>> {
    union_of(projections, |p| p.metadata_of())
}

/// The aggregate types a group's projections are handed, when all of them
/// name theirs: what wakes the group.
pub(super) fn group_interest(projections: &[&dyn Projection]) -> Option<Vec<&'static str>> {
    union_of(projections, |p| p.aggregate_types())
}

/// What a group asks the store for: only the events of its types, or
/// (`None`) every event, when one of its projections takes every event or
/// would rather its types were left out here (see
/// [`Projection::store_filters_types`]).
pub(super) fn group_reads(projections: &[&dyn Projection]) -> Option<Vec<&'static str>> {
    if projections.iter().any(|p| !p.store_filters_types()) {
        return None;
    }
    group_interest(projections)
}

/// The names every projection of a group gives, each once; `None` when one
/// of them gives none (it takes everything).
pub(super) fn union_of(
    projections: &[&dyn Projection],
    names: impl Fn(&dyn Projection) -> Option<&'static [&'static str]>,
) -> Option<Vec<&'static str>> {
    let mut union = Vec::new();
    for projection in projections {
        for name in names(*projection)? {
            if !union.contains(name) {
                union.push(*name);
            }
        }
    }
    Some(union)
}
