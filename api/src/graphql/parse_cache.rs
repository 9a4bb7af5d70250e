//! Parsed queries kept by their text: clients send the same few documents
//! over and over (the calendar, a basket) with different variables, and
//! parsing was the largest single cost of a calendar query on the server.
//! Validation still runs on every request (it depends on the variables).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_graphql::extensions::{Extension, ExtensionContext, ExtensionFactory, NextParseQuery};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{ServerResult, Variables};

/// Documents kept at most; when full, the cache starts again empty, so a
/// stream of one-off queries cannot grow it.
const CAPACITY: usize = 256;
/// Longer documents are parsed every time.
const MAX_QUERY_BYTES: usize = 8 * 1024;

#[derive(Default)]
pub struct ParseCache {
    documents: Arc<Mutex<HashMap<String, ExecutableDocument>>>,
}

impl ExtensionFactory for ParseCache {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ParseCacheExtension {
            documents: self.documents.clone(),
        })
    }
}

struct ParseCacheExtension {
    documents: Arc<Mutex<HashMap<String, ExecutableDocument>>>,
}

#[async_trait::async_trait]
impl Extension for ParseCacheExtension {
    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        if query.len() > MAX_QUERY_BYTES {
            return next.run(ctx, query, variables).await;
        }
        if let Some(document) = self.documents.lock().expect("parse cache lock").get(query) {
            return Ok(document.clone());
        }
        // Only documents that parse are kept: errors are reported afresh.
        let document = next.run(ctx, query, variables).await?;
        let mut documents = self.documents.lock().expect("parse cache lock");
        if documents.len() >= CAPACITY {
            documents.clear();
        }
        documents.insert(query.to_string(), document.clone());
        Ok(document)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::{EmptyMutation, EmptySubscription, Object, Request, Schema};

    struct Query;

    #[Object]
    impl Query {
        async fn double(&self, n: i32) -> i32 {
            2 * n
        }
    }

    fn schema(cache: &ParseCache) -> Schema<Query, EmptyMutation, EmptySubscription> {
        Schema::build(Query, EmptyMutation, EmptySubscription)
            .extension(ParseCache {
                documents: cache.documents.clone(),
            })
            .finish()
    }

    async fn double(schema: &Schema<Query, EmptyMutation, EmptySubscription>, n: i32) -> serde_json::Value {
        let request = Request::new("query($n: Int!) { double(n: $n) }")
            .variables(Variables::from_json(serde_json::json!({ "n": n })));
        schema.execute(request).await.data.into_json().unwrap()
    }

    #[tokio::test]
    async fn a_kept_document_runs_with_each_requests_own_variables() {
        let cache = ParseCache::default();
        let schema = schema(&cache);
        assert_eq!(double(&schema, 2).await["double"], 4);
        assert_eq!(double(&schema, 21).await["double"], 42);
        assert_eq!(cache.documents.lock().unwrap().len(), 1);
    }

    #[tokio::test]
    async fn a_broken_document_is_refused_every_time_and_never_kept() {
        let cache = ParseCache::default();
        let schema = schema(&cache);
        for _ in 0..2 {
            let response = schema.execute("query { double(n: ").await;
            assert_eq!(response.errors.len(), 1, "{response:?}");
        }
        assert!(cache.documents.lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn one_off_documents_cannot_grow_it_past_its_capacity() {
        let cache = ParseCache::default();
        let schema = schema(&cache);
        for n in 0..CAPACITY + 10 {
            let response = schema.execute(format!("{{ double(n: {n}) }}")).await;
            assert!(response.errors.is_empty());
        }
        assert!(cache.documents.lock().unwrap().len() <= CAPACITY);
    }
}
