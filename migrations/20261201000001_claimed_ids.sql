-- Ids chosen by clients are global: a commune, a service, a unit, a family
-- or a child id names one thing only, whoever chose it. Without this a
-- parent could register a child under the id of another family's child and
-- reach that child's reservations (their ids derive from the child's).
--
-- The claim is made by the event that introduces the id, in the writing
-- transaction, whatever path wrote it: a second claim breaks the primary key
-- and nothing of that transaction is stored. The API checks the table first
-- to answer with a clear error; this trigger is what makes it hold under
-- races and for every writer.
CREATE TABLE claimed_ids
(
    id             uuid PRIMARY KEY,
    kind           text NOT NULL,
    aggregate_type text NOT NULL,
    aggregate_id   text NOT NULL
);

CREATE FUNCTION claimed_id_of(event_type text, payload json) RETURNS uuid
    LANGUAGE sql IMMUTABLE AS
$$
SELECT (CASE event_type
            WHEN 'CollectivityCreated' THEN payload #>> '{CollectivityCreated,id}'
            WHEN 'ServiceAdded' THEN payload #>> '{ServiceAdded,service,id}'
            WHEN 'UnitAdded' THEN payload #>> '{UnitAdded,unit,id}'
            WHEN 'FamilyAccountOpened' THEN payload #>> '{FamilyAccountOpened,id}'
            WHEN 'ChildRegistered' THEN payload #>> '{ChildRegistered,child,id}'
    END)::uuid
$$;

CREATE FUNCTION events_claim_id() RETURNS trigger
    LANGUAGE plpgsql AS
$$
BEGIN
    INSERT INTO claimed_ids (id, kind, aggregate_type, aggregate_id)
    VALUES (claimed_id_of(NEW.event_type, NEW.payload), NEW.event_type, NEW.aggregate_type, NEW.aggregate_id);
    RETURN NEW;
END;
$$;

-- The WHEN clause keeps the trigger off the hot path: a basket's
-- reservation events never call the function.
CREATE TRIGGER events_claim_id
    BEFORE INSERT ON events
    FOR EACH ROW
    WHEN (NEW.event_type IN ('CollectivityCreated', 'ServiceAdded', 'UnitAdded', 'FamilyAccountOpened',
                             'ChildRegistered'))
EXECUTE FUNCTION events_claim_id();

-- The ids already stored; where two events already share one (written
-- before this table existed), the first keeps it.
INSERT INTO claimed_ids (id, kind, aggregate_type, aggregate_id)
SELECT claimed_id_of(event_type, payload), event_type, aggregate_type, aggregate_id
FROM events
WHERE event_type IN ('CollectivityCreated', 'ServiceAdded', 'UnitAdded', 'FamilyAccountOpened', 'ChildRegistered')
ORDER BY global_position
ON CONFLICT (id) DO NOTHING;
