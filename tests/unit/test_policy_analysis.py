"""Resource-policy analysis: what BlockPublicPolicy refuses and what ValidateResourcePolicy says."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secretsd.policy import PolicySyntaxError, parse_policy
from secretsd.policy.analysis import (
    INVALID_ACTION_CHECK,
    PUBLIC_ACCESS_CHECK,
    PUBLIC_ACCESS_MESSAGE,
    RESTRICTING_KEYS,
    ValidationFinding,
    grants_public_access,
    unknown_actions,
    validate_resource_policy,
)

ACCOUNT = "111122223333"
ORG = "o-a1b2c3d4e5"


def stmt(
    principal: Any = "*",
    action: Any = "secretsmanager:GetSecretValue",
    *,
    effect: str = "Allow",
    condition: dict[str, Any] | None = None,
    resource: Any = "*",
    not_principal: Any = None,
    not_action: Any = None,
    not_resource: Any = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {"Effect": effect}
    if not_principal is not None:
        out["NotPrincipal"] = not_principal
    else:
        out["Principal"] = principal
    if not_action is not None:
        out["NotAction"] = not_action
    else:
        out["Action"] = action
    if not_resource is not None:
        out["NotResource"] = not_resource
    else:
        out["Resource"] = resource
    if condition is not None:
        out["Condition"] = condition
    return out


def doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


def public(*statements: dict[str, Any]) -> bool:
    return grants_public_access(parse_policy(doc(*statements), kind="resource"))


# --- principals ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "principal",
    [
        "*",
        {"AWS": "*"},
        {"AWS": ["arn:aws:iam::111122223333:root", "*"]},
        {"AWS": "arn:aws:iam::*:root"},
        {"AWS": "arn:aws:iam::*:role/Admin"},
        {"AWS": "arn:aws:iam::12345678901?:root"},
        {"Federated": "*"},
    ],
)
def test_wildcard_principals_are_public(principal: Any) -> None:
    assert public(stmt(principal))


@pytest.mark.parametrize(
    "principal",
    [
        {"AWS": "arn:aws:iam::111122223333:root"},
        {"AWS": "111122223333"},
        {"AWS": ["arn:aws:iam::111122223333:role/App", "arn:aws:iam::444455556666:user/bob"]},
        {"Service": "lambda.amazonaws.com"},
        {"Federated": "cognito-identity.amazonaws.com"},
    ],
)
def test_fixed_principals_are_not_public(principal: Any) -> None:
    assert not public(stmt(principal))


def test_allow_with_not_principal_is_public() -> None:
    # NotPrincipal with Allow grants every principal not listed, anonymous callers included.
    assert public(stmt(not_principal={"AWS": "arn:aws:iam::111122223333:root"}))


def test_deny_never_makes_a_policy_public() -> None:
    assert not public(stmt("*", "secretsmanager:*", effect="Deny"))
    assert not public(
        stmt({"AWS": "arn:aws:iam::111122223333:root"}),
        stmt("*", "*", effect="Deny", not_principal=None),
    )
    assert not public(stmt(effect="Deny", not_principal={"AWS": f"arn:aws:iam::{ACCOUNT}:root"}))


def test_one_public_statement_among_restricted_ones_is_enough() -> None:
    assert public(
        stmt({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}),
        stmt("*", condition={"StringEquals": {"aws:PrincipalOrgID": ORG}}),
        stmt("*", "secretsmanager:DescribeSecret"),
    )


# --- actions ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "action",
    [
        "*",
        "secretsmanager:*",
        "secretsmanager:Get*",
        "SecretsManager:getsecretvalue",
        ["s3:GetObject", "secretsmanager:DescribeSecret"],
        "*:GetSecretValue",
    ],
)
def test_any_secrets_manager_action_counts(action: Any) -> None:
    assert public(stmt("*", action))


@pytest.mark.parametrize("action", ["s3:GetObject", "kms:Decrypt", ["sqs:*", "sns:Publish"]])
def test_actions_of_other_services_grant_nothing_on_a_secret(action: Any) -> None:
    assert not public(stmt("*", action))


def test_not_action_grants_the_remaining_actions() -> None:
    assert public(stmt("*", not_action="secretsmanager:DeleteSecret"))
    assert public(stmt("*", not_action="s3:*"))
    assert not public(stmt("*", not_action="secretsmanager:*"))
    assert not public(stmt("*", not_action="*"))


# --- conditions that restrict (not public) ---------------------------------------------------

RESTRICTED = [
    {"StringEquals": {"aws:PrincipalAccount": ACCOUNT}},
    {"StringEquals": {"aws:PrincipalAccount": [ACCOUNT, "444455556666"]}},
    {"StringEqualsIgnoreCase": {"aws:PrincipalAccount": ACCOUNT}},
    {"StringLike": {"aws:PrincipalAccount": ACCOUNT}},
    {"StringEquals": {"aws:SourceAccount": ACCOUNT}},
    {"StringEquals": {"aws:SourceOwner": ACCOUNT}},
    {"StringEquals": {"aws:PrincipalOrgID": ORG}},
    {"StringEquals": {"aws:SourceOrgID": ORG}},
    {"ForAnyValue:StringLike": {"aws:PrincipalOrgPaths": [f"{ORG}/r-ab12/ou-ab12-11111111/*"]}},
    {"ForAnyValue:StringLike": {"aws:SourceOrgPaths": [f"{ORG}/*"]}},
    {"ArnEquals": {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:role/App"}},
    {"ArnLike": {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:role/*"}},
    {"StringLike": {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:user/${{aws:username}}"}},
    {"ArnEquals": {"aws:SourceArn": f"arn:aws:sns:us-east-1:{ACCOUNT}:topic"}},
    {"ArnLike": {"aws:SourceArn": f"arn:aws:lambda:*:{ACCOUNT}:function:*"}},
    {"ArnEquals": {"aws:SourceArn": "arn:aws:s3:::my-bucket"}},
    {"StringEquals": {"aws:SourceVpc": "vpc-1a2b3c4d"}},
    {"StringEquals": {"aws:SourceVpce": ["vpce-1a2b3c4d", "vpce-5e6f7a8b"]}},
    {"StringEquals": {"aws:userid": "AIDAEXAMPLEUSERID1234"}},
    {"StringLike": {"aws:userid": "AROAEXAMPLEROLEID1234:*"}},
    {"IpAddress": {"aws:SourceIp": "203.0.113.0/24"}},
    {"IpAddress": {"aws:SourceIp": ["203.0.113.7/32", "2001:db8::/32"]}},
    # A `*` under StringEquals is a literal character: nobody's account is "*".
    {"StringEquals": {"aws:PrincipalAccount": "*"}},
    # Keys are case-insensitive.
    {"StringEquals": {"AWS:PRINCIPALORGID": ORG}},
    # One restricting clause confines the statement even beside others that do not.
    {"Bool": {"aws:SecureTransport": "true"}, "StringEquals": {"aws:PrincipalOrgID": ORG}},
]


@pytest.mark.parametrize("condition", RESTRICTED, ids=lambda c: json.dumps(c)[:70])
def test_restricting_conditions_are_not_public(condition: dict[str, Any]) -> None:
    assert not public(stmt("*", "secretsmanager:*", condition=condition))


# --- conditions that do not restrict (public) ------------------------------------------------

STILL_PUBLIC = [
    {"Bool": {"aws:SecureTransport": "true"}},
    {"StringEquals": {"secretsmanager:VersionStage": "AWSCURRENT"}},
    {"StringEquals": {"aws:username": "alice"}},
    {"DateGreaterThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}},
    # Wildcards where the restriction lives.
    {"StringLike": {"aws:PrincipalAccount": "*"}},
    {"StringLike": {"aws:PrincipalAccount": "1111*"}},
    {"StringLike": {"aws:PrincipalOrgID": "o-*"}},
    {"ForAnyValue:StringLike": {"aws:PrincipalOrgPaths": ["*"]}},
    {"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/App"}},
    {"ArnLike": {"aws:PrincipalArn": "*"}},
    {"ArnLike": {"aws:SourceArn": "arn:aws:s3:::bucket-*"}},
    {"StringLike": {"aws:SourceVpc": "vpc-*"}},
    {"StringLike": {"aws:userid": "*"}},
    {"StringLike": {"aws:userid": "*:session"}},
    {"StringLike": {"aws:PrincipalArn": "arn:aws:iam::${aws:PrincipalAccount}:root"}},
    {"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}},
    {"IpAddress": {"aws:SourceIp": ["203.0.113.0/24", "::/0"]}},
    # IfExists and ForAllValues are true when the key is absent: anonymous callers pass.
    {"StringEqualsIfExists": {"aws:PrincipalOrgID": ORG}},
    {"ArnLikeIfExists": {"aws:PrincipalArn": f"arn:aws:iam::{ACCOUNT}:*"}},
    {"IpAddressIfExists": {"aws:SourceIp": "203.0.113.0/24"}},
    {"ForAllValues:StringLike": {"aws:PrincipalOrgPaths": [f"{ORG}/*"]}},
    # Negated operators on an Allow exclude a few callers and admit everyone else.
    {"StringNotEquals": {"aws:PrincipalAccount": ACCOUNT}},
    {"NotIpAddress": {"aws:SourceIp": "203.0.113.0/24"}},
    # Null only asks that the key be present.
    {"Null": {"aws:PrincipalOrgID": "false"}},
    # The wrong operator family for the key.
    {"StringEquals": {"aws:SourceIp": "203.0.113.7"}},
    {"IpAddress": {"aws:PrincipalAccount": "10.0.0.0/8"}},
]


@pytest.mark.parametrize("condition", STILL_PUBLIC, ids=lambda c: json.dumps(c)[:70])
def test_non_restricting_conditions_stay_public(condition: dict[str, Any]) -> None:
    assert public(stmt("*", "secretsmanager:*", condition=condition))


def test_restricting_keys_are_the_documented_ones() -> None:
    assert {
        "aws:principalaccount",
        "aws:principalarn",
        "aws:principalorgid",
        "aws:principalorgpaths",
        "aws:sourceaccount",
        "aws:sourcearn",
        "aws:sourceowner",
        "aws:sourceorgid",
        "aws:sourceorgpaths",
        "aws:sourcevpc",
        "aws:sourcevpce",
        "aws:userid",
        "aws:sourceip",
    } == RESTRICTING_KEYS


# --- Deny statements that confine a broad Allow -------------------------------------------------


def test_deny_outside_the_organization_confines_a_broad_allow() -> None:
    assert not public(
        stmt("*", "secretsmanager:GetSecretValue"),
        stmt(
            "*",
            "secretsmanager:*",
            effect="Deny",
            condition={"StringNotEquals": {"aws:PrincipalOrgID": ORG}},
        ),
    )


def test_deny_with_several_negated_restrictions_confines() -> None:
    # Denied only when outside the org AND outside the VPC: whoever passes meets one of them.
    assert not public(
        stmt("*", "secretsmanager:*"),
        stmt(
            "*",
            "*",
            effect="Deny",
            condition={
                "StringNotEquals": {"aws:PrincipalOrgID": ORG, "aws:SourceVpc": "vpc-1a2b3c4d"}
            },
        ),
    )


def test_unconditional_deny_for_everyone_leaves_nothing_granted() -> None:
    assert not public(stmt("*", "secretsmanager:GetSecretValue"), stmt("*", "*", effect="Deny"))


@pytest.mark.parametrize(
    "deny",
    [
        # Covers only some of the granted actions.
        stmt(
            "*",
            "secretsmanager:GetSecretValue",
            effect="Deny",
            condition={"StringNotEquals": {"aws:PrincipalOrgID": ORG}},
        ),
        # IfExists: an anonymous caller without the key escapes the Deny.
        stmt(
            "*",
            "secretsmanager:*",
            effect="Deny",
            condition={"StringNotEqualsIfExists": {"aws:PrincipalOrgID": ORG}},
        ),
        # Wildcarded value: "not like o-*" excludes nobody real.
        stmt(
            "*",
            "secretsmanager:*",
            effect="Deny",
            condition={"StringNotLike": {"aws:PrincipalOrgID": "o-*"}},
        ),
        # A condition that is not about who calls.
        stmt(
            "*",
            "secretsmanager:*",
            effect="Deny",
            condition={"Bool": {"aws:SecureTransport": "false"}},
        ),
        # Only for one principal.
        stmt(
            {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
            "secretsmanager:*",
            effect="Deny",
            condition={"StringNotEquals": {"aws:PrincipalOrgID": ORG}},
        ),
        # On other resources only.
        stmt(
            "*",
            "secretsmanager:*",
            effect="Deny",
            resource="arn:aws:secretsmanager:us-east-1:111122223333:secret:other-*",
            condition={"StringNotEquals": {"aws:PrincipalOrgID": ORG}},
        ),
        stmt(
            "*",
            "secretsmanager:*",
            effect="Deny",
            not_resource="arn:aws:secretsmanager:*:*:secret:x",
            condition={"StringNotEquals": {"aws:PrincipalOrgID": ORG}},
        ),
    ],
)
def test_denies_that_do_not_confine(deny: dict[str, Any]) -> None:
    assert public(
        stmt("*", ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]), deny
    )


def test_deny_resource_pattern_covering_the_allow_pattern_confines() -> None:
    allow = stmt("*", resource="arn:aws:secretsmanager:us-east-1:111122223333:secret:app-*")
    deny = stmt(
        "*",
        "secretsmanager:*",
        effect="Deny",
        resource="arn:aws:secretsmanager:*",
        condition={"StringNotEquals": {"aws:PrincipalAccount": ACCOUNT}},
    )
    assert not public(allow, deny)


# --- ValidateResourcePolicy findings -----------------------------------------------------------


def test_a_restricted_policy_passes_validation() -> None:
    text = doc(stmt({"AWS": f"arn:aws:iam::{ACCOUNT}:role/MyRole"}))
    assert validate_resource_policy(text) == []


def test_public_policy_finding() -> None:
    findings = validate_resource_policy(doc(stmt("*")))
    assert findings == [ValidationFinding(PUBLIC_ACCESS_CHECK, PUBLIC_ACCESS_MESSAGE)]
    assert findings[0].as_entry() == {
        "CheckName": PUBLIC_ACCESS_CHECK,
        "ErrorMessage": PUBLIC_ACCESS_MESSAGE,
    }


def test_unknown_action_findings_use_access_analyzer_wording() -> None:
    text = doc(
        stmt(
            {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
            ["secretsmanager:GetSecretValues", "secretsmanager:Fly*", "s3:MadeUp", "kms:Decrypt"],
        )
    )
    findings = validate_resource_policy(text)
    assert [f.check_name for f in findings] == [INVALID_ACTION_CHECK, INVALID_ACTION_CHECK]
    assert findings[0].error_message == "The action secretsmanager:GetSecretValues does not exist."
    assert findings[1].error_message == "The action secretsmanager:Fly* does not exist."


def test_unknown_actions_are_listed_once_in_document_order() -> None:
    policy = parse_policy(
        doc(
            stmt(not_action=["iam:Nope", "secretsmanager:Nope"]),
            stmt(action=["secretsmanager:Nope", "sts:AssumeRole", "*:Anything", "*"]),
        ),
        kind="resource",
    )
    assert unknown_actions(policy) == ["iam:Nope", "secretsmanager:Nope"]


def test_unknown_action_and_public_findings_together() -> None:
    findings = validate_resource_policy(doc(stmt("*", ["secretsmanager:Nope", "secretsmanager:*"])))
    assert [f.check_name for f in findings] == [INVALID_ACTION_CHECK, PUBLIC_ACCESS_CHECK]


@pytest.mark.parametrize(
    "text",
    [
        "{not json",
        "[]",
        json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow"}]}),
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
            }
        ),
    ],
)
def test_syntax_errors_raise_as_aws_answers_malformed_policy(text: str) -> None:
    with pytest.raises(PolicySyntaxError):
        validate_resource_policy(text)


# --- properties ---------------------------------------------------------------------------------

_ACTIONS = st.sampled_from(
    ["secretsmanager:GetSecretValue", "secretsmanager:*", "*", "secretsmanager:Describe*"]
)
_RESTRICTING = st.sampled_from(RESTRICTED)


@given(_ACTIONS, _RESTRICTING)
def test_adding_a_restricting_condition_never_makes_public(
    action: str, cond: dict[str, Any]
) -> None:
    assert public(stmt("*", action))
    assert not public(stmt("*", action, condition=cond))


@given(_ACTIONS, st.sampled_from(STILL_PUBLIC + RESTRICTED))
def test_a_deny_alone_is_never_public(action: str, cond: dict[str, Any]) -> None:
    assert not public(stmt("*", action, effect="Deny", condition=cond))


@given(
    st.lists(
        st.sampled_from(
            [
                stmt("*"),
                stmt({"AWS": f"arn:aws:iam::{ACCOUNT}:root"}, "secretsmanager:*"),
                stmt("*", "s3:*"),
                stmt("*", condition={"StringEquals": {"aws:SourceVpc": "vpc-1"}}),
                stmt("*", "*", effect="Deny", condition={"Bool": {"aws:SecureTransport": "false"}}),
            ]
        ),
        min_size=1,
        max_size=5,
    )
)
def test_public_iff_some_statement_is_public_alone(statements: list[dict[str, Any]]) -> None:
    # None of these Denies confine, so statements do not interact.
    assert public(*statements) == any(public(s) for s in statements)
