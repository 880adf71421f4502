-- depends: 0010.console
-- Lambda functions (only $LATEST: no published versions or aliases). The deployment package is
-- code, not a secret, and is kept here as uploaded (at most 50 MB, AWS's direct-upload limit).
-- config_json: Runtime, Role, Handler, Description, Timeout, MemorySize, Environment variables.
-- policy_json: the function's resource policy (AddPermission), NULL when it has none.
CREATE TABLE lambda_functions (
    account_id TEXT NOT NULL,
    region TEXT NOT NULL,
    name TEXT NOT NULL,
    config_json TEXT NOT NULL,
    code_zip BYTEA NOT NULL,
    code_sha256 TEXT NOT NULL,
    code_size BIGINT NOT NULL,
    policy_json TEXT,
    revision_id TEXT NOT NULL,
    last_modified_ms BIGINT NOT NULL,
    PRIMARY KEY (account_id, region, name)
);

-- CloudWatch Logs for function output: a group per function, a stream per environment.
CREATE TABLE log_groups (
    account_id TEXT NOT NULL,
    region TEXT NOT NULL,
    name TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    PRIMARY KEY (account_id, region, name)
);

CREATE TABLE log_streams (
    account_id TEXT NOT NULL,
    region TEXT NOT NULL,
    group_name TEXT NOT NULL,
    name TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    first_event_ms BIGINT,
    last_event_ms BIGINT,
    last_ingestion_ms BIGINT,
    stored_bytes BIGINT NOT NULL,
    PRIMARY KEY (account_id, region, group_name, name)
);

-- event_id sorts as (timestamp, ingestion order): the zero-padded timestamp, then random digits.
CREATE TABLE log_events (
    event_id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    region TEXT NOT NULL,
    group_name TEXT NOT NULL,
    stream_name TEXT NOT NULL,
    timestamp_ms BIGINT NOT NULL,
    ingestion_ms BIGINT NOT NULL,
    message TEXT NOT NULL
);
CREATE INDEX log_events_by_group ON log_events (account_id, region, group_name, event_id);
