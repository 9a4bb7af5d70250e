// Starts GraphiQL on this server's /graphql (loaded after React, ReactDOM
// and GraphiQL, from this server).
"use strict";
(function () {
  var fetcher = GraphiQL.createFetcher({ url: "/graphql" });
  var root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(React.createElement(GraphiQL, { fetcher: fetcher, defaultEditorToolsVisibility: true }));
})();
