-- A change of e-mail waits for a link sent to the new address: its token
-- keeps that address until it is used.
ALTER TABLE account_tokens ADD COLUMN new_email text;
ALTER TABLE account_tokens DROP CONSTRAINT account_tokens_purpose_check;
ALTER TABLE account_tokens ADD CONSTRAINT account_tokens_purpose_check
    CHECK (purpose IN ('activation', 'password_reset', 'email_change'));
ALTER TABLE account_tokens ADD CONSTRAINT account_tokens_new_email_check
    CHECK ((purpose = 'email_change') = (new_email IS NOT NULL));
