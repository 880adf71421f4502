-- depends: 0003.kms
-- IAM: users, groups, roles, policies and STS sessions, per account. Names are unique per
-- account ignoring case (as IAM's are); name_lower carries that rule.
CREATE TABLE iam_users (
    account_id TEXT NOT NULL REFERENCES accounts (account_id),
    name TEXT NOT NULL,
    name_lower TEXT NOT NULL,
    user_id TEXT NOT NULL UNIQUE,
    path TEXT NOT NULL,
    tags_json TEXT,
    created_ms BIGINT NOT NULL,
    PRIMARY KEY (account_id, name)
);
CREATE UNIQUE INDEX iam_users_by_lower ON iam_users (account_id, name_lower);

CREATE TABLE iam_groups (
    account_id TEXT NOT NULL REFERENCES accounts (account_id),
    name TEXT NOT NULL,
    name_lower TEXT NOT NULL,
    group_id TEXT NOT NULL UNIQUE,
    path TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    PRIMARY KEY (account_id, name)
);
CREATE UNIQUE INDEX iam_groups_by_lower ON iam_groups (account_id, name_lower);

CREATE TABLE iam_group_members (
    account_id TEXT NOT NULL,
    group_name TEXT NOT NULL,
    user_name TEXT NOT NULL,
    PRIMARY KEY (account_id, group_name, user_name)
);
CREATE INDEX iam_group_members_by_user ON iam_group_members (account_id, user_name);

CREATE TABLE iam_roles (
    account_id TEXT NOT NULL REFERENCES accounts (account_id),
    name TEXT NOT NULL,
    name_lower TEXT NOT NULL,
    role_id TEXT NOT NULL UNIQUE,
    path TEXT NOT NULL,
    trust_policy TEXT NOT NULL,
    description TEXT,
    max_session_seconds BIGINT NOT NULL,
    tags_json TEXT,
    created_ms BIGINT NOT NULL,
    PRIMARY KEY (account_id, name)
);
CREATE UNIQUE INDEX iam_roles_by_lower ON iam_roles (account_id, name_lower);

-- Inline policies; owner_kind is 'user', 'group' or 'role'.
CREATE TABLE iam_inline_policies (
    account_id TEXT NOT NULL,
    owner_kind TEXT NOT NULL,
    owner_name TEXT NOT NULL,
    policy_name TEXT NOT NULL,
    document TEXT NOT NULL,
    PRIMARY KEY (account_id, owner_kind, owner_name, policy_name)
);

-- Customer managed policies (AWS managed ones are part of the code, not the database).
CREATE TABLE iam_managed_policies (
    arn TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts (account_id),
    name TEXT NOT NULL,
    policy_id TEXT NOT NULL UNIQUE,
    path TEXT NOT NULL,
    description TEXT,
    document TEXT NOT NULL,
    default_version TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL
);
CREATE UNIQUE INDEX iam_managed_policies_by_name ON iam_managed_policies (account_id, name);

CREATE TABLE iam_attachments (
    account_id TEXT NOT NULL,
    owner_kind TEXT NOT NULL,
    owner_name TEXT NOT NULL,
    policy_arn TEXT NOT NULL,
    PRIMARY KEY (account_id, owner_kind, owner_name, policy_arn)
);
CREATE INDEX iam_attachments_by_policy ON iam_attachments (policy_arn);

-- Long-term access keys belong to a user (user_name) or, for emergency access, to the
-- account's root user (user_name NULL, principal_arn ...:root).
ALTER TABLE access_keys ADD COLUMN user_name TEXT;
CREATE INDEX access_keys_by_user ON access_keys (account_id, user_name);

-- Temporary credentials from STS. The session token is kept only as a SHA-256 digest; the
-- secret access key is sealed by the root key like long-term ones.
CREATE TABLE sts_sessions (
    access_key_id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    secret_sealed BYTEA NOT NULL,
    token_digest BYTEA NOT NULL,
    kind TEXT NOT NULL,
    principal_arn TEXT NOT NULL,
    caller_arn TEXT NOT NULL,
    owner_name TEXT NOT NULL,
    userid TEXT NOT NULL,
    tags_json TEXT,
    created_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL
);
CREATE INDEX sts_sessions_by_expiry ON sts_sessions (expires_ms);

-- Bumped by every IAM write in the same transaction: worker processes and nodes compare it to
-- drop cached principals and policies.
CREATE TABLE change_counters (
    name TEXT PRIMARY KEY,
    value BIGINT NOT NULL
);
INSERT INTO change_counters (name, value) VALUES ('iam', 0);

-- Keys created before IAM existed belong to `arn:aws:iam::<12 digits>:user/<name>` (the first
-- administrator): make each such user a real IAM user with AdministratorAccess, as it had in
-- effect. The user id is derived from the key id (not secret) so this stays portable SQL.
UPDATE access_keys SET user_name = substr(principal_arn, 32)
    WHERE user_name IS NULL AND principal_arn LIKE 'arn:aws:iam::____________:user/%';
INSERT INTO iam_users (account_id, name, name_lower, user_id, path, tags_json, created_ms)
    SELECT account_id, user_name, lower(user_name), 'AIDA' || substr(access_key_id, 5, 16) || 'A',
        '/', NULL, created_ms
    FROM access_keys WHERE user_name IS NOT NULL;
INSERT INTO iam_attachments (account_id, owner_kind, owner_name, policy_arn)
    SELECT account_id, 'user', user_name, 'arn:aws:iam::aws:policy/AdministratorAccess'
    FROM access_keys WHERE user_name IS NOT NULL;
