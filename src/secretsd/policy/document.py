"""Policy documents parsed into frozen, precompiled objects.

Grammar: "IAM JSON policy element reference" and "Grammar of the IAM JSON policy language",
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements.html
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_grammar.html

Where IAM's MalformedPolicyDocument messages are known they are reused ("Policy document should
not specify a principal.", "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2,
etc.", "Missing required field Effect"); size limits belong to the caller.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from secretsd.policy.conditions import ConditionClause, ConditionSyntaxError, compile_clause
from secretsd.policy.matching import GlobSet, parse_pattern

PolicyKind = Literal["identity", "resource", "trust"]

VERSION_2012 = "2012-10-17"
VERSION_2008 = "2008-10-17"
_VERSIONS = frozenset({VERSION_2012, VERSION_2008})
_TOP_KEYS = frozenset({"Version", "Id", "Statement"})
_STATEMENT_KEYS = frozenset(
    {
        "Sid",
        "Effect",
        "Principal",
        "NotPrincipal",
        "Action",
        "NotAction",
        "Resource",
        "NotResource",
        "Condition",
    }
)
_PRINCIPAL_TYPES = frozenset({"AWS", "Service", "Federated", "CanonicalUser"})
_ACCOUNT_ID = re.compile(r"^\d{12}$")
_ACTION = re.compile(r"^[A-Za-z0-9*?-]+:[A-Za-z0-9*?]*$")


class PolicySyntaxError(ValueError):
    """A malformed policy document; `message` is what the caller reports to the client."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class PrincipalSet:
    """A Principal or NotPrincipal element. `wildcard` is `"*"` or `{"AWS": "*"}`."""

    wildcard: bool = False
    aws: frozenset[str] = frozenset()  # ARNs; bare account ids expanded to ...:root
    service: frozenset[str] = frozenset()
    federated: frozenset[str] = frozenset()
    canonical_user: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Statement:
    effect: Literal["Allow", "Deny"]
    sid: str | None = None
    principal: PrincipalSet | None = None
    not_principal: PrincipalSet | None = None
    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] = ()
    resources: tuple[str, ...] | None = None
    not_resources: tuple[str, ...] | None = None
    conditions: tuple[ConditionClause, ...] = ()
    # Compiled once per parsed document; never shared between documents.
    action_globs: GlobSet = field(repr=False, compare=False, default=GlobSet(()))
    resource_globs: GlobSet | None = field(repr=False, compare=False, default=None)


@dataclass(frozen=True, slots=True)
class Policy:
    statements: tuple[Statement, ...]
    version: str | None = None
    id: str | None = None
    name: str | None = None  # caller's label (policy ARN or inline name), for decisions

    @property
    def variables_enabled(self) -> bool:
        """Policy variables exist only in version 2012-10-17; older documents read `${...}`
        literally (reference_policies_variables.html, "Policy variables were introduced in
        version 2012-10-17")."""
        return self.version == VERSION_2012


def parse_policy(
    text: str | Mapping[str, Any],
    *,
    kind: PolicyKind = "identity",
    name: str | None = None,
    unique_sids: bool = True,
) -> Policy:
    """Parse a policy document (JSON text or an already-decoded object).

    `unique_sids=False` is for evaluating documents rather than accepting them: unique Sids are a
    rule for what callers may write, and AWS's own key policy for `aws/secretsmanager` repeats a
    Sid (so rejecting it would make the whole policy grant nothing)."""
    if isinstance(text, str):
        try:
            doc: Any = json.loads(text)
        except (ValueError, RecursionError) as exc:
            raise PolicySyntaxError("Syntax errors in policy.") from exc
    else:
        doc = text
    if not isinstance(doc, dict):
        raise PolicySyntaxError("Syntax errors in policy.")
    unknown = set(doc) - _TOP_KEYS
    if unknown:
        raise PolicySyntaxError(f"Syntax errors in policy. Unknown field {sorted(unknown)[0]}")
    version = doc.get("Version")
    if version is not None and version not in _VERSIONS:
        raise PolicySyntaxError("The policy failed legacy parsing")
    policy_id = doc.get("Id")
    if policy_id is not None and not isinstance(policy_id, str):
        raise PolicySyntaxError("Syntax errors in policy.")
    raw = doc.get("Statement")
    if raw is None:
        raise PolicySyntaxError("Missing required field Statement")
    raw_statements = raw if isinstance(raw, list) else [raw]
    if not raw_statements:
        raise PolicySyntaxError("Missing required field Statement")
    variables = version == VERSION_2012
    statements = tuple(_parse_statement(s, kind, variables) for s in raw_statements)
    sids = [s.sid for s in statements if s.sid]
    if unique_sids and len(sids) != len(set(sids)):
        raise PolicySyntaxError("Statement IDs (SID) in a single policy must be unique")
    return Policy(statements, version, policy_id, name)


def _strings(value: Any, element: str) -> tuple[str, ...]:
    items = value if isinstance(value, list) else [value]
    if not items or not all(isinstance(v, str) for v in items):
        raise PolicySyntaxError(f"Syntax errors in policy. Invalid {element}")
    return tuple(items)


