-- Writers announce new events with a NOTIFY of their own, after they commit
-- (see the projection engine's `Announcer`). A NOTIFY inside the writing
-- transaction, as this trigger sent, takes PostgreSQL's notification lock at
-- commit and holds it through the commit's WAL flush: every writer committed
-- after the one before it, each waiting for its own flush.
DROP TRIGGER events_appended ON events;
DROP FUNCTION events_notify();
