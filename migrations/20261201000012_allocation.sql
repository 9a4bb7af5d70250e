-- The allocated booking windows and their lotteries' seeds. A seed is drawn
-- when its window is set and stays here, unpublished (the commune's event
-- carries only its SHA-256), until the window's runs reveal it in their
-- events. The runner looks here for the windows that closed and have not
-- run yet (`ran_at`).
CREATE TABLE allocation_seeds
(
    window_id       uuid PRIMARY KEY,
    collectivity_id uuid        NOT NULL,
    unit_id         uuid        NOT NULL,
    first_day       date        NOT NULL,
    last_day        date        NOT NULL,
    closes_at       timestamptz NOT NULL,
    seed            bytea       NOT NULL,
    ran_at          timestamptz
);
CREATE INDEX allocation_seeds_due ON allocation_seeds (closes_at) WHERE ran_at IS NULL;

-- Every family is e-mailed its allocation's outcome.
ALTER TABLE decision_notices DROP CONSTRAINT decision_notices_decided_check;
ALTER TABLE decision_notices ADD CONSTRAINT decision_notices_decided_check
    CHECK (decided IN ('booking_approved', 'booking_rejected', 'cancellation_approved',
                       'cancellation_rejected', 'promoted', 'allocated', 'allocation_wait_listed'));
