-- A notice per agent's decision on a booking or a cancellation, kept by the
-- bookings' group in its transaction; a worker turns each into e-mails to
-- the family's guardians and deletes it (see services/decision_mails.rs).
CREATE TABLE decision_notices
(
    event_id       uuid PRIMARY KEY,
    reservation_id uuid        NOT NULL,
    decided        text        NOT NULL CHECK (decided IN ('booking_approved', 'booking_rejected',
                                                           'cancellation_approved', 'cancellation_rejected')),
    note           text,
    recorded_at    timestamptz NOT NULL
);
CREATE INDEX decision_notices_oldest ON decision_notices (recorded_at);
