-- A family joins another commune only with its consent: a guardian creates
-- a code and gives it to the commune's agent, who joins the family with it.
-- The code is single-use, expires, and is kept only as its SHA-256.
CREATE TABLE family_join_codes
(
    code_hash    bytea PRIMARY KEY,
    family_id    uuid        NOT NULL,
    created_by   uuid        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz NOT NULL,
    used_at      timestamptz,
    -- The commune that used it.
    collectivity_id uuid
);
CREATE INDEX family_join_codes_family ON family_join_codes (family_id);
