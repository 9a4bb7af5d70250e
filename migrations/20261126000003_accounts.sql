-- Personal data keys (crypto-shredding): one AES-256 key per family. Deleting
-- a row makes every personal value in that family's events unreadable.
CREATE TABLE family_keys
(
    family_id  uuid PRIMARY KEY,
    key        bytea       NOT NULL CHECK (length(key) = 32),
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Families whose personal data was erased: no key may be created again.
CREATE TABLE erased_families
(
    family_id uuid PRIMARY KEY,
    erased_at timestamptz NOT NULL DEFAULT now()
);

-- Credentials are not events: accounts, their grants, tokens and sessions.
CREATE TABLE accounts
(
    id            uuid PRIMARY KEY,
    email         text        NOT NULL,
    -- argon2id PHC string; NULL until the account is activated.
    password_hash text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    activated_at  timestamptz
);
CREATE UNIQUE INDEX accounts_email ON accounts (lower(email));

-- What an account may do: admin (sets up communes), agent of a commune,
-- parent (guardian) of a family, auditor of a commune or of all (scope NULL).
CREATE TABLE account_grants
(
    account_id uuid NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    role       text NOT NULL CHECK (role IN ('admin', 'agent', 'parent', 'auditor')),
    scope      uuid,
    CHECK ((role IN ('agent', 'parent') AND scope IS NOT NULL) OR role IN ('admin', 'auditor'))
);
CREATE UNIQUE INDEX account_grants_unique ON account_grants (account_id, role, coalesce(scope, '00000000-0000-0000-0000-000000000000'));
CREATE INDEX account_grants_scope ON account_grants (role, scope);

-- Single-use activation and password-reset tokens, stored as SHA-256.
CREATE TABLE account_tokens
(
    token_hash bytea PRIMARY KEY,
    account_id uuid        NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    purpose    text        NOT NULL CHECK (purpose IN ('activation', 'password_reset')),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    used_at    timestamptz
);

-- Bearer sessions, stored as SHA-256 of the token.
CREATE TABLE sessions
(
    token_hash bytea PRIMARY KEY,
    account_id uuid        NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz
);
CREATE INDEX sessions_account ON sessions (account_id);

-- Failed logins, for rate limiting per e-mail and per client address.
CREATE TABLE login_failures
(
    email          text        NOT NULL,
    client_address text        NOT NULL,
    failed_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX login_failures_email ON login_failures (lower(email), failed_at);
CREATE INDEX login_failures_address ON login_failures (client_address, failed_at);

-- E-mails to send. A message's body is cleared once it is delivered (it may
-- hold a single-use link); a family's messages go on erasure.
CREATE TABLE outbox
(
    id         uuid PRIMARY KEY,
    family_id  uuid,
    recipient  text,
    subject    text        NOT NULL,
    body       text,
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at    timestamptz,
    attempts   integer     NOT NULL DEFAULT 0,
    last_error text
);
CREATE INDEX outbox_unsent ON outbox (created_at) WHERE sent_at IS NULL;
CREATE INDEX outbox_family ON outbox (family_id);
