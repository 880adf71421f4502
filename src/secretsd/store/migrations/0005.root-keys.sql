-- depends: 0004.iam
-- Versioned root keys. Each is random and stored only wrapped by the protector (a key file, a
-- passphrase-derived key or an external KMS key); the protector itself is never stored, only
-- what is needed to use it again (KDF parameters and salt, or the KMS key id). One state row
-- (id = 1) names the protector and the version new blobs are sealed with. legacy_active is 1
-- while blobs sealed before versioning (by the key file's raw bytes) may remain.
CREATE TABLE root_key_state (
    id BIGINT PRIMARY KEY,
    protector TEXT NOT NULL,
    protector_params TEXT NOT NULL,
    current_version BIGINT NOT NULL,
    legacy_active BIGINT NOT NULL,
    changed_ms BIGINT NOT NULL
);

CREATE TABLE root_keys (
    version BIGINT PRIMARY KEY,
    wrapped BYTEA NOT NULL,
    created_ms BIGINT NOT NULL
);
