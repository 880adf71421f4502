"""The action catalogue: AWS's action names for Secrets Manager, KMS, IAM and STS."""

from __future__ import annotations

import botocore.session
import pytest
from hypothesis import given
from hypothesis import strategies as st

from secretsd.policy.catalog import (
    OWN_SERVICES,
    SERVICES,
    catalogued_service,
    known_action,
    secretsmanager_action,
    secretsmanager_actions,
    service_actions,
)

# Where AWS's permission differs from the API operation's name.
_PERMISSION_FOR = {
    ("kms", "ReEncrypt"): ("ReEncryptFrom", "ReEncryptTo"),
    # Lambda authorizes Invoke (and its streaming form) as lambda:InvokeFunction.
    ("lambda", "Invoke"): ("InvokeFunction",),
    ("lambda", "InvokeWithResponseStream"): ("InvokeFunction",),
}


@pytest.mark.parametrize(
    "action",
    [
        "*",
        "secretsmanager:*",
        "secretsmanager:GetSecretValue",
        "SECRETSMANAGER:getsecretvalue",
        "secretsmanager:Get*",
        "secretsmanager:?etSecretValue",
        "secretsmanager:*Secret",
        "kms:Decrypt",
        "kms:ReEncrypt*",
        "kms:GenerateDataKey*",
        "iam:PassRole",
        "iam:CreateServiceLinkedRole",
        "iam:Get*",
        "sts:AssumeRole",
        "sts:TagSession",
        "sts:SetSourceIdentity",
        "*:GetSecretValue",
    ],
)
def test_known(action: str) -> None:
    assert known_action(action)


@pytest.mark.parametrize(
    "action",
    [
        "secretsmanager:GetSecret",
        "secretsmanager:Fly*",
        "secretsmanager:GetSecretValues",
        "kms:ReEncrypt",  # the API is ReEncrypt; the permissions are ReEncryptFrom/ReEncryptTo
        "iam:AssumeRole",
        "sts:PassRole",
        "s3:GetObject",  # not a catalogued service: the catalogue cannot vouch for it
        "secretsmanager:",
        "GetSecretValue",
        "",
        "*:NoSuchActionAnywhere",
    ],
)
def test_unknown(action: str) -> None:
    assert not known_action(action)


def test_catalogued_services() -> None:
    assert SERVICES == ("secretsmanager", "kms", "iam", "sts", "lambda", "logs", "cloudtrail")
    assert all(catalogued_service(s) for s in SERVICES)
    assert catalogued_service("SecretsManager")
    assert not catalogued_service("s3")
    assert service_actions("s3") == frozenset()
    # secretsd's own action for peer deployments; secretsmanager:* does not cover it.
    assert OWN_SERVICES == ("secretsd",)
    assert known_action("secretsd:ReplicateFromPeer")
    assert not known_action("secretsmanager:ReplicateFromPeer")


@pytest.mark.parametrize(("service", "prefix"), [(s, s) for s in SERVICES])
def test_every_api_operation_of_the_pinned_model_is_an_action(service: str, prefix: str) -> None:
    model = botocore.session.get_session().get_service_model(service)
    actions = service_actions(prefix)
    for operation in model.operation_names:
        names = _PERMISSION_FOR.get((prefix, operation), (operation,))
        for name in names:
            assert name.lower() in actions, f"{prefix}:{name}"


def test_sizes_are_plausible() -> None:
    # The reference lists far more IAM actions than STS ones; a truncated file would fail here.
    assert len(service_actions("iam")) > 150
    assert len(service_actions("kms")) > 50
    assert len(service_actions("sts")) >= 15
    assert len(service_actions("secretsmanager")) >= 23
    assert "lookupevents" in service_actions("cloudtrail")


def test_secret_actions_have_the_secret_resource_type() -> None:
    info = secretsmanager_action("secretsmanager:GetSecretValue")
    assert info is not None
    assert info.name == "GetSecretValue" and info.resource_type == "Secret"
    assert {"secretsmanager:VersionId", "secretsmanager:VersionStage"} <= info.condition_keys
    assert "aws:ResourceTag/${TagKey}" in info.condition_keys
    assert secretsmanager_action("getsecretvalue") == info


@pytest.mark.parametrize("name", ["ListSecrets", "GetRandomPassword", "BatchGetSecretValue"])
def test_account_level_actions_take_star(name: str) -> None:
    info = secretsmanager_action(name)
    assert info is not None and info.resource_type is None
    assert info.condition_keys == frozenset()


def test_action_specific_condition_keys() -> None:
    put = secretsmanager_action("PutResourcePolicy")
    delete = secretsmanager_action("DeleteSecret")
    create = secretsmanager_action("CreateSecret")
    assert put is not None and delete is not None and create is not None
    assert "secretsmanager:BlockPublicPolicy" in put.condition_keys
    assert "secretsmanager:BlockPublicPolicy" not in delete.condition_keys
    assert {
        "secretsmanager:RecoveryWindowInDays",
        "secretsmanager:ForceDeleteWithoutRecovery",
    } <= delete.condition_keys
    assert {"secretsmanager:Name", "secretsmanager:KmsKeyArn"} <= create.condition_keys
    # CreateSecret names no existing secret, so SecretId is not among its keys.
    assert "secretsmanager:SecretId" not in create.condition_keys


def test_secretsmanager_lookup_rejects_other_prefixes() -> None:
    assert secretsmanager_action("kms:GetSecretValue") is None
    assert secretsmanager_action("NoSuchAction") is None


def test_secretsmanager_actions_match_service_actions() -> None:
    names = {a.name.lower() for a in secretsmanager_actions()}
    assert names == service_actions("secretsmanager")


@given(st.sampled_from(sorted(service_actions("secretsmanager"))), st.integers(1, 10))
def test_any_prefix_of_a_real_action_with_star_is_known(name: str, cut: int) -> None:
    assert known_action(f"secretsmanager:{name[:cut]}*")
    assert known_action(f"SecretsManager:{name.upper()}")


@given(st.text(alphabet="qxzjQXZJ", min_size=3, max_size=12))
def test_names_no_service_uses_are_unknown(name: str) -> None:
    for prefix in SERVICES:
        assert not known_action(f"{prefix}:{name}")
