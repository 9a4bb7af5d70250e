-- A projection that cannot apply an event stops at it (its checkpoint
-- stays before it) and its failure is kept here; the other projections go
-- on. The runner tries again when next_attempt_at has passed, waiting
-- longer after each attempt; `espace-famille projections retry NAME` makes
-- it try at once. The row goes once the event is applied.
CREATE TABLE projection_failures
(
    projection      text PRIMARY KEY REFERENCES projection_checkpoints (name) ON DELETE CASCADE,
    transaction_id  xid8        NOT NULL,
    global_position bigint      NOT NULL,
    event_id        uuid        NOT NULL,
    error           text        NOT NULL,
    attempts        integer     NOT NULL DEFAULT 1,
    first_failed_at timestamptz NOT NULL DEFAULT now(),
    last_failed_at  timestamptz NOT NULL DEFAULT now(),
    next_attempt_at timestamptz NOT NULL
);
