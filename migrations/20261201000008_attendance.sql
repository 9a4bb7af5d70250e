-- Attendance read model: what the roll call recorded of each child, unit and
-- day (present, absent, or there without a booking). The booking itself is
-- the calendar's: the counts billing needs join the two.
CREATE TABLE attendance
(
    reservation_id  uuid PRIMARY KEY,
    collectivity_id uuid        NOT NULL,
    family_id       uuid        NOT NULL,
    child_id        uuid        NOT NULL,
    unit_id         uuid        NOT NULL,
    day             date        NOT NULL,
    presence        text        NOT NULL CHECK (presence IN ('present', 'absent', 'unexpected')),
    recorded_at     timestamptz NOT NULL,
    recorded_by     text        NOT NULL
);
CREATE INDEX attendance_unit_day ON attendance (unit_id, day);
CREATE INDEX attendance_child_unit_day ON attendance (child_id, unit_id, day);

-- The roll-call sheet, the kitchen's headcount and the month's counts read a
-- unit's (or a commune's) bookings by day.
CREATE INDEX calendar_reservations_unit_day ON calendar_reservations (unit_id, day);
