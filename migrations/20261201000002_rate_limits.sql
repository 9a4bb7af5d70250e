-- Password-reset requests, for rate limiting per e-mail and per client
-- address: each request is counted whether or not the e-mail has an
-- account, so the limit tells nobody which e-mails have one.
CREATE TABLE password_reset_requests
(
    email          text        NOT NULL,
    client_address text        NOT NULL,
    requested_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX password_reset_requests_email ON password_reset_requests (lower(email), requested_at);
CREATE INDEX password_reset_requests_address ON password_reset_requests (client_address, requested_at);
