"""Answers where secretsd and moto differ, each checked against AWS's own documentation or a
recorded AWS answer (docs/compatibility.md, "Where secretsd differs from moto")."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError

from support.factories import AwsCli

NOT_FOUND = "Secrets Manager can't find the specified secret."


def error_of(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str, int]:
    err = exc.value.response
    return err["Error"]["Code"], err["Error"]["Message"], err["ResponseMetadata"]["HTTPStatusCode"]


def test_partial_arn_ending_like_a_suffix_is_read_as_a_full_arn(sm: Any, unique_name: Any) -> None:
    # AWS: "Do not end your secret name with a hyphen followed by six characters": such a
    # partial ARN is taken for a full one, and AWS was recorded answering ResourceNotFound.
    # moto finds the secret. `test-secret` ends in "-secret", six characters.
    prefix = unique_name()
    suffix_like = f"{prefix}/test-secret"
    other = f"{prefix}/test-secrets"
    arns = {n: sm.create_secret(Name=n, SecretString="v")["ARN"] for n in (suffix_like, other)}
    with pytest.raises(ClientError) as exc:
        sm.get_secret_value(SecretId=arns[suffix_like][: -len("-XXXXXX")])
    assert error_of(exc) == ("ResourceNotFoundException", NOT_FOUND, 400)
    assert sm.get_secret_value(SecretId=arns[suffix_like])["SecretString"] == "v"
    assert sm.get_secret_value(SecretId=suffix_like)["SecretString"] == "v"
    # "-secrets" is seven characters: the partial ARN works.
    assert sm.get_secret_value(SecretId=arns[other][: -len("-XXXXXX")])["SecretString"] == "v"


def test_first_version_gets_awscurrent_whatever_labels_were_asked(
    sm: Any, unique_name: Any, aws_cli: AwsCli
) -> None:
    # PutSecretValue reference: "If this operation creates the first version for the secret,
    # then Secrets Manager automatically attaches the staging label AWSCURRENT to it."
    name = unique_name()
    sm.create_secret(Name=name)
    put = sm.put_secret_value(SecretId=name, SecretString="p", VersionStages=["AWSPENDING"])
    assert put["VersionStages"] == ["AWSCURRENT", "AWSPENDING"]
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "p"
    pending = sm.get_secret_value(SecretId=name, VersionStage="AWSPENDING")
    assert pending["VersionId"] == put["VersionId"]
    # Later versions get only what was asked: AWSCURRENT stays put.
    second = sm.put_secret_value(SecretId=name, SecretString="q", VersionStages=["AWSPENDING"])
    assert second["VersionStages"] == ["AWSPENDING"]
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "p"

    cli_name = unique_name("cli")
    assert aws_cli("secretsmanager", "create-secret", "--name", cli_name).returncode == 0
    rc, out, err = aws_cli(
        "secretsmanager",
        "put-secret-value",
        "--secret-id",
        cli_name,
        "--secret-string",
        "c",
        "--version-stages",
        "CUSTOM",
    )
    assert rc == 0, err
    assert out["VersionStages"] == ["AWSCURRENT", "CUSTOM"]


def test_batch_get_reports_a_secret_without_value_in_errors(sm: Any, unique_name: Any) -> None:
    # Per-secret failures go into Errors (model); the error is GetSecretValue's for the same
    # secret, not a silent omission.
    empty = unique_name("empty")
    sm.create_secret(Name=empty)
    full = unique_name("full")
    sm.create_secret(Name=full, SecretString="v")
    out = sm.batch_get_secret_value(SecretIdList=[empty, full])
    assert [v["Name"] for v in out["SecretValues"]] == [full]
    assert out["Errors"] == [
        {
            "SecretId": empty,
            "ErrorCode": "ResourceNotFoundException",
            "Message": "Secrets Manager can't find the specified secret value for staging label:"
            " AWSCURRENT",
        }
    ]


def test_put_secret_value_without_a_value_is_an_invalid_request(
    sm: Any, unique_name: Any, aws_cli: AwsCli
) -> None:
    # AWS answers InvalidRequestException (quoted by Terraform users); moto answers
    # InvalidParameterException.
    name = unique_name()
    sm.create_secret(Name=name, SecretString="v")
    with pytest.raises(ClientError) as exc:
        sm.put_secret_value(SecretId=name)
    assert error_of(exc) == (
        "InvalidRequestException",
        "You must provide either SecretString or SecretBinary.",
        400,
    )
    rc, _, err = aws_cli("secretsmanager", "put-secret-value", "--secret-id", name)
    assert rc != 0 and "InvalidRequestException" in err
    assert len(sm.list_secret_version_ids(SecretId=name)["Versions"]) == 1


def test_resource_policy_calls_on_an_unknown_secret(sm: Any, unique_name: Any) -> None:
    # The secret is looked up (and the call authorized) before the document is read.
    missing = unique_name("missing")
    for call in (
        lambda: sm.get_resource_policy(SecretId=missing),
        lambda: sm.put_resource_policy(SecretId=missing, ResourcePolicy="{not json"),
        lambda: sm.put_resource_policy(
            SecretId=missing, ResourcePolicy='{"Version":"2012-10-17","Statement":[]}'
        ),
        lambda: sm.delete_resource_policy(SecretId=missing),
    ):
        with pytest.raises(ClientError) as exc:
            call()
        assert error_of(exc) == ("ResourceNotFoundException", NOT_FOUND, 400)
    name = unique_name()
    sm.create_secret(Name=name, SecretString="v")
    with pytest.raises(ClientError) as exc:
        sm.put_resource_policy(SecretId=name, ResourcePolicy="{not json")
    assert error_of(exc)[0] == "MalformedPolicyDocumentException"
    assert "ResourcePolicy" not in sm.get_resource_policy(SecretId=name)
