"""Replication to other regions of one deployment, through boto3 and the AWS CLI, as AWS and
moto's replication tests show it: replicas, their status, refusals on replicas, promotion,
removal, per-region keys, recovery, and convergence across kill -9."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from support.factories import AwsCli, SecretsManagerFactory
from support.names import NameFactory
from support.server import Credentials, ServerProcess

PRIMARY, EAST2, WEST2 = "us-east-1", "us-east-2", "us-west-2"
REFUSED = (
    "Operation not permitted on a replica secret. Call must be made in primary secret's region."
)


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str, int]:
    err = exc.value.response
    return err["Error"]["Code"], err["Error"]["Message"], err["ResponseMetadata"]["HTTPStatusCode"]


def in_region(arn: str, region: str) -> str:
    parts = arn.split(":")
    parts[3] = region
    return ":".join(parts)


def wait_for(check: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached within the timeout")


def statuses(sm: Any, arn: str) -> dict[str, dict[str, Any]]:
    return {s["Region"]: s for s in sm.describe_secret(SecretId=arn).get("ReplicationStatus", [])}


def wait_in_sync(sm: Any, arn: str, regions: set[str]) -> None:
    wait_for(
        lambda: {r for r, s in statuses(sm, arn).items() if s["Status"] == "InSync"} >= regions
    )


def test_replicas_follow_their_primary(
    sm_factory: SecretsManagerFactory, unique_name: NameFactory, server: ServerProcess
) -> None:
    use1, use2, usw2 = (sm_factory(r) for r in (PRIMARY, EAST2, WEST2))
    name = unique_name()
    created = use1.create_secret(
        Name=name,
        SecretString='{"user":"a"}',
        Description="first",
        Tags=[{"Key": "team", "Value": "red"}],
        AddReplicaRegions=[{"Region": EAST2}, {"Region": WEST2}],
    )
    arn = created["ARN"]
    assert [(s["Region"], s["Status"]) for s in created["ReplicationStatus"]] == [
        (EAST2, "InProgress"),
        (WEST2, "InProgress"),
    ]
    wait_in_sync(use1, arn, {EAST2, WEST2})
    described = use1.describe_secret(SecretId=arn)
    assert described["PrimaryRegion"] == PRIMARY
    assert all(s["KmsKeyId"] == "alias/aws/secretsmanager" for s in described["ReplicationStatus"])

    replica = use2.describe_secret(SecretId=in_region(arn, EAST2))
    # Same name and suffix, the region swapped; the primary's metadata; no status of its own.
    assert replica["ARN"] == in_region(arn, EAST2)
    assert replica["Name"] == name and replica["PrimaryRegion"] == PRIMARY
    assert replica["Description"] == "first"
    assert replica["Tags"] == [{"Key": "team", "Value": "red"}]
    assert replica["VersionIdsToStages"] == described["VersionIdsToStages"]
    assert "ReplicationStatus" not in replica
    assert use2.get_secret_value(SecretId=name)["SecretString"] == '{"user":"a"}'

    # Changes on the primary reach every replica: value and labels, description, tags, policy.
    v2 = use1.put_secret_value(SecretId=arn, SecretString="second")["VersionId"]
    use1.update_secret(SecretId=arn, Description="second description")
    use1.tag_resource(SecretId=arn, Tags=[{"Key": "env", "Value": "prod"}])
    policy = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Deny",
                    "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
                    "Action": "secretsmanager:GetSecretValue",
                    "Resource": "*",
                }
            ],
        }
    )
    use1.put_resource_policy(SecretId=arn, ResourcePolicy=policy)
    for client, region in ((use2, EAST2), (usw2, WEST2)):

        def caught_up(client: Any = client, region: str = region) -> bool:
            d = client.describe_secret(SecretId=in_region(arn, region))
            return (
                d.get("Description") == "second description"
                and {"Key": "env", "Value": "prod"} in d.get("Tags", [])
                and d["VersionIdsToStages"].get(v2) == ["AWSCURRENT"]
            )

        wait_for(caught_up)
        got = client.get_secret_value(SecretId=in_region(arn, region))
        assert (got["VersionId"], got["SecretString"]) == (v2, "second")
        previous = client.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")
        assert previous["SecretString"] == '{"user":"a"}'
    # The replica carries the primary's resource policy (it is enforced there), but
    # GetResourcePolicy is one of the calls a replica refuses.
    with pytest.raises(ClientError) as exc:
        use2.get_resource_policy(SecretId=in_region(arn, EAST2))
    assert error_of(exc) == ("InvalidParameterException", REFUSED, 400)

    # ListSecrets: PrimaryRegion and the primary-region filter, seen from a replica region.
    listed = use2.list_secrets(Filters=[{"Key": "primary-region", "Values": [PRIMARY]}])
    assert name in {s["Name"] for s in listed["SecretList"]}
    primaries = use1.list_secrets(Filters=[{"Key": "name", "Values": [name]}])["SecretList"]
    # SecretListEntry has PrimaryRegion but no ReplicationStatus in the model.
    assert primaries[0]["PrimaryRegion"] == PRIMARY and "ReplicationStatus" not in primaries[0]
    # A read of the replica shows as its LastAccessedDate in the primary's status.
    wait_for(lambda: "LastAccessedDate" in statuses(use1, arn)[EAST2])


def test_replica_refuses_writes_and_primary_refuses_deletion(
    sm_factory: SecretsManagerFactory, unique_name: NameFactory, server: ServerProcess
) -> None:
    use1, use2 = sm_factory(PRIMARY), sm_factory(EAST2)
    arn = use1.create_secret(
        Name=unique_name(), SecretString="s1", AddReplicaRegions=[{"Region": EAST2}]
    )["ARN"]
    wait_in_sync(use1, arn, {EAST2})
    arn2 = in_region(arn, EAST2)
    token = str(uuid.uuid4())
    for call in (
        lambda: use2.update_secret(SecretId=arn2, SecretString="x", ClientRequestToken=token),
        lambda: use2.put_secret_value(SecretId=arn2, SecretString="x"),
        lambda: use2.tag_resource(SecretId=arn2, Tags=[{"Key": "k", "Value": "v"}]),
        lambda: use2.untag_resource(SecretId=arn2, TagKeys=["k"]),
        lambda: use2.put_resource_policy(SecretId=arn2, ResourcePolicy="{}"),
        lambda: use2.get_resource_policy(SecretId=arn2),
        lambda: use2.delete_resource_policy(SecretId=arn2),
        lambda: use2.delete_secret(SecretId=arn2),
        lambda: use2.delete_secret(SecretId=arn2, ForceDeleteWithoutRecovery=True),
        lambda: use2.restore_secret(SecretId=arn2),
        lambda: use2.update_secret_version_stage(
            SecretId=arn2, VersionStage="X", MoveToVersionId=token
        ),
        lambda: use2.replicate_secret_to_regions(
            SecretId=arn2, AddReplicaRegions=[{"Region": WEST2}]
        ),
        lambda: use2.remove_regions_from_replication(SecretId=arn2, RemoveReplicaRegions=[PRIMARY]),
    ):
        with pytest.raises(ClientError) as exc:
            call()
        assert error_of(exc) == ("InvalidParameterException", REFUSED, 400)
    assert use2.get_secret_value(SecretId=arn2)["SecretString"] == "s1"

    with pytest.raises(ClientError) as exc:
        use1.delete_secret(SecretId=arn)
    assert error_of(exc) == (
        "InvalidParameterException",
        f"You can't delete secret {arn} that still has replica regions [{EAST2}]",
        400,
    )
    for call in (
        lambda: use1.replicate_secret_to_regions(
            SecretId=arn, AddReplicaRegions=[{"Region": PRIMARY}]
        ),
        lambda: use1.create_secret(
            Name=unique_name("same"), SecretString="s", AddReplicaRegions=[{"Region": PRIMARY}]
        ),
    ):
        with pytest.raises(ClientError) as exc:
            call()
        assert error_of(exc) == ("InvalidParameterException", "Invalid replica region.", 400)
    # The refused CreateSecret left nothing behind.
    assert not use1.list_secrets(Filters=[{"Key": "name", "Values": [unique_name("same")]}])[
        "SecretList"
    ]

    # Removing the region deletes the replica; then the primary may be deleted.
    out = use1.remove_regions_from_replication(SecretId=arn, RemoveReplicaRegions=[EAST2])
    assert out["ReplicationStatus"] == []
    with pytest.raises(ClientError) as exc:
        use2.describe_secret(SecretId=arn2)
    assert error_of(exc)[0] == "ResourceNotFoundException"
    use1.remove_regions_from_replication(SecretId=arn, RemoveReplicaRegions=[EAST2])
    use1.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)


def test_name_clash_overwrite_and_promotion(
    sm_factory: SecretsManagerFactory, unique_name: NameFactory, server: ServerProcess
) -> None:
    use1, use2 = sm_factory(PRIMARY), sm_factory(EAST2)
    name = unique_name()
    arn1 = use1.create_secret(Name=name, SecretString="s1")["ARN"]
    arn_other = use2.create_secret(Name=name, SecretString="s2")["ARN"]
    use1.replicate_secret_to_regions(SecretId=arn1, AddReplicaRegions=[{"Region": EAST2}])
    wait_for(lambda: statuses(use1, arn1)[EAST2]["Status"] == "Failed")
    assert statuses(use1, arn1)[EAST2]["StatusMessage"] == (
        f"Replication failed: Secret name {name} already exists in region {EAST2}."
    )
    assert use2.get_secret_value(SecretId=arn_other)["SecretString"] == "s2"
    use1.remove_regions_from_replication(SecretId=arn1, RemoveReplicaRegions=[EAST2])
    assert use2.get_secret_value(SecretId=arn_other)["SecretString"] == "s2"

    out = use1.replicate_secret_to_regions(
        SecretId=arn1, AddReplicaRegions=[{"Region": EAST2}], ForceOverwriteReplicaSecret=True
    )
    assert out["ARN"] == arn1
    wait_in_sync(use1, arn1, {EAST2})
    assert [
        s["ARN"]
        for s in use2.list_secrets(Filters=[{"Key": "name", "Values": [name]}])["SecretList"]
    ] == [in_region(arn1, EAST2)]
    assert use2.get_secret_value(SecretId=name)["SecretString"] == "s1"

    # Promotion: the replica becomes a standalone secret of its region.
    promoted = use2.stop_replication_to_replica(SecretId=in_region(arn1, EAST2))
    assert promoted["ARN"] == in_region(arn1, EAST2)
    assert "PrimaryRegion" not in use2.describe_secret(SecretId=name)
    assert EAST2 not in statuses(use1, arn1)
    use2.put_secret_value(SecretId=name, SecretString="own")
    use1.put_secret_value(SecretId=name, SecretString="primary's")
    time.sleep(0.5)
    assert use2.get_secret_value(SecretId=name)["SecretString"] == "own"


def test_replica_keys_per_region_and_recovery(
    sm_factory: SecretsManagerFactory,
    client_factory: Any,
    unique_name: NameFactory,
    server: ServerProcess,
) -> None:
    use1, use2 = sm_factory(PRIMARY), sm_factory(EAST2)
    kms2 = client_factory("kms", region=EAST2)
    alias = f"alias/{unique_name('key')}"
    name = unique_name()
    arn = use1.create_secret(
        Name=name, SecretString="v", AddReplicaRegions=[{"Region": EAST2, "KmsKeyId": alias}]
    )["ARN"]
    wait_for(lambda: statuses(use1, arn)[EAST2]["Status"] == "Failed")
    failed = statuses(use1, arn)[EAST2]
    assert failed["KmsKeyId"] == alias and "KMS key" in failed["StatusMessage"]
    # The key appears in the replica's region: replication recovers on its own.
    key = kms2.create_key()["KeyMetadata"]
    kms2.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    wait_in_sync(use1, arn, {EAST2})
    versions = use2.list_secret_version_ids(SecretId=name)["Versions"]
    assert [v["KmsKeyIds"] for v in versions] == [[key["Arn"]]]
    assert use2.get_secret_value(SecretId=name)["SecretString"] == "v"
    # The primary stays under its own region's default key.
    assert use1.list_secret_version_ids(SecretId=name)["Versions"][0]["KmsKeyIds"] == [
        "DefaultEncryptionKey"
    ]

    # A replica key disabled later: that replica shows Failed, the others keep replicating
    # (the dispatcher is never stuck on one secret), and it recovers once the key is enabled.
    kms2.disable_key(KeyId=key["KeyId"])
    use1.put_secret_value(SecretId=arn, SecretString="v2")
    wait_for(lambda: statuses(use1, arn)[EAST2]["Status"] == "Failed")
    assert statuses(use1, arn)[EAST2]["StatusMessage"] == (
        f"Replication failed: The KMS key {key['Arn']} is disabled."
    )
    other = use1.create_secret(
        Name=unique_name("other"), SecretString="o", AddReplicaRegions=[{"Region": EAST2}]
    )["ARN"]
    wait_in_sync(use1, other, {EAST2})
    kms2.enable_key(KeyId=key["KeyId"])
    # (Failed replicas are retried every 5 s on their own; the next change need not wait.)
    use1.put_secret_value(SecretId=arn, SecretString="v3")
    wait_in_sync(use1, arn, {EAST2})
    assert use2.get_secret_value(SecretId=name)["SecretString"] == "v3"


def test_replication_with_the_aws_cli(aws_cli: AwsCli, unique_name: NameFactory) -> None:
    name = unique_name()
    rc, out, err = aws_cli(
        "secretsmanager", "create-secret", "--name", name, "--secret-string", "c"
    )
    assert rc == 0, err
    rc, out, err = aws_cli(
        "secretsmanager",
        "replicate-secret-to-regions",
        "--secret-id",
        name,
        "--add-replica-regions",
        f"Region={EAST2}",
    )
    assert rc == 0, err
    assert out["ReplicationStatus"][0]["Region"] == EAST2

    def synced() -> bool:
        _, d, _ = aws_cli("secretsmanager", "describe-secret", "--secret-id", name)
        return bool(d["ReplicationStatus"][0]["Status"] == "InSync")

    wait_for(synced, timeout=30)
    rc, out, err = aws_cli("secretsmanager", "get-secret-value", "--secret-id", name, region=EAST2)
    assert rc == 0 and out["SecretString"] == "c", err
    rc, out, err = aws_cli(
        "secretsmanager",
        "put-secret-value",
        "--secret-id",
        name,
        "--secret-string",
        "x",
        region=EAST2,
    )
    assert rc != 0 and "Operation not permitted on a replica secret" in err
    rc, out, err = aws_cli(
        "secretsmanager",
        "remove-regions-from-replication",
        "--secret-id",
        name,
        "--remove-replica-regions",
        EAST2,
    )
    assert rc == 0 and out["ReplicationStatus"] == [], err


def test_replicas_converge_across_kill9(
    fresh_server: ServerProcess, sm_factory: SecretsManagerFactory, unique_name: NameFactory
) -> None:
    config = Config(connect_timeout=2, read_timeout=10, retries={"max_attempts": 0})
    use1 = sm_factory(PRIMARY, server=fresh_server, config=config)
    names = [unique_name(f"s{i}") for i in range(4)]
    for name in names:
        use1.create_secret(
            Name=name, SecretString="0", AddReplicaRegions=[{"Region": EAST2}, {"Region": WEST2}]
        )
    acked: dict[str, str] = {}
    stop = threading.Event()

    def writer(name: str) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            token = str(uuid.uuid4())
            try:
                use1.put_secret_value(SecretId=name, SecretString=str(n), ClientRequestToken=token)
            except Exception:
                time.sleep(0.05)
                continue
            acked[name] = token

    threads = [threading.Thread(target=writer, args=(n,)) for n in names]
    for t in threads:
        t.start()
    try:
        time.sleep(1.0)
        fresh_server.kill9()
        fresh_server.restart(graceful=False)
        time.sleep(1.0)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    use1 = sm_factory(PRIMARY, server=fresh_server)
    for region in (EAST2, WEST2):
        replica = sm_factory(region, server=fresh_server)
        for name in names:
            current = use1.get_secret_value(SecretId=name)
            # Every acknowledged write is on the primary, and the replica converges on it.
            assert use1.get_secret_value(SecretId=name, VersionId=acked[name])

            def converged(
                replica: Any = replica, name: str = name, want: str = current["VersionId"]
            ) -> bool:
                return bool(replica.get_secret_value(SecretId=name)["VersionId"] == want)

            wait_for(converged)
            assert (
                replica.describe_secret(SecretId=name)["VersionIdsToStages"]
                == use1.describe_secret(SecretId=name)["VersionIdsToStages"]
            )


def test_replica_key_permissions_of_the_caller(
    sm_factory: SecretsManagerFactory,
    client_factory: Any,
    unique_name: NameFactory,
    server: ServerProcess,
) -> None:
    """kms:GenerateDataKey and kms:Encrypt on the replica's customer managed key are the
    caller's to have (AWS's "Required permissions"), checked before anything is written."""
    iam = client_factory("iam")
    account = client_factory("sts").get_caller_identity()["Account"]
    kms2 = client_factory("kms", region=EAST2)
    admin_only = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{account}:user/admin"},
                    "Action": "kms:*",
                    "Resource": "*",
                }
            ],
        }
    )
    key = kms2.create_key(Policy=admin_only, BypassPolicyLockoutSafetyCheck=True)["KeyMetadata"]
    user = unique_name("u")[-60:]
    iam.create_user(UserName=user)
    iam.attach_user_policy(
        UserName=user, PolicyArn="arn:aws:iam::aws:policy/SecretsManagerReadWrite"
    )
    iam.put_user_policy(
        UserName=user,
        PolicyName="kms",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}],
            }
        ),
    )
    made = iam.create_access_key(UserName=user)["AccessKey"]
    as_user = sm_factory(
        PRIMARY, credentials=Credentials(made["AccessKeyId"], made["SecretAccessKey"])
    )
    name = unique_name()
    arn = as_user.create_secret(Name=name, SecretString="v")["ARN"]
    regions = [{"Region": EAST2, "KmsKeyId": key["Arn"]}]
    # IAM changes reach the shared server's policy cache within moments.
    deadline = time.monotonic() + 10
    while True:
        with pytest.raises(ClientError) as exc:
            as_user.replicate_secret_to_regions(SecretId=arn, AddReplicaRegions=regions)
        if error_of(exc)[:2] == ("AccessDeniedException", "Access to KMS is not allowed"):
            break
        assert time.monotonic() < deadline, error_of(exc)
        time.sleep(0.1)
    with pytest.raises(ClientError) as exc:
        as_user.create_secret(Name=name + "-2", SecretString="v", AddReplicaRegions=regions)
    assert error_of(exc) == ("AccessDeniedException", "Access to KMS is not allowed", 400)
    assert "ReplicationStatus" not in as_user.describe_secret(SecretId=arn)
    assert not as_user.list_secrets(Filters=[{"Key": "name", "Values": [name + "-2"]}])[
        "SecretList"
    ]
    # The key's own administrator may.
    use1 = sm_factory(PRIMARY)
    use1.replicate_secret_to_regions(SecretId=arn, AddReplicaRegions=regions)
    wait_in_sync(use1, arn, {EAST2})
    assert sm_factory(EAST2).get_secret_value(SecretId=name)["SecretString"] == "v"
    use1.remove_regions_from_replication(SecretId=arn, RemoveReplicaRegions=[EAST2])
