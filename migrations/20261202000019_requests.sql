-- Families' requests to their commune, and the files they attach.
--
-- A request's stream holds personal values (what the family wrote, the
-- files' names, the agents' answers), sealed with its family's key as a
-- family's own events are. The stream is not the family: the family it
-- seals for is recorded, by the event that submits it, in the writing
-- transaction, whatever path wrote it.
CREATE TABLE request_families
(
    request_id      uuid PRIMARY KEY,
    family_id       uuid NOT NULL,
    collectivity_id uuid NOT NULL
);

CREATE FUNCTION events_request_family() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    INSERT INTO request_families (request_id, family_id, collectivity_id)
    VALUES (NEW.aggregate_id::uuid,
            (NEW.payload #>> '{RequestSubmitted,submitted,family_id}')::uuid,
            (NEW.payload #>> '{RequestSubmitted,submitted,collectivity_id}')::uuid);
    RETURN NEW;
END;
$$;

CREATE TRIGGER events_request_family
    BEFORE INSERT ON events
    FOR EACH ROW
    WHEN (NEW.event_type = 'RequestSubmitted')
EXECUTE FUNCTION events_request_family();

-- The family whose key seals a stream's personal values: a family's own
-- stream, or a request's.
CREATE FUNCTION stream_family(aggregate_type text, aggregate_id text) RETURNS uuid
    LANGUAGE sql STABLE AS
$$
SELECT CASE aggregate_type
           WHEN 'Family' THEN aggregate_id::uuid
           WHEN 'Request' THEN (SELECT r.family_id FROM request_families r WHERE r.request_id = aggregate_id::uuid)
           END
$$;

-- The files, by family and content hash: committed with the events that
-- name them. Their content is in a folder (the default) or, when the
-- server is configured so, in stored_file_contents. An erased family's
-- rows are deleted with its key.
CREATE TABLE stored_files
(
    family_id  uuid        NOT NULL,
    sha256     text        NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    size       bigint      NOT NULL CHECK (size > 0),
    media_type text        NOT NULL,
    stored_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (family_id, sha256)
);

CREATE TABLE stored_file_contents
(
    family_id uuid  NOT NULL,
    sha256    text  NOT NULL,
    content   bytea NOT NULL,
    PRIMARY KEY (family_id, sha256),
    FOREIGN KEY (family_id, sha256) REFERENCES stored_files ON DELETE CASCADE
);

-- The secret that signs download links, made once for every server of
-- the database.
CREATE TABLE link_secrets
(
    name   text PRIMARY KEY,
    secret bytea NOT NULL
);

-- The read model: what the agents' queue filters by, and the state.
CREATE TABLE requests
(
    request_id      uuid PRIMARY KEY,
    collectivity_id uuid        NOT NULL,
    family_id       uuid        NOT NULL,
    category_id     uuid        NOT NULL,
    category_name   text        NOT NULL,
    reservation_id  uuid,
    attachments     integer     NOT NULL,
    answers         integer     NOT NULL DEFAULT 0,
    status          text        NOT NULL,
    accepted        boolean,
    submitted_at    timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL
);
CREATE INDEX requests_commune ON requests (collectivity_id, submitted_at, request_id);
CREATE INDEX requests_family ON requests (family_id, submitted_at);
