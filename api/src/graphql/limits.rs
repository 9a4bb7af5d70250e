//! What a document may ask for before it runs: how deep its selections go
//! and how many aliases it uses.
//!
//! Depth is measured as client tools measure it, with introspection apart:
//! the standard introspection query (graphql-js's `getIntrospectionQuery`,
//! which code generators and API clients send) nests its type references
//! about a dozen levels, and is bounded by the schema's own shape, so the
//! fields under `__schema` and `__type` have a limit of their own. Aliases
//! are counted because each one runs its field again: a thousand aliases of
//! the calendar were a thousand calendar reads in one request.

use std::collections::HashSet;

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};

/// The deepest selection outside introspection.
pub const MAX_DEPTH: usize = 12;
/// The deepest selection under `__schema` or `__type`.
pub const MAX_INTROSPECTION_DEPTH: usize = 24;
/// The most aliases one document may use.
pub const MAX_ALIASES: usize = 30;
/// The most fields the check visits (fragments spread many times count
/// each time): past it the document is refused without going further.
const MAX_VISITED: usize = 20_000;

/// Why a document is refused before it runs.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    #[error("the document is nested {0} levels deep; at most {MAX_DEPTH} are allowed")]
    TooDeep(usize),
    #[error("the introspection is nested more than {MAX_INTROSPECTION_DEPTH} levels deep")]
    IntrospectionTooDeep,
    #[error("the document uses more than {MAX_ALIASES} aliases")]
    TooManyAliases,
    #[error("the document selects too many fields")]
    TooLarge,
}

struct Walk<'a> {
    document: &'a ExecutableDocument,
    aliases: usize,
    visited: usize,
    /// The fragments being spread, to stop at a cycle (which validation
    /// then reports).
    spreading: HashSet<&'a str>,
}

/// Refuses a document too deep or with too many aliases.
pub fn check(document: &ExecutableDocument) -> Result<(), LimitError> {
    let mut walk = Walk {
        document,
        aliases: 0,
        visited: 0,
        spreading: HashSet::new(),
    };
    for (_, operation) in document.operations.iter() {
        walk.selections(&operation.node.selection_set.node, 1, false)?;
    }
    Ok(())
}

impl<'a> Walk<'a> {
    fn selections(
        &mut self,
        set: &'a SelectionSet,
        depth: usize,
        introspection: bool,
    ) -> Result<(), LimitError> {
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    self.visited += 1;
                    if self.visited > MAX_VISITED {
                        return Err(LimitError::TooLarge);
                    }
                    if field.alias.is_some() {
                        self.aliases += 1;
                        if self.aliases > MAX_ALIASES {
                            return Err(LimitError::TooManyAliases);
                        }
                    }
                    let name = field.name.node.as_str();
                    let introspection = introspection || name == "__schema" || name == "__type";
                    if introspection && depth > MAX_INTROSPECTION_DEPTH {
                        return Err(LimitError::IntrospectionTooDeep);
                    }
                    if !introspection && depth > MAX_DEPTH {
                        return Err(LimitError::TooDeep(depth));
                    }
                    self.selections(&field.selection_set.node, depth + 1, introspection)?;
                }
                Selection::InlineFragment(fragment) => {
                    self.selections(&fragment.node.selection_set.node, depth, introspection)?;
                }
                Selection::FragmentSpread(spread) => {
                    let name = spread.node.fragment_name.node.as_str();
                    let Some(fragment) = self.document.fragments.get(name) else {
                        continue;
                    };
                    if !self.spreading.insert(name) {
                        continue;
                    }
                    self.selections(&fragment.node.selection_set.node, depth, introspection)?;
                    self.spreading.remove(name);
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::parser::parse_query;

    fn checked(query: &str) -> Result<(), LimitError> {
        check(&parse_query(query).unwrap())
    }

    fn nested(depth: usize, root: &str) -> String {
        let mut query = String::new();
        for _ in 0..depth - 1 {
            query.push_str(root);
            query.push_str(" { ");
        }
        query.push_str("name");
        query.push_str(&" }".repeat(depth - 1));
        format!("{{ {query} }}")
    }

    #[test]
    fn depth_counts_the_fields_inside_fragments_too() {
        assert_eq!(checked(&nested(MAX_DEPTH, "a")), Ok(()));
        assert_eq!(
            checked(&nested(MAX_DEPTH + 1, "a")),
            Err(LimitError::TooDeep(MAX_DEPTH + 1))
        );
        let spread = format!("{{ a {{ ...F }} }} fragment F on T {}", nested(MAX_DEPTH, "a"));
        assert_eq!(checked(&spread), Err(LimitError::TooDeep(MAX_DEPTH + 1)));
    }

    #[test]
    fn introspection_has_room_for_type_references_but_not_for_ever() {
        let type_ref = format!("{{ __schema {{ types {{ fields {{ type {} }} }} }} }}", {
            let levels = 12;
            format!(
                "{{ {} name{} }}",
                "kind ofType { ".repeat(levels),
                " }".repeat(levels)
            )
        });
        assert_eq!(checked(&type_ref), Ok(()));
        assert_eq!(
            checked(&nested(MAX_INTROSPECTION_DEPTH + 1, "__schema")),
            Err(LimitError::IntrospectionTooDeep)
        );
    }

    #[test]
    fn aliases_are_counted_across_the_document() {
        let many = |n: usize| {
            format!(
                "{{ {} }}",
                (0..n).map(|i| format!("a{i}: me {{ id }}")).collect::<String>()
            )
        };
        assert_eq!(checked(&many(MAX_ALIASES)), Ok(()));
        assert_eq!(checked(&many(MAX_ALIASES + 1)), Err(LimitError::TooManyAliases));
    }

    #[test]
    fn fragments_spread_over_and_over_are_refused_without_being_walked_out() {
        // Each fragment spreads the next ten times: 10^6 fields in all.
        let mut query = String::from("{ ...F0 }");
        for level in 0..6 {
            let spreads: String = (0..10).map(|_| format!(" x {{ ...F{} }}", level + 1)).collect();
            query.push_str(&format!(" fragment F{level} on T {{{spreads} }}"));
        }
        query.push_str(" fragment F6 on T { name }");
        assert_eq!(checked(&query), Err(LimitError::TooLarge));
    }
}
