-- The event store: postgres-es's `events` table, plus what ordered,
-- gap-safe reading and auditing need. postgres-es names its insert columns,
-- so the defaults below fill the added columns in for every writer.
CREATE TABLE events
(
    aggregate_type text                         NOT NULL,
    aggregate_id   text                         NOT NULL,
    sequence       bigint CHECK (sequence >= 0) NOT NULL,
    event_type     text                         NOT NULL,
    event_version  text                         NOT NULL,
    payload        json                         NOT NULL,
    metadata       json                         NOT NULL,
    PRIMARY KEY (aggregate_type, aggregate_id, sequence)
);

ALTER TABLE events
    -- Commit order is (transaction_id, global_position): positions are taken
    -- at insert time, so a lower position may commit after a higher one.
    ADD COLUMN global_position bigint      GENERATED ALWAYS AS IDENTITY,
    ADD COLUMN transaction_id  xid8        NOT NULL DEFAULT pg_current_xact_id(),
    ADD COLUMN event_id        uuid        NOT NULL DEFAULT gen_random_uuid(),
    ADD COLUMN recorded_at     timestamptz NOT NULL DEFAULT now(),
    -- SHA-256 of the event's content, set on insert: a stored event whose
    -- content no longer matches its hash was altered.
    ADD COLUMN content_hash    bytea;

CREATE UNIQUE INDEX events_global_position ON events (global_position);
CREATE UNIQUE INDEX events_event_id ON events (event_id);
CREATE INDEX events_commit_order ON events (transaction_id, global_position);

CREATE FUNCTION events_content_hash(e events) RETURNS bytea
    LANGUAGE sql IMMUTABLE AS
$$
SELECT sha256(convert_to(
    concat_ws(E'\x1f', e.aggregate_type, e.aggregate_id, e.sequence::text, e.event_type,
              e.event_version, e.payload::text, e.metadata::text, e.event_id::text), 'UTF8'))
$$;

CREATE FUNCTION events_before_insert() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    NEW.content_hash := events_content_hash(NEW);
    RETURN NEW;
END
$$;

CREATE TRIGGER events_hash BEFORE INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION events_before_insert();

-- Events are never changed or removed.
CREATE FUNCTION events_refuse_change() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    RAISE EXCEPTION 'events are append-only';
END
$$;

CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_refuse_change();

-- Wakes the projection runners; they also poll, so a lost notification
-- only delays them.
CREATE FUNCTION events_notify() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    PERFORM pg_notify('events_appended', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER events_appended AFTER INSERT ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_notify();
