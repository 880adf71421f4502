-- depends: 0006.leases-events
-- The web console. Login profiles are IAM's console passwords (CreateLoginProfile): only a
-- memory-hard hash is kept (scrypt, parameters and salt inside password_hash).
CREATE TABLE iam_login_profiles (
    account_id TEXT NOT NULL REFERENCES accounts (account_id),
    user_name TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    reset_required INTEGER NOT NULL,
    created_ms BIGINT NOT NULL,
    PRIMARY KEY (account_id, user_name)
);

-- Signed-in console sessions. The cookie carries a random token; only its SHA-256 is stored,
-- so a database reader cannot ride a session. kind: 'password' (user_name set) or 'key'
-- (access_key_id set: signed in with an access key pair).
CREATE TABLE console_sessions (
    token_digest BYTEA PRIMARY KEY,
    account_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    user_name TEXT,
    access_key_id TEXT,
    csrf_token TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    last_seen_ms BIGINT NOT NULL,
    region TEXT NOT NULL
);
CREATE INDEX console_sessions_by_age ON console_sessions (created_ms);
