-- depends: 0013.audit
-- Retention (Repository.purge_retired) on every new version of a secret with over 100 versions:
-- the newest 100 are counted on the first index, the versions old enough to go are found on the
-- second, instead of reading every version of the secret.
CREATE INDEX IF NOT EXISTS secret_versions_by_seq ON secret_versions (secret_arn, seq);
CREATE INDEX IF NOT EXISTS secret_versions_by_age ON secret_versions (secret_arn, created_ms);
