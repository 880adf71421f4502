-- Written in the common subset of SQLite and PostgreSQL. Times are milliseconds since the epoch.
CREATE TABLE accounts (
    account_id TEXT PRIMARY KEY,
    created_ms BIGINT NOT NULL
);

CREATE TABLE access_keys (
    access_key_id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (account_id),
    principal_arn TEXT NOT NULL,
    secret_sealed BYTEA NOT NULL,
    status TEXT NOT NULL,
    created_ms BIGINT NOT NULL
);

CREATE TABLE kms_keys (
    key_id TEXT PRIMARY KEY,
    arn TEXT NOT NULL UNIQUE,
    account_id TEXT NOT NULL,
    region TEXT NOT NULL,
    manager TEXT NOT NULL,
    description TEXT NOT NULL,
    key_state TEXT NOT NULL,
    material_sealed BYTEA NOT NULL,
    created_ms BIGINT NOT NULL
);

CREATE TABLE kms_aliases (
    account_id TEXT NOT NULL,
    region TEXT NOT NULL,
    alias_name TEXT NOT NULL,
    key_id TEXT NOT NULL REFERENCES kms_keys (key_id),
    created_ms BIGINT NOT NULL,
    PRIMARY KEY (account_id, region, alias_name)
);

CREATE TABLE secrets (
    arn TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    region TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT,
    kms_key_id TEXT,
    secret_type TEXT,
    created_ms BIGINT NOT NULL,
    last_changed_ms BIGINT NOT NULL,
    last_accessed_ms BIGINT,
    deleted_ms BIGINT,
    deletion_ms BIGINT,
    tags_json TEXT,
    resource_policy TEXT,
    owning_service TEXT,
    primary_region TEXT,
    version_seq BIGINT NOT NULL
);
CREATE UNIQUE INDEX secrets_by_name ON secrets (account_id, region, name);
CREATE INDEX secrets_by_created ON secrets (account_id, region, created_ms, arn);
CREATE INDEX secrets_by_deletion ON secrets (deletion_ms);

CREATE TABLE secret_versions (
    secret_arn TEXT NOT NULL REFERENCES secrets (arn) ON DELETE CASCADE,
    version_id TEXT NOT NULL,
    seq BIGINT NOT NULL,
    created_ms BIGINT NOT NULL,
    last_accessed_ms BIGINT,
    value_kind TEXT NOT NULL,
    envelope BYTEA,
    kms_key_arn TEXT,
    PRIMARY KEY (secret_arn, version_id)
);

CREATE TABLE version_stages (
    secret_arn TEXT NOT NULL,
    stage TEXT NOT NULL,
    version_id TEXT NOT NULL,
    PRIMARY KEY (secret_arn, stage),
    FOREIGN KEY (secret_arn, version_id) REFERENCES secret_versions (secret_arn, version_id)
        ON DELETE CASCADE
);
CREATE INDEX version_stages_by_version ON version_stages (secret_arn, version_id);

-- Facts about the deployment itself, such as a check value proving the root key matches.
CREATE TABLE meta (
    name TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);
