"""Properties of the policy engine: deny precedence, monotonicity, order independence, and
wildcard matching against a reference implementation."""

from __future__ import annotations

import fnmatch
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from secretsd.policy import Decision, RequestContext, evaluate, parse_policy
from secretsd.policy.matching import GlobSet, parse_pattern

ACCOUNT = "111122223333"
SECRETS = [
    f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:{name}"
    for name in ("prod/db-AbCdEf", "dev/app-123456", "MySecret-a1b2c3")
]
ACTIONS = [
    "secretsmanager:GetSecretValue",
    "secretsmanager:DescribeSecret",
    "secretsmanager:PutSecretValue",
    "secretsmanager:ListSecrets",
]
ACTION_PATTERNS = [
    "*",
    "secretsmanager:*",
    "secretsmanager:Get*",
    "secretsmanager:*Secret",
    *ACTIONS,
]
RESOURCE_PATTERNS = [
    "*",
    "arn:aws:secretsmanager:*",
    "arn:aws:secretsmanager:*:*:secret:prod/*",
    *SECRETS,
]

conditions = st.one_of(
    st.none(),
    st.fixed_dictionaries(
        {
            "StringEquals": st.fixed_dictionaries(
                {"aws:PrincipalTag/team": st.sampled_from(["a", "b"])}
            )
        }
    ),
    st.fixed_dictionaries(
        {
            "StringNotEquals": st.fixed_dictionaries(
                {"aws:PrincipalTag/team": st.sampled_from(["a", "b"])}
            )
        }
    ),
    st.fixed_dictionaries(
        {
            "ForAllValues:StringLike": st.fixed_dictionaries(
                {"aws:TagKeys": st.sampled_from(["x*", "y"])}
            )
        }
    ),
)


@st.composite
def statements(draw: st.DrawFn, effect: str | None = None) -> dict[str, Any]:
    stmt: dict[str, Any] = {
        "Effect": effect or draw(st.sampled_from(["Allow", "Deny"])),
        "Action" if draw(st.booleans()) else "NotAction": draw(
            st.lists(st.sampled_from(ACTION_PATTERNS), min_size=1, max_size=3)
        ),
        "Resource" if draw(st.integers(0, 3)) else "NotResource": draw(
            st.lists(st.sampled_from(RESOURCE_PATTERNS), min_size=1, max_size=2)
        ),
    }
    condition = draw(conditions)
    if condition is not None:
        stmt["Condition"] = condition
    return stmt


requests = st.builds(
    lambda action, resource, team, keys: RequestContext(
        action=action,
        principal_arn=f"arn:aws:iam::{ACCOUNT}:user/alice",
        principal_account=ACCOUNT,
        resource="*" if action.endswith("ListSecrets") else resource,
        principal_tags={"team": team} if team else {},
        condition_keys={"aws:TagKeys": keys} if keys is not None else {},
    ),
    st.sampled_from(ACTIONS),
    st.sampled_from(SECRETS),
    st.sampled_from([None, "a", "b"]),
    st.one_of(st.none(), st.lists(st.sampled_from(["x1", "y", "z"]), max_size=2)),
)


def _decide(request: RequestContext, stmts: list[dict[str, Any]]) -> Decision:
    policy = parse_policy({"Version": "2012-10-17", "Statement": stmts})
    return evaluate(request, [policy])


def _outcome(d: Decision) -> tuple[bool, str]:
    return d.allowed, d.reason


@settings(max_examples=200, deadline=None)
@given(requests, st.lists(statements(), min_size=1, max_size=6), st.randoms(use_true_random=False))
def test_statement_order_never_matters(
    request: RequestContext, stmts: list[dict[str, Any]], rnd: Any
) -> None:
    shuffled = list(stmts)
    rnd.shuffle(shuffled)
    assert _outcome(_decide(request, stmts)) == _outcome(_decide(request, shuffled))


@settings(max_examples=200, deadline=None)
@given(requests, st.lists(statements(), max_size=5), st.data())
def test_an_applicable_deny_wins_wherever_it_is(
    request: RequestContext, stmts: list[dict[str, Any]], data: st.DataObject
) -> None:
    denial = data.draw(statements(effect="Deny"))
    if _decide(request, [denial]).reason != "explicit_deny":
        return
    position = data.draw(st.integers(0, len(stmts)))
    combined = [*stmts[:position], denial, *stmts[position:]]
    assert _decide(request, combined).reason == "explicit_deny"
    # Also when the deny sits in a second attached policy.
    policies = [
        parse_policy({"Version": "2012-10-17", "Statement": s})
        for s in (stmts or [denial], [denial])
    ]
    assert evaluate(request, policies).reason == "explicit_deny"


