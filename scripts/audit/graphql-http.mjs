// Audits a running server against the GraphQL over HTTP specification with
// the specification's own suite (graphql-http's serverAudits), then sends
// graphql-js's standard introspection query, as code generators and API
// clients send it. Exits 1 on any error or warning ("notice" is printed and
// tolerated: the suite uses it for what the specification leaves open).
//
// Usage: node graphql-http.mjs http://127.0.0.1:PORT/graphql
import { serverAudits } from 'graphql-http';
import { getIntrospectionQuery, buildClientSchema } from 'graphql';

const url = process.argv[2];
if (!url) {
  console.error('usage: node graphql-http.mjs URL');
  process.exit(2);
}

const counts = { ok: 0, notice: 0, warn: 0, error: 0 };
for (const audit of serverAudits({ url })) {
  const result = await audit.fn();
  counts[result.status] += 1;
  if (result.status !== 'ok') {
    console.log(`${result.status}: ${result.name}: ${result.reason}`);
  }
}

let introspection = 'ok';
const response = await fetch(url, {
  method: 'POST',
  headers: { 'content-type': 'application/json', accept: 'application/graphql-response+json' },
  body: JSON.stringify({ query: getIntrospectionQuery() }),
});
const body = await response.json();
if (response.status !== 200 || body.errors) {
  introspection = `HTTP ${response.status}: ${JSON.stringify(body.errors)}`;
} else {
  // The answer builds a schema, as code generators build theirs from it.
  const schema = buildClientSchema(body.data);
  if (!schema.getQueryType() || !schema.getMutationType()) introspection = 'no query or mutation type';
}
console.log(`introspection with graphql-js's standard query: ${introspection}`);
console.log(`graphql-http audits: ${counts.ok} ok, ${counts.notice} notices, ${counts.warn} warnings, ${counts.error} errors`);
const failed = counts.warn + counts.error + (introspection === 'ok' ? 0 : 1);
console.log(`${counts.ok + counts.notice + 1 - (introspection === 'ok' ? 0 : 1)} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
