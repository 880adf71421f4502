-- depends: 0002.list-indexes
-- Customer managed KMS keys. kms_keys.material_sealed stays the key's first material version
-- (what secret envelopes are wrapped with); later versions from rotation live in
-- kms_key_materials, and KMS ciphertext blobs name the version they were made with.
ALTER TABLE kms_keys ADD COLUMN material_version BIGINT NOT NULL DEFAULT 1;
ALTER TABLE kms_keys ADD COLUMN deletion_ms BIGINT;
ALTER TABLE kms_keys ADD COLUMN policy TEXT;
ALTER TABLE kms_keys ADD COLUMN rotation_period_days BIGINT;
ALTER TABLE kms_keys ADD COLUMN next_rotation_ms BIGINT;
ALTER TABLE kms_keys ADD COLUMN tags_json TEXT;
ALTER TABLE kms_aliases ADD COLUMN updated_ms BIGINT;
CREATE INDEX kms_keys_by_account ON kms_keys (account_id, region, key_id);
CREATE INDEX kms_keys_by_deletion ON kms_keys (deletion_ms);

CREATE TABLE kms_key_materials (
    key_id TEXT NOT NULL REFERENCES kms_keys (key_id) ON DELETE CASCADE,
    version BIGINT NOT NULL,
    material_sealed BYTEA NOT NULL,
    created_ms BIGINT NOT NULL,
    PRIMARY KEY (key_id, version)
);
