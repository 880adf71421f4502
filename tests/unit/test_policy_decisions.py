"""The decision table in policy_cases.py, one test per documented case."""

from __future__ import annotations

from typing import Any

import pytest

from secretsd.policy import RequestContext, access_denied_message, evaluate, parse_policy
from unit.policy_cases import CASES


def _context(case: dict[str, Any]) -> RequestContext:
    return RequestContext(**case["principal"], **case["request"])


def test_table_is_large_enough() -> None:
    assert len(CASES) >= 300
    assert all(c["source"].startswith("https://docs.aws.amazon.com/") for c in CASES)


@pytest.mark.parametrize("case", CASES, ids=[c["description"] for c in CASES])
def test_decision(case: dict[str, Any]) -> None:
    identity = [parse_policy(p, kind="identity") for p in case["identity_policies"]]
    resource = case["resource_policy"]
    resource_policy = parse_policy(resource, kind="resource") if resource is not None else None
    request = _context(case)
    decision = evaluate(request, identity, resource_policy)
    expected, _, policy_type = case["expected"].partition(":")
    got = decision.reason if decision.allowed else f"{decision.reason}:{decision.policy_type}"
    assert got == case["expected"], case["source"]
    assert decision.allowed == (expected == "allowed")
    if not decision.allowed:
        message = access_denied_message(
            request.shown_arn, request.action, request.resource, decision
        )
        kind = "identity-based" if policy_type == "identity" else "resource-based"
        assert message.startswith(f"User: {request.shown_arn} is not authorized to perform: ")
        assert kind in message
