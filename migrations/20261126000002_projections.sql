-- Where each projection stands: the commit-order key of the last event it
-- applied. Moved in the same transaction as the read model it guards.
CREATE TABLE projection_checkpoints
(
    name                text PRIMARY KEY,
    last_transaction_id xid8        NOT NULL DEFAULT '0',
    last_position       bigint      NOT NULL DEFAULT 0,
    updated_at          timestamptz NOT NULL DEFAULT now()
);

-- Calendar read model: the state of every reservation, by child, unit, day.
CREATE TABLE calendar_reservations
(
    reservation_id  uuid PRIMARY KEY,
    family_id       uuid        NOT NULL,
    child_id        uuid        NOT NULL,
    collectivity_id uuid        NOT NULL,
    service_id      uuid        NOT NULL,
    unit_id         uuid        NOT NULL,
    day             date        NOT NULL,
    status          text        NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX calendar_reservations_child_unit_day ON calendar_reservations (child_id, unit_id, day);

-- Agent work queue: cancellations waiting for a decision, per commune.
CREATE TABLE agent_work_queue
(
    reservation_id  uuid PRIMARY KEY,
    collectivity_id uuid        NOT NULL,
    family_id       uuid        NOT NULL,
    child_id        uuid        NOT NULL,
    unit_id         uuid        NOT NULL,
    day             date        NOT NULL,
    requested_at    timestamptz NOT NULL,
    requested_by    text        NOT NULL
);
CREATE INDEX agent_work_queue_collectivity ON agent_work_queue (collectivity_id, requested_at);

-- Validated baskets by their client-chosen id, written in the transaction
-- that appends the basket's events: a retried basket returns this outcome.
CREATE TABLE baskets
(
    basket_id   uuid PRIMARY KEY,
    family_id   uuid        NOT NULL,
    outcome     jsonb       NOT NULL,
    recorded_at timestamptz NOT NULL DEFAULT now()
);

-- Directory read model: which commune a unit belongs to and which family a
-- child belongs to, so that queries by unit or child can be authorised.
CREATE TABLE directory_units
(
    unit_id         uuid PRIMARY KEY,
    collectivity_id uuid NOT NULL,
    service_id      uuid NOT NULL,
    name            text NOT NULL
);

CREATE TABLE directory_children
(
    child_id  uuid PRIMARY KEY,
    family_id uuid NOT NULL
);
