"""Parsing policy documents: accepted shapes and the errors for malformed ones."""

from __future__ import annotations

import json
from typing import Any

import pytest

from secretsd.kms.policies import key_policy
from secretsd.policy import PolicySyntaxError, parse_policy

ALLOW: dict[str, Any] = {
    "Effect": "Allow",
    "Action": "secretsmanager:GetSecretValue",
    "Resource": "*",
}


def test_statement_object_or_list_and_strings_or_lists() -> None:
    one = parse_policy(json.dumps({"Version": "2012-10-17", "Statement": ALLOW}))
    many = parse_policy(
        {"Version": "2012-10-17", "Id": "x", "Statement": [ALLOW, {**ALLOW, "Sid": "B"}]}
    )
    assert len(one.statements) == 1
    assert one.statements[0].actions == ("secretsmanager:GetSecretValue",)
    assert many.id == "x" and many.statements[1].sid == "B"
    assert one.variables_enabled
    assert not parse_policy({"Version": "2008-10-17", "Statement": ALLOW}).variables_enabled


def test_principals_expand_account_ids() -> None:
    policy = parse_policy(
        {
            "Version": "2012-10-17",
            "Statement": {
                **ALLOW,
                "Principal": {
                    "AWS": ["111122223333", "arn:aws:iam::444455556666:role/R"],
                    "Service": "lambda.amazonaws.com",
                },
            },
        },
        kind="resource",
    )
    principal = policy.statements[0].principal
    assert principal is not None
    assert principal.aws == {"arn:aws:iam::111122223333:root", "arn:aws:iam::444455556666:role/R"}
    assert principal.service == {"lambda.amazonaws.com"}
    star = parse_policy({"Statement": {**ALLOW, "Principal": {"AWS": "*"}}}, kind="resource")
    assert star.statements[0].principal is not None and star.statements[0].principal.wildcard


@pytest.mark.parametrize(
    ("document", "kind", "message"),
    [
        ("{not json", "identity", "Syntax errors in policy."),
        ("[]", "identity", "Syntax errors in policy."),
        ({"Version": "2012-10-17"}, "identity", "Missing required field Statement"),
        ({"Statement": []}, "identity", "Missing required field Statement"),
        (
            {"Version": "2020-01-01", "Statement": ALLOW},
            "identity",
            "The policy failed legacy parsing",
        ),
        (
            {"Statement": ALLOW, "Extra": 1},
            "identity",
            "Syntax errors in policy. Unknown field Extra",
        ),
        (
            {"Statement": {"Action": "s3:*", "Resource": "*"}},
            "identity",
            "Missing required field Effect",
        ),
        ({"Statement": {**ALLOW, "Effect": "allow"}}, "identity", "Invalid effect: allow"),
        (
            {"Statement": {**ALLOW, "Principal": "*"}},
            "identity",
            "Policy document should not specify a principal.",
        ),
        ({"Statement": ALLOW}, "resource", "Policy document should specify a principal."),
        (
            {"Statement": {**ALLOW, "Action": "GetSecretValue"}},
            "identity",
            "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.",
        ),
        (
            {"Statement": {"Effect": "Allow", "Resource": "*"}},
            "identity",
            "Policy statement must contain actions.",
        ),
        (
            {"Statement": {"Effect": "Allow", "Action": "s3:*"}},
            "identity",
            "Policy statement must contain resources.",
        ),
        (
            {"Statement": {**ALLOW, "NotAction": "s3:*"}},
            "identity",
            "Statement cannot have both Action and NotAction",
        ),
        (
            {"Statement": {**ALLOW, "NotResource": "*"}},
            "identity",
            "Statement cannot have both Resource and NotResource",
        ),
        (
            {"Statement": {**ALLOW, "Condition": {"StringEquality": {"aws:username": "a"}}}},
            "identity",
            "Invalid Condition type : StringEquality.",
        ),
        (
            {
                "Statement": {
                    **ALLOW,
                    "Condition": {"ForSomeValues:StringEquals": {"aws:username": "a"}},
                }
            },
            "identity",
            "Invalid Condition type : ForSomeValues:StringEquals.",
        ),
        (
            {"Statement": {**ALLOW, "Condition": {"NullIfExists": {"aws:username": "true"}}}},
            "identity",
            "Invalid Condition type : NullIfExists.",
        ),
        (
            {"Statement": {**ALLOW, "Condition": {"StringEquals": {"username": "a"}}}},
            "identity",
            "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc.",
        ),
        (
            {"Statement": {**ALLOW, "Condition": {"StringEquals": {"aws:username": {"a": 1}}}}},
            "identity",
            "Syntax errors in policy.",
        ),
        (
            {"Statement": [{**ALLOW, "Sid": "A"}, {**ALLOW, "Sid": "A"}]},
            "identity",
            "Statement IDs (SID) in a single policy must be unique",
        ),
        (
            {"Statement": {**ALLOW, "Principal": {"AWS": "alice"}}},
            "resource",
            "Invalid principal in policy",
        ),
        (
            {"Statement": {**ALLOW, "Principal": {"Group": "x"}}},
            "resource",
            "Invalid principal in policy",
        ),
        (
            {"Statement": {**ALLOW, "Principal": "*", "NotPrincipal": "*"}},
            "resource",
            "Statement cannot have both Principal and NotPrincipal",
        ),
        (
            {"Statement": {**ALLOW, "Action": 5}},
            "identity",
            "Syntax errors in policy. Invalid Action",
        ),
    ],
)
def test_malformed(document: Any, kind: Any, message: str) -> None:
    with pytest.raises(PolicySyntaxError) as info:
        parse_policy(document if isinstance(document, str) else json.dumps(document), kind=kind)
    assert info.value.message == message


def test_deeply_nested_json_is_a_syntax_error() -> None:
    with pytest.raises(PolicySyntaxError):
        parse_policy("[" * 100_000 + "]" * 100_000)


def test_trust_policy_needs_no_resource() -> None:
    trust = parse_policy(
        {
            "Version": "2012-10-17",
            "Statement": {
                "Effect": "Allow",
                "Principal": {"AWS": "111122223333"},
                "Action": "sts:AssumeRole",
            },
        },
        kind="trust",
    )
    assert trust.statements[0].resources is None


def test_condition_values_of_json_types_become_strings() -> None:
    policy = parse_policy(
        {
            "Statement": {
                **ALLOW,
                "Condition": {
                    "Bool": {"aws:SecureTransport": True},
                    "NumericLessThan": {"x:n": [1, 2.5]},
                },
            }
        }
    )
    values = {c.key: c.values for c in policy.statements[0].conditions}
    assert values == {"aws:securetransport": ("true",), "x:n": ("1", "2.5")}


def test_repeated_sids_refused_when_written_accepted_when_evaluated() -> None:
    """AWS's own `aws/secretsmanager` key policy repeats a Sid: evaluating it must keep every
    statement, while documents callers write still need unique Sids."""
    text = key_policy("AWS", "123456789012", "us-east-1", None)
    with pytest.raises(PolicySyntaxError):
        parse_policy(text, kind="trust")
    parsed = parse_policy(text, kind="trust", unique_sids=False)
    assert [s.sid for s in parsed.statements][2] == (
        "Allow direct access to key metadata to the account"
    )
    assert len(parsed.statements) == 3
