-- The decisions' e-mails start where the store stands when they are
-- deployed: decisions taken before were never mailed and are not now (a
-- family would otherwise get, at once, a message for every decision of
-- its history). On a new database there is no event: nothing to skip.
INSERT INTO projection_checkpoints (name, last_transaction_id, last_position)
SELECT 'decision_mails', transaction_id, global_position
FROM events
ORDER BY transaction_id DESC, global_position DESC
LIMIT 1
ON CONFLICT (name) DO NOTHING;
