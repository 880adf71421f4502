-- depends: 0010.console
-- Cross-account replicas (CreateSecret with CrossAccountPrimaryARN, AssociateCrossAccountReplica):
-- one row per replica secret, written when the replica account creates it (Pending), linked
-- when the primary account associates it. `linked`: the primary lists it (CrossAccountReplicas);
-- `promoted`: the replica account stopped replication (StopReplicationToReplica), so the replica
-- no longer shows CrossAccountPrimary and the primary shows Detached.
CREATE TABLE cross_account_replicas (
    replica_arn TEXT PRIMARY KEY,
    primary_arn TEXT NOT NULL,
    linked BIGINT NOT NULL,
    promoted BIGINT NOT NULL,
    status TEXT NOT NULL,
    status_message TEXT,
    replication_role_arn TEXT,
    replica_restriction TEXT,
    created_ms BIGINT NOT NULL,
    synced_ms BIGINT
);
CREATE INDEX cross_account_replicas_primary ON cross_account_replicas (primary_arn);

-- Replicas in regions another deployment serves (the peer list): a primary whose state that
-- peer has not acknowledged yet. `generation` grows with every change, so a push that raced a
-- newer change leaves the row for the next one; `next_attempt_ms` spaces retries (backoff).
CREATE TABLE peer_outbox (
    primary_arn TEXT NOT NULL,
    region TEXT NOT NULL,
    generation BIGINT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_ms BIGINT NOT NULL,
    PRIMARY KEY (primary_arn, region)
);

-- Notices for a peer deployment: a replica of its primary was promoted here
-- (StopReplicationToReplica), so the primary's deployment drops that region.
CREATE TABLE peer_notices (
    replica_arn TEXT PRIMARY KEY,
    primary_region TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_ms BIGINT NOT NULL
);
