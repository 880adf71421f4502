-- depends: 0001.initial
-- ListSecrets pages by each sort key with the ARN as tie-breaker; these let every sort order
-- be served from an index instead of sorting the account's secrets per page.
CREATE INDEX secrets_by_changed ON secrets (account_id, region, last_changed_ms, arn);
CREATE INDEX secrets_by_name_arn ON secrets (account_id, region, name, arn);
