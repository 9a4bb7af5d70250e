-- The agents' queue holds bookings waiting for approval as well as
-- cancellations: each row says which.
ALTER TABLE agent_work_queue ADD COLUMN kind text NOT NULL DEFAULT 'cancellation'
    CHECK (kind IN ('booking', 'cancellation'));
