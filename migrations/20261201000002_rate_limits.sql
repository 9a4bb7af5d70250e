-- Rate limits counted per e-mail and per client address.
--
-- A login attempt is written before its password is checked, as pending,
-- in the transaction that reads the counts (see the accounts' limits): a
-- burst of attempts for one e-mail is counted one by one. The per-address
-- count takes only settled failures, so that a rush of parents behind one
-- address (a school's network, a mobile operator's NAT) is not limited by
-- its own attempts still being checked.
ALTER TABLE login_failures
    ADD COLUMN attempt_id uuid,
    ADD COLUMN pending    boolean NOT NULL DEFAULT false;
CREATE INDEX login_failures_attempt ON login_failures (attempt_id);

-- Password-reset requests: each is counted whether or not the e-mail has
-- an account, so the limit tells nobody which e-mails have one.
CREATE TABLE password_reset_requests
(
    email          text        NOT NULL,
    client_address text        NOT NULL,
    requested_at   timestamptz NOT NULL DEFAULT now(),
    attempt_id     uuid,
    pending        boolean     NOT NULL DEFAULT false
);
CREATE INDEX password_reset_requests_email ON password_reset_requests (lower(email), requested_at);
CREATE INDEX password_reset_requests_address ON password_reset_requests (client_address, requested_at);
