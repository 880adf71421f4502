"""The KMS JSON API on the secretsd endpoint, and customer managed keys for secrets."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return str(exc.value.response["Error"]["Code"])


def test_cli_key_alias_secret_disable_enable(aws_cli: Any, sm: Any, unique_name: Any) -> None:
    created = aws_cli("kms", "create-key", "--description", "app key")
    assert created.returncode == 0, created.stderr
    meta = created.output["KeyMetadata"]
    assert meta["KeyState"] == "Enabled" and meta["KeyManager"] == "CUSTOMER"
    assert meta["KeySpec"] == "SYMMETRIC_DEFAULT" and meta["KeyUsage"] == "ENCRYPT_DECRYPT"
    alias = f"alias/{unique_name()}"
    made = aws_cli("kms", "create-alias", "--alias-name", alias, "--target-key-id", meta["KeyId"])
    assert made.returncode == 0, made.stderr
    name = unique_name("secret")
    secret = aws_cli(
        "secretsmanager", "create-secret", "--name", name, "--secret-string", "s3cret",
        "--kms-key-id", alias,
    )  # fmt: skip
    assert secret.returncode == 0, secret.stderr
    assert sm.describe_secret(SecretId=name)["KmsKeyId"] == meta["Arn"]
    versions = sm.list_secret_version_ids(SecretId=name)["Versions"]
    assert versions[0]["KmsKeyIds"] == [meta["Arn"]]
    assert aws_cli("kms", "disable-key", "--key-id", meta["KeyId"]).returncode == 0
    with pytest.raises(ClientError) as exc:
        sm.get_secret_value(SecretId=name)
    assert _code(exc) == "DecryptionFailure"
    assert f"The KMS key {meta['Arn']} is disabled." in exc.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as exc:
        sm.put_secret_value(SecretId=name, SecretString="new")
    assert _code(exc) == "EncryptionFailure"
    assert aws_cli("kms", "enable-key", "--key-id", meta["KeyId"]).returncode == 0
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "s3cret"


def test_default_key_secret_has_no_kms_key_id(sm: Any, unique_name: Any) -> None:
    name = unique_name()
    sm.create_secret(Name=name, SecretString="x")
    assert "KmsKeyId" not in sm.describe_secret(SecretId=name)
    versions = sm.list_secret_version_ids(SecretId=name)["Versions"]
    assert versions[0]["KmsKeyIds"] == ["DefaultEncryptionKey"]


def test_encrypt_decrypt_context_rotation(client_factory: Any) -> None:
    kms = client_factory("kms")
    key = kms.create_key()["KeyMetadata"]
    ctx = {"purpose": "test"}
    blob = kms.encrypt(KeyId=key["KeyId"], Plaintext=b"hello", EncryptionContext=ctx)
    assert blob["KeyId"] == key["Arn"]
    out = kms.decrypt(CiphertextBlob=blob["CiphertextBlob"], EncryptionContext=ctx)
    assert out["Plaintext"] == b"hello" and out["KeyId"] == key["Arn"]
    with pytest.raises(ClientError) as exc:
        kms.decrypt(CiphertextBlob=blob["CiphertextBlob"], EncryptionContext={"purpose": "x"})
    assert _code(exc) == "InvalidCiphertextException"
    kms.rotate_key_on_demand(KeyId=key["KeyId"])
    newer = kms.encrypt(KeyId=key["Arn"], Plaintext=b"later")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=newer)["Plaintext"] == b"later"
    old = kms.decrypt(CiphertextBlob=blob["CiphertextBlob"], EncryptionContext=ctx)
    assert old["Plaintext"] == b"hello"
    other = kms.create_key()["KeyMetadata"]
    moved = kms.re_encrypt(
        CiphertextBlob=blob["CiphertextBlob"],
        SourceEncryptionContext=ctx,
        DestinationKeyId=other["KeyId"],
    )
    assert moved["SourceKeyId"] == key["Arn"] and moved["KeyId"] == other["Arn"]
    assert kms.decrypt(CiphertextBlob=moved["CiphertextBlob"])["Plaintext"] == b"hello"
    data = kms.generate_data_key(KeyId=key["KeyId"], KeySpec="AES_256")
    assert len(data["Plaintext"]) == 32
    assert kms.decrypt(CiphertextBlob=data["CiphertextBlob"])["Plaintext"] == data["Plaintext"]
    assert len(kms.generate_random(NumberOfBytes=17)["Plaintext"]) == 17
    kms.enable_key_rotation(KeyId=key["KeyId"])
    assert kms.get_key_rotation_status(KeyId=key["KeyId"])["KeyRotationEnabled"] is True


def test_key_states_aliases_and_errors(client_factory: Any, unique_name: Any) -> None:
    kms = client_factory("kms")
    key = kms.create_key(Tags=[{"TagKey": "team", "TagValue": "a"}])["KeyMetadata"]
    arn = key["Arn"]
    with pytest.raises(ClientError) as exc:
        kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")
    assert _code(exc) == "UnsupportedOperationException"
    with pytest.raises(ClientError) as exc:
        kms.create_alias(AliasName="alias/aws/mine", TargetKeyId=key["KeyId"])
    assert _code(exc) == "NotAuthorizedException"
    alias = f"alias/{unique_name()}"
    kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    with pytest.raises(ClientError) as exc:
        kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    assert _code(exc) == "AlreadyExistsException"
    listed = kms.list_aliases(KeyId=key["KeyId"])["Aliases"]
    assert [a["AliasName"] for a in listed] == [alias]
    assert kms.describe_key(KeyId=alias)["KeyMetadata"]["Arn"] == arn
    assert kms.list_resource_tags(KeyId=arn)["Tags"] == [{"TagKey": "team", "TagValue": "a"}]
    policy = kms.get_key_policy(KeyId=arn, PolicyName="default")["Policy"]
    assert '"Action" : "kms:*"' in policy
    kms.disable_key(KeyId=arn)
    with pytest.raises(ClientError) as exc:
        kms.encrypt(KeyId=arn, Plaintext=b"x")
    assert _code(exc) == "DisabledException"
    assert exc.value.response["Error"]["Message"] == f"{arn} is disabled."
    with pytest.raises(ClientError) as exc:
        kms.schedule_key_deletion(KeyId=arn, PendingWindowInDays=6)
    assert _code(exc) == "ValidationException"
    scheduled = kms.schedule_key_deletion(KeyId=arn, PendingWindowInDays=7)
    assert scheduled["KeyState"] == "PendingDeletion"
    described = kms.describe_key(KeyId=arn)["KeyMetadata"]
    assert described["KeyState"] == "PendingDeletion" and "DeletionDate" in described
    with pytest.raises(ClientError) as exc:
        kms.enable_key(KeyId=arn)
    assert _code(exc) == "KMSInvalidStateException"
    assert exc.value.response["Error"]["Message"] == f"{arn} is pending deletion."
    assert kms.cancel_key_deletion(KeyId=arn)["KeyId"] == arn
    assert kms.describe_key(KeyId=arn)["KeyMetadata"]["KeyState"] == "Disabled"
    with pytest.raises(ClientError) as exc:
        kms.describe_key(KeyId="00000000-0000-0000-0000-000000000000")
    assert _code(exc) == "NotFoundException"
    kms.delete_alias(AliasName=alias)
    assert kms.list_aliases(KeyId=key["KeyId"])["Aliases"] == []
    assert any(k["KeyArn"] == arn for k in kms.list_keys()["Keys"])


def test_aws_managed_key_metadata_readable_directly(client_factory: Any, sm: Any) -> None:
    """AWS's policy for `aws/secretsmanager` lets the account's administrators describe the key
    and read its policy directly ("Allow direct access to key metadata to the account"), while
    using it for cryptography stays reserved to calls made through Secrets Manager."""
    kms = client_factory("kms")
    meta = kms.describe_key(KeyId="alias/aws/secretsmanager")["KeyMetadata"]
    assert meta["KeyManager"] == "AWS" and meta["KeyState"] == "Enabled"
    assert (
        meta["Description"]
        == "Default key that protects my Secrets Manager data when no other key is defined"
    )
    listed = {k["KeyId"] for k in kms.list_keys()["Keys"]}
    assert meta["KeyId"] in listed
    # By key id too, as the console's key list does for every key it lists.
    assert kms.describe_key(KeyId=meta["KeyId"])["KeyMetadata"]["Arn"] == meta["Arn"]
    policy = json.loads(kms.get_key_policy(KeyId=meta["KeyId"], PolicyName="default")["Policy"])
    account = meta["AWSAccountId"]
    direct = [s for s in policy["Statement"] if s["Sid"].startswith("Allow direct access")]
    assert direct == [
        {
            "Sid": "Allow direct access to key metadata to the account",
            "Effect": "Allow",
            "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
            "Action": ["kms:Describe*", "kms:Get*", "kms:List*", "kms:RevokeGrant"],
            "Resource": "*",
        }
    ]
    assert kms.list_key_policies(KeyId=meta["KeyId"])["PolicyNames"] == ["default"]
    for call in (
        lambda: kms.encrypt(KeyId="alias/aws/secretsmanager", Plaintext=b"x"),
        lambda: kms.generate_data_key(KeyId=meta["KeyId"], KeySpec="AES_256"),
    ):
        with pytest.raises(ClientError) as exc:
            call()
        assert _code(exc) == "AccessDeniedException"
    # Secrets Manager still uses it on the caller's behalf.
    name = f"managed-key-{meta['KeyId'][:8]}"
    sm.create_secret(Name=name, SecretString="via the service")
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "via the service"
