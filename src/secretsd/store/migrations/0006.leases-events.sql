-- depends: 0005.root-keys
-- Leases: work that must happen once across every worker and node (a rotation, a replication
-- batch, a scheduler pass) is done by whoever holds its lease. A lease held past expires_ms may
-- be taken over; fence grows on every change of holder, so a holder that was too slow can tell
-- that its work was handed to someone else.
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_ms BIGINT NOT NULL,
    fence BIGINT NOT NULL
);

-- Service events (AWS's "AwsServiceEvent" records: RotationStarted, RotationSucceeded, ...),
-- written in the transaction of the change they describe, so the audit trail can publish them.
-- details_json never holds a secret value.
CREATE TABLE service_events (
    event_id TEXT PRIMARY KEY,
    time_ms BIGINT NOT NULL,
    account_id TEXT NOT NULL,
    region TEXT NOT NULL,
    event_source TEXT NOT NULL,
    event_name TEXT NOT NULL,
    resource_arn TEXT,
    details_json TEXT NOT NULL
);
CREATE INDEX service_events_by_time ON service_events (account_id, region, time_ms, event_id);
CREATE INDEX service_events_by_resource ON service_events (resource_arn, time_ms);