def _parse_statement(raw: Any, kind: PolicyKind, variables: bool) -> Statement:
    if not isinstance(raw, dict):
        raise PolicySyntaxError("Syntax errors in policy.")
    unknown = set(raw) - _STATEMENT_KEYS
    if unknown:
        raise PolicySyntaxError(f"Syntax errors in policy. Unknown field {sorted(unknown)[0]}")
    effect = raw.get("Effect")
    if effect is None:
        raise PolicySyntaxError("Missing required field Effect")
    if effect not in ("Allow", "Deny"):
        raise PolicySyntaxError(f"Invalid effect: {effect}")
    sid = raw.get("Sid")
    if sid is not None and not isinstance(sid, str):
        raise PolicySyntaxError("Syntax errors in policy.")

    principal, not_principal = _principals(raw, kind)
    if "Action" in raw and "NotAction" in raw:
        raise PolicySyntaxError("Statement cannot have both Action and NotAction")
    if "Action" not in raw and "NotAction" not in raw:
        raise PolicySyntaxError("Policy statement must contain actions.")
    actions = _strings(raw["Action"], "Action") if "Action" in raw else ()
    not_actions = _strings(raw["NotAction"], "NotAction") if "NotAction" in raw else ()
    for action in actions + not_actions:
        if action != "*" and not _ACTION.match(action):
            raise PolicySyntaxError(
                "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc."
            )

    if "Resource" in raw and "NotResource" in raw:
        raise PolicySyntaxError("Statement cannot have both Resource and NotResource")
    resources = _strings(raw["Resource"], "Resource") if "Resource" in raw else None
    not_resources = _strings(raw["NotResource"], "NotResource") if "NotResource" in raw else None
    if kind != "trust" and resources is None and not_resources is None:
        raise PolicySyntaxError("Policy statement must contain resources.")

    conditions = _conditions(raw.get("Condition"))
    action_globs = GlobSet(
        [parse_pattern(a, variables=False) for a in actions or not_actions], ignore_case=True
    )
    resource_list = resources if resources is not None else not_resources
    resource_globs = (
        GlobSet([parse_pattern(r, variables=variables) for r in resource_list])
        if resource_list is not None
        else None
    )
    return Statement(
        effect=effect,
        sid=sid,
        principal=principal,
        not_principal=not_principal,
        actions=actions,
        not_actions=not_actions,
        resources=resources,
        not_resources=not_resources,
        conditions=conditions,
        action_globs=action_globs,
        resource_globs=resource_globs,
    )


def _principals(raw: dict[str, Any], kind: PolicyKind) -> tuple[PrincipalSet | None, ...]:
    has_p, has_np = "Principal" in raw, "NotPrincipal" in raw
    if kind == "identity":
        if has_p or has_np:
            raise PolicySyntaxError("Policy document should not specify a principal.")
        return None, None
    if has_p and has_np:
        raise PolicySyntaxError("Statement cannot have both Principal and NotPrincipal")
    if not has_p and not has_np:
        raise PolicySyntaxError("Policy document should specify a principal.")
    if has_p:
        return _principal_set(raw["Principal"]), None
    return None, _principal_set(raw["NotPrincipal"])


def _principal_set(value: Any) -> PrincipalSet:
    if value == "*":
        return PrincipalSet(wildcard=True)
    if not isinstance(value, dict) or not value or set(value) - _PRINCIPAL_TYPES:
        raise PolicySyntaxError("Invalid principal in policy")
    groups: dict[str, frozenset[str]] = {}
    wildcard = False
    for ptype, entries in value.items():
        items = _strings(entries, "principal")
        if ptype == "AWS":
            if "*" in items:
                wildcard = True
            items = tuple(_expand_account(i) for i in items if i != "*")
        groups[ptype] = frozenset(items)
    return PrincipalSet(
        wildcard=wildcard,
        aws=groups.get("AWS", frozenset()),
        service=groups.get("Service", frozenset()),
        federated=groups.get("Federated", frozenset()),
        canonical_user=groups.get("CanonicalUser", frozenset()),
    )


def _expand_account(entry: str) -> str:
    """`"123456789012"` is shorthand for `arn:aws:iam::123456789012:root`
    (reference_policies_elements_principal.html, "AWS account principals")."""
    if _ACCOUNT_ID.match(entry):
        return f"arn:aws:iam::{entry}:root"
    if not entry.startswith("arn:"):
        raise PolicySyntaxError("Invalid principal in policy")
    return entry


def _conditions(raw: Any) -> tuple[ConditionClause, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        raise PolicySyntaxError("Syntax errors in policy.")
    clauses: list[ConditionClause] = []
    for operator, block in raw.items():
        if not isinstance(block, dict) or not block:
            raise PolicySyntaxError("Syntax errors in policy.")
        for key, values in block.items():
            if not isinstance(key, str) or ":" not in key:
                raise PolicySyntaxError(
                    "Actions/Conditions must be prefaced by a vendor, e.g., iam, sdb, ec2, etc."
                )
            items = values if isinstance(values, list) else [values]
            if not all(isinstance(v, str | int | float | bool) for v in items):
                raise PolicySyntaxError("Syntax errors in policy.")
            texts = tuple(_value_text(v) for v in items)
            try:
                clauses.append(compile_clause(operator, key, texts))
            except ConditionSyntaxError as exc:
                raise PolicySyntaxError(str(exc)) from exc
    return tuple(clauses)


def _value_text(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
