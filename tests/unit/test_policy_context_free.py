"""`context_free`: when a decision may be cached per principal, action and resource."""

from __future__ import annotations

import json
from typing import Any

from secretsd.policy import context_free, parse_policy

ACTION = "secretsmanager:GetSecretValue"


def identity(*statements: dict[str, Any], version: str = "2012-10-17") -> Any:
    return parse_policy(json.dumps({"Version": version, "Statement": list(statements)}))


def test_plain_allow_and_deny_are_context_free() -> None:
    policies = [
        identity({"Effect": "Allow", "Action": "*", "Resource": "*"}),
        identity({"Effect": "Deny", "Action": "secretsmanager:Delete*", "Resource": "*"}),
    ]
    assert context_free(ACTION, policies)


def test_a_condition_on_a_matching_statement_is_not() -> None:
    conditional = {
        "Effect": "Allow",
        "Action": "secretsmanager:Get*",
        "Resource": "*",
        "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}},
    }
    assert not context_free(ACTION, [identity(conditional)])
    # ...but a condition on statements for other actions does not matter.
    assert context_free("secretsmanager:ListSecrets", [identity(conditional)])


def test_not_action_statements_apply_to_everything_else() -> None:
    statement = {
        "Effect": "Deny",
        "NotAction": "secretsmanager:ListSecrets",
        "Resource": "*",
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    assert not context_free(ACTION, [identity(statement)])
    assert context_free("secretsmanager:ListSecrets", [identity(statement)])


def test_policy_variables_in_resources_depend_on_the_caller() -> None:
    statement = {
        "Effect": "Allow",
        "Action": ACTION,
        "Resource": "arn:aws:secretsmanager:*:*:secret:${aws:username}/*",
    }
    assert not context_free(ACTION, [identity(statement)])
    # Version 2008-10-17 reads `${...}` literally: nothing to substitute.
    assert context_free(ACTION, [identity(statement, version="2008-10-17")])


def test_resource_policy_conditions_count_too() -> None:
    resource = parse_policy(
        json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": ACTION,
                        "Resource": "*",
                        "Condition": {"StringNotEquals": {"aws:PrincipalTag/team": "a"}},
                    }
                ],
            }
        ),
        kind="resource",
    )
    plain = [identity({"Effect": "Allow", "Action": "*", "Resource": "*"})]
    assert context_free(ACTION, plain)
    assert not context_free(ACTION, plain, resource)