@settings(max_examples=200, deadline=None)
@given(requests, st.lists(statements(), min_size=1, max_size=5), statements(effect="Allow"))
def test_adding_an_allow_never_turns_allow_into_deny(
    request: RequestContext, stmts: list[dict[str, Any]], extra: dict[str, Any]
) -> None:
    if _decide(request, stmts).allowed:
        assert _decide(request, [*stmts, extra]).allowed


@settings(max_examples=200, deadline=None)
@given(requests, st.lists(statements(), min_size=1, max_size=5), statements(effect="Deny"))
def test_adding_a_deny_never_turns_deny_into_allow(
    request: RequestContext, stmts: list[dict[str, Any]], extra: dict[str, Any]
) -> None:
    if not _decide(request, stmts).allowed:
        assert not _decide(request, [*stmts, extra]).allowed


PATTERN_CHARS = "ab:/-*?"
VALUE_CHARS = "ab:/-"


@settings(max_examples=1000, deadline=None)
@given(st.text(PATTERN_CHARS, max_size=12), st.text(VALUE_CHARS, max_size=12))
def test_resource_wildcards_agree_with_fnmatch(pattern: str, value: str) -> None:
    globs = GlobSet([parse_pattern(pattern, variables=False)])
    assert globs.matches(value) == fnmatch.fnmatchcase(value, pattern)


@settings(max_examples=1000, deadline=None)
@given(st.text("aAbB:*?", max_size=10), st.text("aAbB:", max_size=10))
def test_action_wildcards_ignore_case(pattern: str, value: str) -> None:
    globs = GlobSet([parse_pattern(pattern, variables=False)], ignore_case=True)
    assert globs.matches(value) == fnmatch.fnmatchcase(value.lower(), pattern.lower())


def _arn_like_reference(value: str, pattern: str) -> bool:
    pattern_parts = pattern.split(":", 5)
    value_parts = value.split(":", 5)
    if len(pattern_parts) != 6 or len(value_parts) != 6:
        return False
    return all(fnmatch.fnmatchcase(v, p) for v, p in zip(value_parts, pattern_parts, strict=True))


@settings(max_examples=1000, deadline=None)
@given(
    st.lists(st.text("ab/*?", max_size=3), min_size=4, max_size=8).map(":".join),
    st.lists(st.text("ab/", max_size=3), min_size=4, max_size=8).map(":".join),
)
def test_arn_like_matches_component_by_component(pattern: str, value: str) -> None:
    globs = GlobSet([parse_pattern(pattern, variables=False)], arn=True)
    assert globs.matches(value) == _arn_like_reference(value, pattern)


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(
        [
            ("StringEquals", "StringNotEquals", st.text("ab", max_size=3)),
            ("StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase", st.text("aAb", max_size=3)),
            ("StringLike", "StringNotLike", st.text("ab*?", max_size=3)),
            ("NumericEquals", "NumericNotEquals", st.integers(-3, 3).map(str)),
            ("DateEquals", "DateNotEquals", st.integers(0, 3).map(str)),
            ("IpAddress", "NotIpAddress", st.sampled_from(["10.0.0.0/8", "10.1.0.0/16", "::/0"])),
            ("ArnLike", "ArnNotLike", st.sampled_from(["arn:aws:iam::1:user/*", "arn:*:*:*:*:*"])),
        ]
    ),
    st.data(),
)
def test_negated_operators_complement_on_present_keys(ops: Any, data: st.DataObject) -> None:
    positive, negative, values = ops
    policy_values = data.draw(st.lists(values, min_size=1, max_size=3))
    request_value = data.draw(
        st.one_of(values, st.sampled_from(["10.1.2.3", "arn:aws:iam::1:user/x", "2", "a"]))
    )
    request = RequestContext(
        action="s:A",
        principal_arn=f"arn:aws:iam::{ACCOUNT}:user/alice",
        principal_account=ACCOUNT,
        condition_keys={"k:v": request_value},
    )

    def allowed(op: str) -> bool:
        stmt = {
            "Effect": "Allow",
            "Action": "*",
            "Resource": "*",
            "Condition": {op: {"k:v": policy_values}},
        }
        return _decide(request, [stmt]).allowed

    assert allowed(positive) != allowed(negative)
