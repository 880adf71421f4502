-- depends: 0013.audit
-- Retention (Repository.purge_retired) on every new version of a secret with over 100 versions:
-- the newest 100 are counted, and the older ones checked for their age, on this index instead of
-- reading every version of the secret. One index only: on SQLite each index a version is written
-- to is one more page per commit (a second one, by age, measured 10-15 us per PutSecretValue).
CREATE INDEX IF NOT EXISTS secret_versions_by_seq ON secret_versions (secret_arn, seq, created_ms);
