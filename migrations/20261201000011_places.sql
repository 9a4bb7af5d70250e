-- The waiting lists as the days' places streams keep them: who waits, on
-- which unit and day, with which ticket (the order in which they joined).
-- A booking's position is the number of those still waiting with a ticket
-- up to its own.
CREATE TABLE waiting_lists
(
    reservation_id uuid PRIMARY KEY,
    unit_id        uuid    NOT NULL,
    day            date    NOT NULL,
    ticket         integer NOT NULL
);
CREATE INDEX waiting_lists_unit_day_ticket ON waiting_lists (unit_id, day, ticket);

-- The promotions start where the store stands when they are deployed (no
-- stream of places exists before them).
INSERT INTO projection_checkpoints (name, last_transaction_id, last_position)
SELECT 'promotions', transaction_id, global_position
FROM events
ORDER BY transaction_id DESC, global_position DESC
LIMIT 1
ON CONFLICT (name) DO NOTHING;

-- A promotion from the waiting list is mailed like an agent's decision.
ALTER TABLE decision_notices DROP CONSTRAINT decision_notices_decided_check;
ALTER TABLE decision_notices ADD CONSTRAINT decision_notices_decided_check
    CHECK (decided IN ('booking_approved', 'booking_rejected', 'cancellation_approved',
                       'cancellation_rejected', 'promoted'));
