-- The invoices read model: every invoice with its state, for a family's
-- "Factures à payer" and its history, and a régie's month and unpaid total.
CREATE TABLE invoices
(
    invoice_id           uuid PRIMARY KEY,
    collectivity_id      uuid        NOT NULL,
    family_id            uuid        NOT NULL,
    number               text        NOT NULL,
    month                text,
    total_cents          bigint      NOT NULL,
    credited_cents       bigint      NOT NULL DEFAULT 0,
    status               text        NOT NULL CHECK (status IN ('issued', 'paid', 'cancelled')),
    issued_on            date        NOT NULL,
    payable_online_until date        NOT NULL,
    due_on               date        NOT NULL,
    paid_at              timestamptz
);
CREATE INDEX invoices_family ON invoices (family_id, status);
CREATE INDEX invoices_month ON invoices (collectivity_id, month);
