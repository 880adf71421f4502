"""BlockPublicPolicy and ValidateResourcePolicy through boto3 and the AWS CLI.

PutResourcePolicy with BlockPublicPolicy refuses policies that grant broad access
(PublicPolicyException, "The BlockPublicPolicy parameter is set to true, and the resource policy
did not prevent broad access to the secret.", botocore's model documentation of the exception);
ValidateResourcePolicy reports the same analysis as ValidationErrors. The analysis itself is
unit-tested case by case in tests/unit/test_policy_analysis.py; these tests pin the wire.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError

ORG = "o-a1b2c3d4e5"
PUBLIC_MESSAGE = (
    "The BlockPublicPolicy parameter is set to true, and the resource policy did not prevent"
    " broad access to the secret."
)


def _policy(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def _allow(principal: Any, **extra: Any) -> dict[str, Any]:
    return {
        "Effect": "Allow",
        "Principal": principal,
        "Action": "secretsmanager:GetSecretValue",
        "Resource": "*",
        **extra,
    }


def _error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str, int]:
    err = exc.value.response
    return err["Error"]["Code"], err["Error"]["Message"], err["ResponseMetadata"]["HTTPStatusCode"]


PUBLIC_POLICIES = {
    "star": _policy(_allow("*")),
    "aws-star": _policy(_allow({"AWS": "*"})),
    "any-account-root": _policy(_allow({"AWS": "arn:aws:iam::*:root"})),
    "not-principal": _policy(
        {
            "Effect": "Allow",
            "NotPrincipal": {"AWS": "arn:aws:iam::111122223333:root"},
            "Action": "secretsmanager:*",
            "Resource": "*",
        }
    ),
    "if-exists": _policy(
        _allow("*", Condition={"StringEqualsIfExists": {"aws:PrincipalOrgID": ORG}})
    ),
    "wildcard-account": _policy(
        _allow("*", Condition={"StringLike": {"aws:PrincipalAccount": "*"}})
    ),
    "secure-transport-only": _policy(
        _allow("*", Condition={"Bool": {"aws:SecureTransport": "true"}})
    ),
}

RESTRICTED_POLICIES = {
    "account": _policy(_allow({"AWS": "arn:aws:iam::111122223333:root"})),
    "org": _policy(_allow("*", Condition={"StringEquals": {"aws:PrincipalOrgID": ORG}})),
    "vpce": _policy(_allow("*", Condition={"StringEquals": {"aws:SourceVpce": "vpce-1a2b3c4d"}})),
    "cidr": _policy(_allow("*", Condition={"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}})),
    "deny-perimeter": _policy(
        _allow("*"),
        {
            "Effect": "Deny",
            "Principal": "*",
            # Not secretsmanager:*: the test's own caller is outside the organization.
            "Action": "secretsmanager:GetSecretValue",
            "Resource": "*",
            "Condition": {"StringNotEquals": {"aws:PrincipalOrgID": ORG}},
        },
    ),
    "other-service": _policy(
        {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "*"}
    ),
}


@pytest.mark.parametrize("text", list(PUBLIC_POLICIES.values()), ids=list(PUBLIC_POLICIES))
def test_block_public_policy_refuses_broad_access(sm: Any, unique_name: Any, text: str) -> None:
    name = unique_name()
    sm.create_secret(Name=name, SecretString="v")
    with pytest.raises(ClientError) as exc:
        sm.put_resource_policy(SecretId=name, ResourcePolicy=text, BlockPublicPolicy=True)
    assert _error(exc) == ("PublicPolicyException", PUBLIC_MESSAGE, 400)
    assert "ResourcePolicy" not in sm.get_resource_policy(SecretId=name)
    validated = sm.validate_resource_policy(ResourcePolicy=text)
    assert validated["PolicyValidationPassed"] is False
    assert [e["CheckName"] for e in validated["ValidationErrors"]] == ["BLOCK_PUBLIC_POLICY"]
    # Without the flag AWS stores the policy: public policies are not blocked by default.
    sm.put_resource_policy(SecretId=name, ResourcePolicy=text, BlockPublicPolicy=False)
    assert json.loads(sm.get_resource_policy(SecretId=name)["ResourcePolicy"]) == json.loads(text)


@pytest.mark.parametrize("text", list(RESTRICTED_POLICIES.values()), ids=list(RESTRICTED_POLICIES))
def test_block_public_policy_accepts_restricted_access(
    sm: Any, unique_name: Any, text: str
) -> None:
    name = unique_name()
    sm.create_secret(Name=name, SecretString="v")
    sm.put_resource_policy(SecretId=name, ResourcePolicy=text, BlockPublicPolicy=True)
    assert json.loads(sm.get_resource_policy(SecretId=name)["ResourcePolicy"]) == json.loads(text)
    validated = sm.validate_resource_policy(SecretId=name, ResourcePolicy=text)
    assert validated["PolicyValidationPassed"] is True
    assert validated["ValidationErrors"] == []


def test_validate_reports_unknown_actions_and_public_access(sm: Any) -> None:
    text = _policy(
        {
            "Effect": "Allow",
            "Principal": "*",
            "Action": ["secretsmanager:GetSecretValues", "secretsmanager:DescribeSecret"],
            "Resource": "*",
        }
    )
    validated = sm.validate_resource_policy(ResourcePolicy=text)
    assert validated["PolicyValidationPassed"] is False
    assert validated["ValidationErrors"] == [
        {
            "CheckName": "INVALID_ACTION",
            "ErrorMessage": "The action secretsmanager:GetSecretValues does not exist.",
        },
        {
            "CheckName": "BLOCK_PUBLIC_POLICY",
            "ErrorMessage": "The resource policy grants broad access to the secret.",
        },
    ]


def test_validate_refuses_syntax_errors_as_malformed(sm: Any) -> None:
    for text in ("{not json", _policy({"Effect": "Allow", "Action": "*", "Resource": "*"})):
        with pytest.raises(ClientError) as exc:
            sm.validate_resource_policy(ResourcePolicy=text)
        code, _, status = _error(exc)
        assert (code, status) == ("MalformedPolicyDocumentException", 400)


def test_policy_longer_than_20480_characters_is_refused(sm: Any, unique_name: Any) -> None:
    name = unique_name()
    sm.create_secret(Name=name, SecretString="v")
    base = _policy(_allow({"AWS": "arn:aws:iam::111122223333:root"}, Sid="S"))
    at_limit = base.replace('"Sid": "S"', '"Sid": "' + "S" * (20480 - len(base) + 1) + '"')
    assert len(at_limit) == 20480
    sm.put_resource_policy(SecretId=name, ResourcePolicy=at_limit)
    assert sm.validate_resource_policy(ResourcePolicy=at_limit)["PolicyValidationPassed"] is True
    too_long = at_limit.replace('"Sid": "', '"Sid": "S', 1)
    assert len(too_long) == 20481
    for call in (
        lambda: sm.put_resource_policy(SecretId=name, ResourcePolicy=too_long),
        lambda: sm.validate_resource_policy(ResourcePolicy=too_long),
    ):
        with pytest.raises(ClientError) as exc:
            call()
        code, message, status = _error(exc)
        assert (code, status) == ("ValidationException", 400)
        assert message.startswith("1 validation error detected: Value ")
        assert message.endswith(
            " at 'resourcePolicy' failed to satisfy constraint:"
            " Member must have length less than or equal to 20480"
        )


def test_cli_block_public_policy_and_validate(aws_cli: Any, unique_name: Any) -> None:
    name = unique_name()
    made = aws_cli("secretsmanager", "create-secret", "--name", name, "--secret-string", "v")
    assert made.returncode == 0, made.stderr
    refused = aws_cli(
        "secretsmanager", "put-resource-policy", "--secret-id", name,
        "--resource-policy", PUBLIC_POLICIES["star"], "--block-public-policy",
    )  # fmt: skip
    assert refused.returncode == 255, refused.stderr  # AWS CLI v1: 255 for a service error
    assert "(PublicPolicyException)" in refused.stderr
    assert PUBLIC_MESSAGE in refused.stderr
    stored = aws_cli(
        "secretsmanager", "put-resource-policy", "--secret-id", name,
        "--resource-policy", RESTRICTED_POLICIES["org"], "--block-public-policy",
    )  # fmt: skip
    assert stored.returncode == 0, stored.stderr
    assert stored.output["Name"] == name
    validated = aws_cli(
        "secretsmanager", "validate-resource-policy", "--resource-policy", PUBLIC_POLICIES["star"]
    )
    assert validated.returncode == 0, validated.stderr
    assert validated.output == {
        "PolicyValidationPassed": False,
        "ValidationErrors": [
            {
                "CheckName": "BLOCK_PUBLIC_POLICY",
                "ErrorMessage": "The resource policy grants broad access to the secret.",
            }
        ],
    }
    passed = aws_cli(
        "secretsmanager",
        "validate-resource-policy",
        "--resource-policy",
        RESTRICTED_POLICIES["org"],
    )
    assert passed.output == {"PolicyValidationPassed": True, "ValidationErrors": []}
