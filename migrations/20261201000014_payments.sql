-- A payment's operation at the provider, committed with the payment's
-- events: found by its operation's id when the provider notifies, and by
-- age when the reconciliation asks the provider about the undecided ones.
CREATE TABLE payment_operations
(
    payment_id      uuid PRIMARY KEY,
    collectivity_id uuid        NOT NULL,
    family_id       uuid        NOT NULL,
    operation_id    text UNIQUE,
    started_at      timestamptz NOT NULL DEFAULT now(),
    -- When the payment was decided (paid, anomaly, failed).
    settled_at      timestamptz
);
CREATE INDEX payment_operations_undecided ON payment_operations (started_at) WHERE settled_at IS NULL;

-- The built-in payment provider's own operations (it stands in for PayFiP):
-- the provider's state, which the portal reads only through its API.
CREATE TABLE provider_operations
(
    operation_id     text PRIMARY KEY,
    amount_cents     bigint      NOT NULL,
    reference        text        NOT NULL,
    invoices         text[]      NOT NULL,
    payer_email      text        NOT NULL,
    return_url       text        NOT NULL,
    notification_url text        NOT NULL,
    status           text        NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'paid', 'refused', 'abandoned', 'expired')),
    authorisation    text,
    paid_cents       bigint      NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL DEFAULT now(),
    decided_at       timestamptz
);

-- Whether a payment online of the invoice is in progress (it cannot be
-- paid again, or cancelled, until that payment ends).
ALTER TABLE invoices ADD COLUMN payment_in_progress boolean NOT NULL DEFAULT false;
