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

-- The records, in blocks: each writer's batch for one chain is one row (a row per record cost
-- every call an insert into three B-trees). `records`: one CloudTrail event JSON per line, in
-- sequence order (first_seq, first_seq + 1, ...), exactly as hashed; `hashes`: each line's
-- hash, space-separated; prev_hash: the hash of the record before first_seq. A record's hash
-- is SHA-256 over its sequence number, the previous record's hash and the record (see
-- audit/chain.py). first_ms/last_ms: the block's event times, for LookupEvents' time range.
CREATE TABLE IF NOT EXISTS audit_blocks (
    account_id TEXT NOT NULL,
    region TEXT NOT NULL,
    first_seq BIGINT NOT NULL,
    last_seq BIGINT NOT NULL,
    first_ms BIGINT NOT NULL,
    last_ms BIGINT NOT NULL,
    records TEXT NOT NULL,
    hashes TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    PRIMARY KEY (account_id, region, first_seq)
);
CREATE INDEX IF NOT EXISTS audit_blocks_by_time ON audit_blocks (account_id, region, last_ms);

-- Service events already appended (their audit event ids), so each is published once.
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
