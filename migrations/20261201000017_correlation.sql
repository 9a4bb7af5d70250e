-- Following one business operation (a basket, a billing run, a payment)
-- across streams, in commit order: the events of a correlation id.
CREATE INDEX events_correlation ON events ((metadata ->> 'correlation_id'), transaction_id, global_position);
