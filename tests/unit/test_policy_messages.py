"""AccessDeniedException messages in the forms AWS returns."""

from __future__ import annotations

from secretsd.policy import RequestContext, access_denied_message, evaluate, parse_policy

ARN = "arn:aws:secretsmanager:us-east-1:111122223333:secret:prod/db-XyZ123"
ALICE = "arn:aws:iam::111122223333:user/alice"


def _decide(
    action: str,
    resource: str,
    identity: list[str],
    resource_policy: str | None = None,
    account: str = "111122223333",
) -> str:
    request = RequestContext(
        action=action,
        principal_arn=ALICE if account == "111122223333" else f"arn:aws:iam::{account}:user/alice",
        principal_account=account,
        resource=resource,
        resource_account="111122223333" if resource != "*" else None,
    )
    decision = evaluate(
        request,
        [parse_policy(p) for p in identity],
        parse_policy(resource_policy, kind="resource") if resource_policy else None,
    )
    assert not decision.allowed
    return access_denied_message(request.shown_arn, action, resource, decision)


def test_implicit_identity() -> None:
    assert _decide("secretsmanager:GetSecretValue", ARN, []) == (
        f"User: {ALICE} is not authorized to perform: secretsmanager:GetSecretValue on resource: "
        f"{ARN} because no identity-based policy allows the secretsmanager:GetSecretValue action"
    )


def test_no_resource_part_for_resourceless_actions() -> None:
    assert _decide("secretsmanager:ListSecrets", "*", []) == (
        f"User: {ALICE} is not authorized to perform: secretsmanager:ListSecrets because no "
        "identity-based policy allows the secretsmanager:ListSecrets action"
    )


def test_explicit_identity_deny() -> None:
    deny = '{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"*","Resource":"*"}}'
    assert _decide("secretsmanager:GetSecretValue", ARN, [deny]) == (
        f"User: {ALICE} is not authorized to perform: secretsmanager:GetSecretValue on resource: "
        f"{ARN} with an explicit deny in an identity-based policy"
    )


def test_explicit_resource_deny() -> None:
    allow = '{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}'
    deny = '{"Version":"2012-10-17","Statement":{"Effect":"Deny","Principal":"*","Action":"*","Resource":"*"}}'
    assert _decide("secretsmanager:GetSecretValue", ARN, [allow], deny) == (
        f"User: {ALICE} is not authorized to perform: secretsmanager:GetSecretValue on resource: "
        f"{ARN} with an explicit deny in a resource-based policy"
    )


def test_cross_account_missing_resource_policy() -> None:
    allow = '{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}'
    message = _decide("secretsmanager:GetSecretValue", ARN, [allow], account="444455556666")
    assert message == (
        "User: arn:aws:iam::444455556666:user/alice is not authorized to perform: "
        f"secretsmanager:GetSecretValue on resource: {ARN} because no resource-based policy "
        "allows the secretsmanager:GetSecretValue action"
    )


def test_session_arn_is_shown() -> None:
    request = RequestContext(
        action="secretsmanager:DescribeSecret",
        principal_arn="arn:aws:iam::111122223333:role/R",
        caller_arn="arn:aws:sts::111122223333:assumed-role/R/s",
        principal_account="111122223333",
        principal_type="AssumedRole",
        resource=ARN,
    )
    decision = evaluate(request, [])
    assert access_denied_message(request.shown_arn, request.action, ARN, decision).startswith(
        "User: arn:aws:sts::111122223333:assumed-role/R/s is not authorized"
    )
