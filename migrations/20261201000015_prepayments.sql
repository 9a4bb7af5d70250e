-- The prepayment invoices of prepaid bookings, written with the invoice:
-- when their bookings are released if the invoice is not paid, and when
-- that was settled (paid and confirmed, or released).
CREATE TABLE prepayments
(
    invoice_id      uuid PRIMARY KEY,
    collectivity_id uuid        NOT NULL,
    family_id       uuid        NOT NULL,
    expires_at      timestamptz NOT NULL,
    settled_at      timestamptz
);
CREATE INDEX prepayments_due ON prepayments (expires_at) WHERE settled_at IS NULL;
