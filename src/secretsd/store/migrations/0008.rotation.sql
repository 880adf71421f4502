-- depends: 0010.console
-- Rotation (RotateSecret): one row per secret that was ever configured for rotation.
-- rules_json is RotationRules as given; window_* the next scheduled window. A rotation in
-- progress has pending_token (its AWSPENDING version) and pending_mode ('rotate' or 'test').
-- The claim (holder, expires, fence) says which worker runs it: taken with a conditional
-- UPDATE on claim_fence, so one worker of all nodes wins; a holder that dies stops renewing and
-- another resumes the rotation (from createSecret, as AWS retries) once claim_expires_ms passes.
CREATE TABLE rotations (
    secret_arn TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    region TEXT NOT NULL,
    lambda_arn TEXT NOT NULL,
    rules_json TEXT NOT NULL,
    enabled BIGINT NOT NULL,
    last_rotated_ms BIGINT,
    window_start_ms BIGINT,
    window_end_ms BIGINT,
    pending_token TEXT,
    pending_mode TEXT,
    attempts BIGINT NOT NULL,
    retry_at_ms BIGINT,
    claim_holder TEXT,
    claim_expires_ms BIGINT NOT NULL,
    claim_fence BIGINT NOT NULL
);
CREATE INDEX rotations_by_window ON rotations (window_start_ms);
CREATE INDEX rotations_by_retry ON rotations (retry_at_ms);
