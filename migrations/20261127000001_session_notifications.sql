-- Servers keep sessions in memory (see api/src/sessions.rs). Any change to
-- a session, an account or a grant tells them, with the account's id, so
-- that none serves a session or grants that changed. Opening a session or
-- creating an account changes nothing a server keeps.
CREATE FUNCTION sessions_changed() RETURNS trigger
    LANGUAGE plpgsql AS
$$
DECLARE
    row_ record;
BEGIN
    IF TG_OP = 'DELETE' THEN
        row_ := OLD;
    ELSE
        row_ := NEW;
    END IF;
    IF TG_TABLE_NAME = 'accounts' THEN
        PERFORM pg_notify('sessions_changed', row_.id::text);
    ELSE
        PERFORM pg_notify('sessions_changed', row_.account_id::text);
        -- A grant or a session moved to another account: both hear.
        IF TG_OP = 'UPDATE' THEN
            IF OLD.account_id <> NEW.account_id THEN
                PERFORM pg_notify('sessions_changed', OLD.account_id::text);
            END IF;
        END IF;
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER sessions_changed AFTER UPDATE OR DELETE ON sessions
    FOR EACH ROW EXECUTE FUNCTION sessions_changed();
CREATE TRIGGER sessions_changed AFTER INSERT OR UPDATE OR DELETE ON account_grants
    FOR EACH ROW EXECUTE FUNCTION sessions_changed();
CREATE TRIGGER sessions_changed AFTER UPDATE OR DELETE ON accounts
    FOR EACH ROW EXECUTE FUNCTION sessions_changed();
