//! Parsed queries kept by their text: clients send the same few documents
//! over and over (the calendar, a basket) with different variables, and
//! parsing was the largest single cost of a calendar query on the server.
//! Validation still runs on every request (it depends on the variables).
//!
//! The cache hands the parsed document to the request before it is
//! executed rather than being a schema extension: with any extension
//! installed, async-graphql runs every field and every list item of the
//! response through the extension chain, which cost more than the parsing
//! it saved (a calendar answer is 26 objects).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_graphql::parser::{parse_query, types::ExecutableDocument};
use async_graphql::Request;

/// Documents kept at most; when full, the cache starts again empty, so a
/// stream of one-off queries cannot grow it.
const CAPACITY: usize = 256;
/// Longer documents are parsed every time.
const MAX_QUERY_BYTES: usize = 8 * 1024;

#[derive(Default, Clone)]
pub struct ParseCache {
    documents: Arc<Mutex<HashMap<String, ExecutableDocument>>>,
}

impl ParseCache {
    /// The parsed document of `query`, from the cache or parsed now and
    /// kept; a document that does not parse is not kept.
    pub fn document(&self, query: &str) -> Result<ExecutableDocument, async_graphql::parser::Error> {
        if query.len() > MAX_QUERY_BYTES {
            return parse_query(query);
        }
        if let Some(document) = self.lock().get(query).cloned() {
            return Ok(document);
        }
        let document = parse_query(query)?;
        let mut documents = self.lock();
        if documents.len() >= CAPACITY {
            documents.clear();
        }
        documents.insert(query.to_string(), document.clone());
        Ok(document)
    }

    /// Gives the request its parsed document. A document that does not
    /// parse is left to the schema, which reports the error.
    pub fn prepare(&self, request: &mut Request) {
        if let Ok(document) = self.document(&request.query) {
            request.set_parsed_query(document);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, ExecutableDocument>> {
        self.documents.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_graphql::{EmptyMutation, EmptySubscription, Object, Schema, Variables};

    struct Query;

    #[Object]
    impl Query {
        async fn double(&self, n: i32) -> i32 {
            2 * n
        }
    }

    type TestSchema = Schema<Query, EmptyMutation, EmptySubscription>;

    fn schema() -> TestSchema {
        Schema::build(Query, EmptyMutation, EmptySubscription)
            .limit_depth(3)
            .finish()
    }

    async fn run(schema: &TestSchema, cache: &ParseCache, mut request: Request) -> async_graphql::Response {
        cache.prepare(&mut request);
        schema.execute(request).await
    }

    async fn double(schema: &TestSchema, cache: &ParseCache, n: i32) -> serde_json::Value {
        let request = Request::new("query($n: Int!) { double(n: $n) }")
            .variables(Variables::from_json(serde_json::json!({ "n": n })));
        run(schema, cache, request).await.data.into_json().unwrap()
    }

    #[tokio::test]
    async fn a_kept_document_runs_with_each_requests_own_variables() {
        let (schema, cache) = (schema(), ParseCache::default());
        assert_eq!(double(&schema, &cache, 2).await["double"], 4);
        assert_eq!(double(&schema, &cache, 21).await["double"], 42);
        assert_eq!(cache.lock().len(), 1);
    }

    #[tokio::test]
    async fn a_broken_document_is_refused_every_time_and_never_kept() {
        let (schema, cache) = (schema(), ParseCache::default());
        for _ in 0..2 {
            let response = run(&schema, &cache, Request::new("query { double(n: ")).await;
            assert_eq!(response.errors.len(), 1, "{response:?}");
        }
        assert!(cache.lock().is_empty());
    }

    #[tokio::test]
    async fn a_kept_document_is_still_validated_every_time() {
        let (schema, cache) = (schema(), ParseCache::default());
        for _ in 0..2 {
            let unknown = run(&schema, &cache, Request::new("{ triple(n: 2) }")).await;
            assert_eq!(unknown.errors.len(), 1, "{unknown:?}");
            assert!(unknown.errors[0].message.contains("triple"), "{unknown:?}");
        }
        assert_eq!(cache.lock().len(), 1, "it parses, so it is kept");
    }

    #[tokio::test]
    async fn one_off_documents_cannot_grow_it_past_its_capacity() {
        let (schema, cache) = (schema(), ParseCache::default());
        for n in 0..CAPACITY + 10 {
            let response = run(&schema, &cache, Request::new(format!("{{ double(n: {n}) }}"))).await;
            assert!(response.errors.is_empty());
        }
        assert!(cache.lock().len() <= CAPACITY);
    }
}
