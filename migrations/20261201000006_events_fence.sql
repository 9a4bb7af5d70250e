-- Projections read events below a horizon: every transaction under it has
-- ended, so none of its events can still appear there. The snapshot's own
-- horizon, pg_snapshot_xmin, is server-wide: a transaction left open in
-- another database, or one here that writes no event, held every
-- projection back. The fence is a horizon the projections may raise past
-- such transactions, safely:
--
-- * every statement inserting events first takes a shared advisory lock
--   (4243), held until its transaction ends, and is refused (SQLSTATE
--   40001, the writer tries again with a new transaction) when its
--   transaction is older than the fence;
-- * a runner raises the fence only under the exclusive lock, which it gets
--   once every transaction that wrote events has ended: the new fence,
--   the xmax of a snapshot taken then, has below it only transactions
--   that ended or that never wrote an event and now never will.
--
-- Projections then read below the higher of the snapshot's horizon and
-- the fence.
CREATE TABLE events_fence
(
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    fence    xid8 NOT NULL
);
INSERT INTO events_fence (fence) VALUES ('0');

CREATE FUNCTION events_check_fence() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    PERFORM pg_advisory_xact_lock_shared(4243);
    IF pg_current_xact_id() < (SELECT fence FROM events_fence) THEN
        RAISE EXCEPTION 'this transaction is older than the projections'' fence; try again'
            USING ERRCODE = '40001';
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER events_fence BEFORE INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_check_fence();
