-- depends: 0006.leases-events
-- Replication to other regions (ReplicateSecretToRegions): one row per replica of a primary.
-- kms_key_id is the key reference the caller gave for that region (NULL: aws/secretsmanager).
CREATE TABLE replicas (
    primary_arn TEXT NOT NULL,
    region TEXT NOT NULL,
    kms_key_id TEXT,
    force_overwrite BIGINT NOT NULL,
    status TEXT NOT NULL,
    status_message TEXT,
    created_ms BIGINT NOT NULL,
    synced_ms BIGINT,
    PRIMARY KEY (primary_arn, region)
);

-- The outbox: a primary that changed, written in the transaction of the change; the
-- dispatcher (under the `replication` lease) copies the primary to its replicas and deletes
-- the rows it handled in the same transaction, so a crash only ever repeats a copy.
CREATE TABLE replication_outbox (
    entry_id TEXT PRIMARY KEY,
    primary_arn TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);
