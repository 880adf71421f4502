"""Cross-account replicas in one deployment, through boto3 and the AWS CLI, as AWS documents
them: the replica account creates the replica (CrossAccountPrimaryARN, a customer managed key),
the primary account associates it (both accounts' policies and both KMS key policies decide),
values replicate, Disassociate leaves it Detached, StopReplicationToReplica promotes it."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from support.factories import AwsCli, ClientFactory
from support.names import NameFactory
from support.server import Credentials, ServerProcess, scrubbed_environ

REGION = "us-east-1"
REFUSED = (
    "Operation not permitted on a replica secret. Call must be made in primary secret's region."
)


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str]:
    return exc.value.response["Error"]["Code"], exc.value.response["Error"]["Message"]


def wait_for(check: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError("condition not reached within the timeout")


def new_account(server: ServerProcess) -> tuple[str, Credentials]:
    args = [sys.executable, "-m", "secretsd", "account", "create", "--json"]
    args += ["--data-dir", str(server.data_dir)]
    if server.database_url:
        args += ["--database", server.database_url]
    done = subprocess.run(
        args, capture_output=True, text=True, timeout=60, env=scrubbed_environ(), check=False
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    return out["Account"], Credentials(out["AccessKeyId"], out["SecretAccessKey"])


def key_policy(owner: str, encrypting: str | None) -> str:
    statements: list[dict[str, Any]] = [
        {
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{owner}:root"},
            "Action": "kms:*",
            "Resource": "*",
        }
    ]
    if encrypting is not None:
        statements.append(
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{encrypting}:root"},
                "Action": "kms:Encrypt",
                "Resource": "*",
            }
        )
    return json.dumps({"Version": "2012-10-17", "Statement": statements})


def cross(sm: Any, arn: str) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    d = sm.describe_secret(SecretId=arn)
    return d.get("CrossAccountPrimary"), d.get("CrossAccountReplicas", [])


def test_cross_account_replica_lifecycle(
    client_factory: ClientFactory, unique_name: NameFactory, server: ServerProcess
) -> None:
    primary_sm = client_factory("secretsmanager")
    a_id = client_factory("sts").get_caller_identity()["Account"]
    b_id, b_creds = new_account(server)
    replica_sm = client_factory("secretsmanager", credentials=b_creds)
    replica_kms = client_factory("kms", credentials=b_creds)

    name = unique_name()
    primary = primary_sm.create_secret(Name=name, SecretString="v1")["ARN"]
    key = replica_kms.create_key()["KeyMetadata"]
    replica_kms.put_key_policy(
        KeyId=key["KeyId"], PolicyName="default", Policy=key_policy(b_id, None)
    )

    # What CreateSecret refuses with CrossAccountPrimaryARN.
    for kwargs, message in (
        (
            {"SecretString": "x", "KmsKeyId": key["Arn"]},
            "You can't include SecretString, SecretBinary, Description, AddReplicaRegions, or"
            " Type when you create a cross-account replica secret.",
        ),
        (
            {},
            "You must specify a customer managed KMS key in KmsKeyId to create a cross-account"
            " replica secret.",
        ),
        (
            {"KmsKeyId": "alias/aws/secretsmanager"},
            "You must specify a customer managed KMS key in KmsKeyId to create a cross-account"
            " replica secret.",
        ),
    ):
        with pytest.raises(ClientError) as exc:
            replica_sm.create_secret(Name=name, CrossAccountPrimaryARN=primary, **kwargs)
        assert error_of(exc) == ("InvalidParameterException", message)
    with pytest.raises(ClientError) as exc:
        replica_sm.create_secret(
            Name=name,
            CrossAccountPrimaryARN=primary.replace(":us-east-1:", ":us-west-2:"),
            KmsKeyId=key["Arn"],
        )
    assert error_of(exc) == (
        "InvalidParameterException",
        "The primary and replica secrets must be in the same Region.",
    )
    assert not replica_sm.list_secrets(Filters=[{"Key": "name", "Values": [name]}])["SecretList"]

    replica = replica_sm.create_secret(
        Name=name, CrossAccountPrimaryARN=primary, KmsKeyId=key["Arn"]
    )["ARN"]
    assert replica.split(":")[4] == b_id and "VersionId" not in replica
    assert cross(replica_sm, replica) == (
        {"PrimarySecretARN": primary, "ReplicationStatus": "Pending"},
        [],
    )
    managed_policy = replica_sm.get_resource_policy(SecretId=replica)["ResourcePolicy"]
    assert f"arn:aws:iam::{a_id}:root" in managed_policy
    # The replica's value comes from its primary only; its tags are its own.
    with pytest.raises(ClientError) as exc:
        replica_sm.put_secret_value(SecretId=replica, SecretString="mine")
    assert error_of(exc) == ("InvalidParameterException", REFUSED)
    replica_sm.tag_resource(SecretId=replica, Tags=[{"Key": "owner", "Value": "b"}])

    # The replica account's resource policy decides AcceptCrossAccountReplication...
    replica_sm.delete_resource_policy(SecretId=replica)
    with pytest.raises(ClientError) as exc:
        primary_sm.associate_cross_account_replica(SecretId=primary, CrossAccountReplicaARN=replica)
    code, message = error_of(exc)
    assert code == "AccessDeniedException"
    assert "secretsmanager:AcceptCrossAccountReplication" in message and replica in message
    replica_sm.put_resource_policy(SecretId=replica, ResourcePolicy=managed_policy)
    # ... and its key policy kms:Encrypt by the primary account.
    with pytest.raises(ClientError) as exc:
        primary_sm.associate_cross_account_replica(SecretId=primary, CrossAccountReplicaARN=replica)
    assert error_of(exc) == ("AccessDeniedException", "Access to KMS is not allowed")
    assert cross(replica_sm, replica)[0] == {
        "PrimarySecretARN": primary,
        "ReplicationStatus": "Pending",
    }
    replica_kms.put_key_policy(
        KeyId=key["KeyId"], PolicyName="default", Policy=key_policy(b_id, a_id)
    )

    out = primary_sm.associate_cross_account_replica(
        SecretId=primary, CrossAccountReplicaARN=replica
    )
    assert (out["ARN"], out["CrossAccountReplicaARN"], out["ReplicationStatus"]) == (
        primary,
        replica,
        "InProgress",
    )
    wait_for(lambda: cross(primary_sm, primary)[1][0]["ReplicationStatus"] == "InSync")
    assert cross(primary_sm, primary)[1] == [
        {"ReplicaSecretARN": replica, "ReplicationStatus": "InSync"}
    ]
    assert cross(replica_sm, replica)[0] == {
        "PrimarySecretARN": primary,
        "ReplicationStatus": "InSync",
    }
    got = replica_sm.get_secret_value(SecretId=replica)
    assert got["SecretString"] == "v1"
    # Sealed under the replica account's own key.
    versions = replica_sm.list_secret_version_ids(SecretId=replica)["Versions"]
    assert [v["KmsKeyIds"] for v in versions] == [[key["Arn"]]]
    # Idempotent: associating again repairs, it does not fail.
    primary_sm.associate_cross_account_replica(SecretId=primary, CrossAccountReplicaARN=replica)

    v2 = primary_sm.put_secret_value(SecretId=primary, SecretString="v2")["VersionId"]
    wait_for(lambda: replica_sm.get_secret_value(SecretId=replica)["VersionId"] == v2)
    assert (
        replica_sm.get_secret_value(SecretId=replica, VersionStage="AWSPREVIOUS")["SecretString"]
        == "v1"
    )
    assert replica_sm.get_secret_value(SecretId=replica, VersionId=v2)["SecretString"] == "v2"

    # Failed while the replica's key cannot be used, with a message; recovers after.
    replica_kms.disable_key(KeyId=key["KeyId"])
    primary_sm.put_secret_value(SecretId=primary, SecretString="v2b")
    wait_for(lambda: cross(primary_sm, primary)[1][0]["ReplicationStatus"] == "Failed")
    failed = cross(primary_sm, primary)[1][0]
    assert failed["StatusMessage"] == f"Replication failed: The KMS key {key['Arn']} is disabled."
    assert cross(replica_sm, replica)[0] == {
        "PrimarySecretARN": primary,
        "ReplicationStatus": "Failed",
        "StatusMessage": failed["StatusMessage"],
    }
    # The replica keeps what it had (its value cannot be read while its key is disabled).
    assert "AWSCURRENT" in replica_sm.describe_secret(SecretId=replica)["VersionIdsToStages"][v2]
    replica_kms.enable_key(KeyId=key["KeyId"])
    v2 = primary_sm.put_secret_value(SecretId=primary, SecretString="v2c")["VersionId"]
    wait_for(lambda: cross(primary_sm, primary)[1][0]["ReplicationStatus"] == "InSync")
    assert "StatusMessage" not in cross(primary_sm, primary)[1][0]
    assert replica_sm.get_secret_value(SecretId=replica)["VersionId"] == v2

    # At most one cross-account replica per primary.
    second = replica_sm.create_secret(
        Name=name + "-2", CrossAccountPrimaryARN=primary, KmsKeyId=key["Arn"]
    )["ARN"]
    with pytest.raises(ClientError) as exc:
        primary_sm.associate_cross_account_replica(SecretId=primary, CrossAccountReplicaARN=second)
    assert error_of(exc) == (
        "LimitExceededException",
        "A primary secret can have at most one cross-account replica.",
    )
    # A primary with an associated replica cannot be deleted.
    with pytest.raises(ClientError) as exc:
        primary_sm.delete_secret(SecretId=primary, ForceDeleteWithoutRecovery=True)
    assert error_of(exc)[0] == "InvalidParameterException"

    # Disassociate: the replica stays, Detached, and no longer follows; still a replica.
    out = primary_sm.disassociate_cross_account_replica(
        SecretId=primary, CrossAccountReplicaARN=replica
    )
    assert (out["ARN"], out["CrossAccountReplicaARN"]) == (primary, replica)
    assert cross(primary_sm, primary)[1] == []
    assert cross(replica_sm, replica)[0] == {
        "PrimarySecretARN": primary,
        "ReplicationStatus": "Detached",
    }
    primary_sm.put_secret_value(SecretId=primary, SecretString="v3")
    time.sleep(0.4)
    assert replica_sm.get_secret_value(SecretId=replica)["VersionId"] == v2
    with pytest.raises(ClientError) as exc:
        replica_sm.delete_secret(SecretId=replica)
    assert error_of(exc) == ("InvalidParameterException", REFUSED)

    # StopReplicationToReplica promotes it: standalone, the managed policy gone.
    assert replica_sm.stop_replication_to_replica(SecretId=replica)["ARN"] == replica
    assert cross(replica_sm, replica) == (None, [])
    assert "ResourcePolicy" not in replica_sm.get_resource_policy(SecretId=replica)
    replica_sm.put_secret_value(SecretId=replica, SecretString="own")
    assert replica_sm.get_secret_value(SecretId=replica)["SecretString"] == "own"

    # The second replica, associated then promoted from its side: the primary shows Detached.
    primary_sm.associate_cross_account_replica(SecretId=primary, CrossAccountReplicaARN=second)
    wait_for(lambda: cross(primary_sm, primary)[1][0]["ReplicationStatus"] == "InSync")
    assert replica_sm.get_secret_value(SecretId=second)["SecretString"] == "v3"
    replica_sm.stop_replication_to_replica(SecretId=second)
    assert cross(primary_sm, primary)[1] == [
        {"ReplicaSecretARN": second, "ReplicationStatus": "Detached"}
    ]
    # A promoted replica is the replica account's to delete; the primary then forgets it.
    replica_sm.delete_secret(SecretId=second, ForceDeleteWithoutRecovery=True)
    assert cross(primary_sm, primary)[1] == []
    primary_sm.delete_secret(SecretId=primary, ForceDeleteWithoutRecovery=True)


def test_cross_account_permissions_of_the_primary_account(
    client_factory: ClientFactory,
    unique_name: NameFactory,
    server: ServerProcess,
) -> None:
    """The associating caller's identity policy and the primary's key policy decide too."""
    primary_sm = client_factory("secretsmanager")
    iam = client_factory("iam")
    kms = client_factory("kms")
    a_id = client_factory("sts").get_caller_identity()["Account"]
    b_id, b_creds = new_account(server)
    replica_sm = client_factory("secretsmanager", credentials=b_creds)
    replica_kms = client_factory("kms", credentials=b_creds)
    b_key = replica_kms.create_key(Policy=key_policy(b_id, a_id))["KeyMetadata"]
    # The primary's key policy names the administrator only: it does not delegate to IAM.
    admin_only = json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{a_id}:user/admin"},
                    "Action": "kms:*",
                    "Resource": "*",
                }
            ],
        }
    )
    a_key = kms.create_key(Policy=admin_only, BypassPolicyLockoutSafetyCheck=True)["KeyMetadata"]

    name = unique_name()
    primary = primary_sm.create_secret(Name=name, SecretString="p", KmsKeyId=a_key["Arn"])["ARN"]
    replica = replica_sm.create_secret(
        Name=name, CrossAccountPrimaryARN=primary, KmsKeyId=b_key["Arn"]
    )["ARN"]

    user = unique_name("u")[-60:]
    iam.create_user(UserName=user)
    iam.put_user_policy(
        UserName=user,
        PolicyName="p",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": [
                            "secretsmanager:AssociateCrossAccountReplica",
                            "secretsmanager:AcceptCrossAccountReplication",
                            "secretsmanager:DescribeSecret",
                        ],
                        "Resource": "*",
                    },
                    {"Effect": "Allow", "Action": ["kms:Decrypt", "kms:Encrypt"], "Resource": "*"},
                ],
            }
        ),
    )
    key = iam.create_access_key(UserName=user)["AccessKey"]
    as_user = client_factory(
        "secretsmanager", credentials=Credentials(key["AccessKeyId"], key["SecretAccessKey"])
    )
    # GetSecretValue on the primary is required too.
    with pytest.raises(ClientError) as exc:
        as_user.associate_cross_account_replica(SecretId=primary, CrossAccountReplicaARN=replica)
    code, message = error_of(exc)
    assert code == "AccessDeniedException" and "secretsmanager:GetSecretValue" in message
    iam.put_user_policy(
        UserName=user,
        PolicyName="get",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}
                ],
            }
        ),
    )
    # The user's own kms:Decrypt is not enough while the key policy does not delegate to IAM.
    deadline = time.monotonic() + 10
    while True:
        with pytest.raises(ClientError) as exc:
            as_user.associate_cross_account_replica(
                SecretId=primary, CrossAccountReplicaARN=replica
            )
        if error_of(exc) == ("AccessDeniedException", "Access to KMS is not allowed"):
            break
        assert time.monotonic() < deadline, error_of(exc)
        time.sleep(0.1)
    kms.put_key_policy(
        KeyId=a_key["KeyId"],
        PolicyName="default",
        Policy=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Principal": {"AWS": f"arn:aws:iam::{a_id}:root"},
                        "Action": "kms:*",
                        "Resource": "*",
                    }
                ],
            }
        ),
    )
    # A replication role needs iam:PassRole, which this user lacks.
    role_arn = f"arn:aws:iam::{a_id}:role/replication"
    with pytest.raises(ClientError) as exc:
        as_user.associate_cross_account_replica(
            SecretId=primary, CrossAccountReplicaARN=replica, ReplicationRoleARN=role_arn
        )
    code, message = error_of(exc)
    assert code == "AccessDeniedException" and "iam:PassRole" in message
    as_user.associate_cross_account_replica(SecretId=primary, CrossAccountReplicaARN=replica)
    wait_for(lambda: cross(primary_sm, primary)[1][0]["ReplicationStatus"] == "InSync")
    assert replica_sm.get_secret_value(SecretId=replica)["SecretString"] == "p"
    # The administrator may pass it; the association (repaired, idempotent) shows the role.
    primary_sm.associate_cross_account_replica(
        SecretId=primary, CrossAccountReplicaARN=replica, ReplicationRoleARN=role_arn
    )
    assert cross(primary_sm, primary)[1][0]["ReplicationRoleARN"] == role_arn
    # Disassociating needs its own permission, which this user lacks.
    with pytest.raises(ClientError) as exc:
        as_user.disassociate_cross_account_replica(SecretId=primary, CrossAccountReplicaARN=replica)
    assert error_of(exc)[0] == "AccessDeniedException"


def test_cross_account_replica_with_the_aws_cli(
    aws_cli: AwsCli,
    client_factory: ClientFactory,
    unique_name: NameFactory,
    server: ServerProcess,
    tmp_path: Path,
) -> None:
    """The pinned AWS CLI v1 (1.46.3) vendors botocore 1.43.62, whose model has neither
    CrossAccountPrimaryARN nor the two association operations: boto3 makes those calls, the CLI
    everything it knows on both sides."""
    a_id = client_factory("sts").get_caller_identity()["Account"]
    b_id, b_creds = new_account(server)
    b_file = tmp_path / "b-credentials"
    b_file.write_text(
        f"[default]\naws_access_key_id = {b_creds.access_key_id}\n"
        f"aws_secret_access_key = {b_creds.secret_access_key}\n"
    )
    replica_sm = client_factory("secretsmanager", credentials=b_creds)
    key = client_factory("kms", credentials=b_creds).create_key(Policy=key_policy(b_id, a_id))[
        "KeyMetadata"
    ]
    name = unique_name()
    made = aws_cli("secretsmanager", "create-secret", "--name", name, "--secret-string", "cli")
    assert made.returncode == 0, made.stderr
    primary = made.output["ARN"]
    replica = replica_sm.create_secret(
        Name=name, CrossAccountPrimaryARN=primary, KmsKeyId=key["Arn"]
    )["ARN"]
    client_factory("secretsmanager").associate_cross_account_replica(
        SecretId=name, CrossAccountReplicaARN=replica, ReplicaRestriction="NoRestriction"
    )

    wait_for(lambda: bool(replica_sm.describe_secret(SecretId=replica).get("VersionIdsToStages")))
    got = aws_cli(
        "secretsmanager", "get-secret-value", "--secret-id", replica, credentials_file=b_file
    )
    assert got.returncode == 0 and got.output["SecretString"] == "cli", got.stderr
    refused = aws_cli(
        "secretsmanager",
        "put-secret-value",
        "--secret-id",
        replica,
        "--secret-string",
        "x",
        credentials_file=b_file,
    )
    assert refused.returncode != 0 and "Operation not permitted on a replica secret" in (
        refused.stderr
    )
    blocked = aws_cli("secretsmanager", "delete-secret", "--secret-id", name)
    assert blocked.returncode != 0 and "cross-account replicas" in blocked.stderr
    # Promotion from the replica account, with the CLI: the primary shows Detached.
    done = aws_cli(
        "secretsmanager",
        "stop-replication-to-replica",
        "--secret-id",
        replica,
        credentials_file=b_file,
    )
    assert done.returncode == 0 and done.output["ARN"] == replica, done.stderr
    described = client_factory("secretsmanager").describe_secret(SecretId=name)
    assert described["CrossAccountReplicas"] == [
        {"ReplicaSecretARN": replica, "ReplicationStatus": "Detached"}
    ]
    written = aws_cli(
        "secretsmanager",
        "put-secret-value",
        "--secret-id",
        replica,
        "--secret-string",
        "own",
        credentials_file=b_file,
    )
    assert written.returncode == 0, written.stderr
    deleted = aws_cli(
        "secretsmanager", "delete-secret", "--secret-id", name, "--force-delete-without-recovery"
    )
    assert deleted.returncode == 0, deleted.stderr


def test_malformed_cross_account_create_is_a_client_error(
    sm: Any, unique_name: NameFactory
) -> None:
    """Found by the generated-requests test: tags without Key/Value (optional in the model) and
    a primary ARN that is no ARN are the caller's mistakes, never a 500."""
    with pytest.raises(ClientError) as exc:
        sm.create_secret(
            Name=unique_name(), CrossAccountPrimaryARN="00000000000000000000", Tags=[{}]
        )
    assert exc.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
