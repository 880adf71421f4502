"""AWS managed policies: real documents that the policy engine parses and evaluates."""

from __future__ import annotations

import json
import re

import pytest

from secretsd.policy import RequestContext, evaluate, parse_policy
from secretsd.policy.managed import aws_managed_policies, aws_managed_policy

ACCOUNT = "111122223333"
USER = f"arn:aws:iam::{ACCOUNT}:user/alice"
SECRET = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:prod/db-AbCdEf"
NAMES = ("AdministratorAccess", "IAMFullAccess", "ReadOnlyAccess", "SecretsManagerReadWrite")


def _allowed(name: str, action: str, resource: str = "*") -> bool:
    managed = aws_managed_policy(f"arn:aws:iam::aws:policy/{name}")
    assert managed is not None
    policy = parse_policy(managed.document, kind="identity", name=managed.arn)
    request = RequestContext(
        action=action, principal_arn=USER, principal_account=ACCOUNT, resource=resource
    )
    return evaluate(request, [policy]).allowed


def test_the_four_policies_in_name_order() -> None:
    assert tuple(p.name for p in aws_managed_policies()) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_metadata_has_aws_shapes(name: str) -> None:
    managed = aws_managed_policy(f"arn:aws:iam::aws:policy/{name}")
    assert managed is not None
    assert managed.name == name and managed.path == "/"
    assert managed.arn == f"arn:aws:iam::aws:policy/{name}"
    # IAM unique ids: "ANPA" for managed policies, 21 characters of [A-Z2-7].
    assert re.fullmatch(r"ANPA[A-Z2-7]{17}", managed.policy_id)
    assert re.fullmatch(r"v\d+", managed.default_version_id)
    assert managed.create_date.tzinfo is not None
    assert managed.create_date <= managed.update_date
    assert managed.description


@pytest.mark.parametrize("name", NAMES)
def test_each_parses_as_an_identity_policy(name: str) -> None:
    managed = aws_managed_policy(f"arn:aws:iam::aws:policy/{name}")
    assert managed is not None
    policy = parse_policy(managed.document, kind="identity")
    assert policy.version == "2012-10-17"
    assert policy.statements
    assert all(s.principal is None for s in policy.statements)
    assert json.loads(managed.document)["Version"] == "2012-10-17"


def test_unknown_or_differently_spelt_arns_are_none() -> None:
    assert aws_managed_policy("arn:aws:iam::aws:policy/NoSuchPolicy") is None
    assert aws_managed_policy("arn:aws:iam::aws:policy/administratoraccess") is None
    assert aws_managed_policy(f"arn:aws:iam::{ACCOUNT}:policy/AdministratorAccess") is None


def test_known_ids_and_versions() -> None:
    admin = aws_managed_policy("arn:aws:iam::aws:policy/AdministratorAccess")
    readonly = aws_managed_policy("arn:aws:iam::aws:policy/ReadOnlyAccess")
    assert admin is not None and readonly is not None
    assert (admin.policy_id, admin.default_version_id) == ("ANPAIWMBCKSKIEE64ZLYK", "v1")
    assert readonly.policy_id == "ANPAILL3HVNFSB6DCOWYQ"


def test_secrets_manager_read_write_allows_every_secret_action() -> None:
    for action in ("GetSecretValue", "PutSecretValue", "DeleteSecret", "PutResourcePolicy"):
        assert _allowed("SecretsManagerReadWrite", f"secretsmanager:{action}", SECRET)
    assert _allowed("SecretsManagerReadWrite", "secretsmanager:ListSecrets")
    assert _allowed("SecretsManagerReadWrite", "kms:DescribeKey")


def test_secrets_manager_read_write_grants_no_iam_and_no_decrypt() -> None:
    assert not _allowed("SecretsManagerReadWrite", "iam:CreateRole")
    assert not _allowed("SecretsManagerReadWrite", "kms:Decrypt")
    assert not _allowed("SecretsManagerReadWrite", "sts:AssumeRole")


def test_administrator_access_allows_anything() -> None:
    assert _allowed("AdministratorAccess", "secretsmanager:GetSecretValue", SECRET)
    assert _allowed("AdministratorAccess", "iam:DeleteRole", f"arn:aws:iam::{ACCOUNT}:role/r")


def test_read_only_access_reads_but_never_reveals_or_writes() -> None:
    assert _allowed("ReadOnlyAccess", "secretsmanager:DescribeSecret", SECRET)
    assert _allowed("ReadOnlyAccess", "secretsmanager:ListSecretVersionIds", SECRET)
    assert _allowed("ReadOnlyAccess", "secretsmanager:GetResourcePolicy", SECRET)
    assert _allowed("ReadOnlyAccess", "kms:GetKeyPolicy")
    assert _allowed("ReadOnlyAccess", "iam:ListRoles")
    assert _allowed("ReadOnlyAccess", "sts:GetCallerIdentity")
    assert not _allowed("ReadOnlyAccess", "secretsmanager:GetSecretValue", SECRET)
    assert not _allowed("ReadOnlyAccess", "secretsmanager:PutSecretValue", SECRET)
    assert not _allowed("ReadOnlyAccess", "kms:Decrypt")
    assert not _allowed("ReadOnlyAccess", "sts:AssumeRole")


def test_iam_full_access_is_iam_only() -> None:
    assert _allowed("IAMFullAccess", "iam:CreateUser")
    assert _allowed("IAMFullAccess", "organizations:DescribeOrganization")
    assert not _allowed("IAMFullAccess", "secretsmanager:GetSecretValue", SECRET)
