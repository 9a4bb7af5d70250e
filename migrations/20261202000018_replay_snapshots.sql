-- Read models rebuilt as they stood at an instant (`replay --until`), each
-- in a schema of its own that an auditor reads until it is dropped
-- (`replay --drop`); only the schemas listed here can be dropped so.
CREATE TABLE replay_snapshots (
    schema_name text PRIMARY KEY,
    until timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    events bigint NOT NULL,
    read_models text[] NOT NULL
);
