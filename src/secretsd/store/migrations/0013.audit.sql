-- depends: 0010.console
-- Idempotent (IF NOT EXISTS, ON CONFLICT): on SQLite the same script also sets up the audit
-- trail's own file (store/audit_repository.py, open_audit_database).
-- The audit trail: CloudTrail-shaped records, hash-chained per account and region.
-- One head row per chain: appenders lock it (FOR UPDATE on PostgreSQL), so chains of different
-- accounts or regions never wait on each other. digest_seq/digest_ms: the last signed digest.
CREATE TABLE IF NOT EXISTS audit_chains (
    account_id TEXT NOT NULL,
    region TEXT NOT NULL,
    seq BIGINT NOT NULL,
    head_hash TEXT NOT NULL,
    digest_seq BIGINT NOT NULL,
    digest_ms BIGINT NOT NULL,
    digest_signature TEXT NOT NULL,
    PRIMARY KEY (account_id, region)
);

-- record: the CloudTrail event JSON exactly as hashed. hash = SHA-256 over the sequence number,
-- the previous record's hash and the record (see audit/chain.py). The other columns are
-- LookupEvents' attributes, copied out of the record for its filters.
CREATE TABLE IF NOT EXISTS audit_events (
    account_id TEXT NOT NULL,
    region TEXT NOT NULL,
    seq BIGINT NOT NULL,
    event_id TEXT NOT NULL,
    event_time_ms BIGINT NOT NULL,
    event_name TEXT NOT NULL,
    event_source TEXT NOT NULL,
    read_only INTEGER NOT NULL,
    username TEXT,
    access_key_id TEXT,
    resource_type TEXT,
    resource_name TEXT,
    record TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL,
    PRIMARY KEY (account_id, region, seq)
);
CREATE INDEX IF NOT EXISTS audit_events_by_time ON audit_events (account_id, region, event_time_ms);

-- Service events already appended (their audit event ids), so each is published once. API
-- calls need no such index: an index per record would cost every call (LookupEvents by EventId
-- scans the account's time index instead).
CREATE TABLE IF NOT EXISTS audit_published (
    event_id TEXT PRIMARY KEY
);

-- Signed digests: every so often the head of a chain is signed (Ed25519, with a key derived
-- from a root key version), each digest naming the previous one's signature.
CREATE TABLE IF NOT EXISTS audit_digests (
    account_id TEXT NOT NULL,
    region TEXT NOT NULL,
    seq BIGINT NOT NULL,
    head_hash TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    previous_signature TEXT NOT NULL,
    key_version INTEGER NOT NULL,
    public_key TEXT NOT NULL,
    signature TEXT NOT NULL,
    PRIMARY KEY (account_id, region, seq)
);

-- How far service events (service_events) have been published into the trail: a low-water
-- time; events at or after it are checked against audit_events by event id. The row is also
-- the publishers' lock.
CREATE TABLE IF NOT EXISTS audit_cursor (
    name TEXT PRIMARY KEY,
    position_ms BIGINT NOT NULL
);
INSERT INTO audit_cursor (name, position_ms) VALUES ('service_events', 0)
    ON CONFLICT (name) DO NOTHING;
