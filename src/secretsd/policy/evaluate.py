"""AWS's policy evaluation logic for identity-based and resource-based policies.

Sources:
- https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_policy-eval-denyallow.html
  ("By default, all requests are implicitly denied with the exception of the AWS account root
  user, which has full access"; "An explicit deny overrides an explicit allow").
- https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic_policy-eval-basics.html
  ("If either the identity-based policy or the resource-based policy within the same account
  allows the request and the other doesn't, the request is still allowed").
- https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic-cross-account.html
  (cross-account: the trusting account's resource policy and the caller's identity policy must
  both allow).
- https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_principal.html
  ("AWS account principals"): naming an account in a resource policy delegates to that
  account's administrators; it does not by itself grant anything to the account's users and
  roles. So within one account an Allow whose Principal matches only through the account ARN is
  not enough; the identity policy must allow. A role ARN in Principal covers that role's sessions.
- https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notprincipal.html
  (a NotPrincipal with Deny exempts a caller only when every ARN AWS evaluates for it is listed:
  the account, the role or user, and the session).

Not evaluated yet: permissions boundaries, session policies, SCPs/RCPs and VPC endpoint policies.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Literal, NamedTuple

from secretsd.policy.context import RequestContext, account_root
from secretsd.policy.document import Policy, PrincipalSet, Statement

Reason = Literal["explicit_deny", "allowed", "implicit_deny"]
PolicyType = Literal["identity", "resource"]


# NamedTuples rather than frozen dataclasses: built on every request, and several times cheaper.


class _Match(enum.IntEnum):
    NONE = 0
    ACCOUNT = 1  # only through the account principal: delegation, not a grant
    DIRECT = 2


class StatementRef(NamedTuple):
    """Which statement decided: the policy's type, position, label and Sid."""

    policy_type: PolicyType
    policy_index: int
    policy_name: str | None
    sid: str | None


class Decision(NamedTuple):
    allowed: bool
    reason: Reason
    # For denials, the policy type AWS names in the message ("identity-based"/"resource-based").
    policy_type: PolicyType | None
    decided_by: StatementRef | None
    identity_allowed: bool
    resource_allowed: bool


def evaluate(
    request: RequestContext,
    identity_policies: Sequence[Policy],
    resource_policy: Policy | None = None,
    *,
    require_resource_policy: bool = False,
) -> Decision:
    """Decide `request` against the caller's identity policies and the resource's policy.

    `require_resource_policy`: the resource policy must allow even within the account, as for KMS
    key policies ("Unless the key policy explicitly allows it, you cannot use IAM policies to
    allow access to a KMS key", https://docs.aws.amazon.com/kms/latest/developerguide/control-access.html)
    and role trust policies (a role can be assumed only by principals its trust policy names,
    https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic-cross-account.html).
    Identity policies then count only where the resource policy delegates to the caller's
    account.
    """
    identity_allow: StatementRef | None = None
    identity_deny: StatementRef | None = None
    for index, policy in enumerate(identity_policies):
        for stmt in policy.statements:
            if not _applies(stmt, request, policy):
                continue
            if stmt.effect == "Deny":
                identity_deny = StatementRef("identity", index, policy.name, stmt.sid)
                break
            if identity_allow is None:
                identity_allow = StatementRef("identity", index, policy.name, stmt.sid)
        if identity_deny is not None:
            break

    resource_direct: StatementRef | None = None
    resource_account: StatementRef | None = None
    resource_deny: StatementRef | None = None
    if resource_policy is not None and identity_deny is None:
        for stmt in resource_policy.statements:
            level = _principal_match(stmt, request)
            if level is _Match.NONE or not _applies(stmt, request, resource_policy):
                continue
            ref = StatementRef("resource", 0, resource_policy.name, stmt.sid)
            if stmt.effect == "Deny":
                resource_deny = ref
                break
            if level is _Match.DIRECT:
                resource_direct = resource_direct or ref
            else:
                resource_account = resource_account or ref

    is_root = request.principal_type == "Account"
    identity_ok = identity_allow is not None or is_root
    resource_ok = resource_direct is not None or resource_account is not None

    if identity_deny is not None:
        return Decision(False, "explicit_deny", "identity", identity_deny, identity_ok, False)
    if resource_deny is not None:
        return Decision(False, "explicit_deny", "resource", resource_deny, identity_ok, resource_ok)

    if require_resource_policy and request.same_account:
        if resource_direct is not None or (resource_account is not None and identity_ok):
            return Decision(
                True, "allowed", None, resource_direct or identity_allow, identity_ok, True
            )
        missing_key: PolicyType = "resource" if resource_account is None else "identity"
        return Decision(False, "implicit_deny", missing_key, None, identity_ok, resource_ok)

    if request.same_account:
        if identity_ok or resource_direct is not None:
            by = identity_allow if identity_allow is not None else resource_direct
            return Decision(True, "allowed", None, by, identity_ok, resource_ok)
        return Decision(False, "implicit_deny", "identity", None, identity_ok, resource_ok)

    if identity_ok and resource_ok:
        by = resource_direct or resource_account
        return Decision(True, "allowed", None, by, identity_ok, resource_ok)
    # The caller's account is evaluated first; if it allows, the resource policy is what's missing.
    missing: PolicyType = "identity" if not identity_ok else "resource"
    return Decision(False, "implicit_deny", missing, None, identity_ok, resource_ok)


def _applies(stmt: Statement, request: RequestContext, policy: Policy) -> bool:
    """Action, resource and conditions match (the principal is checked separately)."""
    if stmt.actions:
        if not stmt.action_globs.matches(request.action):
            return False
    elif stmt.action_globs.matches(request.action):
        return False
    lookup = request.variable if policy.variables_enabled else None
    globs = stmt.resource_globs
    if globs is not None:
        matched = globs.matches(request.resource, lookup)
        if matched != (stmt.resources is not None):
            return False
    if stmt.conditions:
        keys = request.keys
        var = request.variable if policy.variables_enabled else _no_variable
        for clause in stmt.conditions:
            if not clause.evaluate(keys, var):
                return False
    return True


def _no_variable(_name: str) -> str | None:
    return None


def _caller_arns(request: RequestContext) -> tuple[str, ...]:
    return (request.principal_arn, request.shown_arn)


def _principal_match(stmt: Statement, request: RequestContext) -> _Match:
    if stmt.principal is not None:
        return _match_set(stmt.principal, request)
    if stmt.not_principal is not None:
        return _not_principal_match(stmt.not_principal, request)
    return _Match.DIRECT  # trust-style statements without a principal never reach here


def _match_set(principals: PrincipalSet, request: RequestContext) -> _Match:
    if principals.wildcard:
        return _Match.DIRECT
    if request.service_principal is not None:
        return _Match.DIRECT if request.service_principal in principals.service else _Match.NONE
    aws = principals.aws
    if any(arn in aws for arn in _caller_arns(request)):
        return _Match.DIRECT
    if principals.federated and request.shown_arn in principals.federated:
        return _Match.DIRECT
    if account_root(request.principal_account) in aws:
        return _Match.ACCOUNT
    return _Match.NONE


def _not_principal_match(principals: PrincipalSet, request: RequestContext) -> _Match:
    if principals.wildcard:
        return _Match.NONE
    if request.service_principal is not None:
        listed = request.service_principal in principals.service
    else:
        needed = {account_root(request.principal_account), *_caller_arns(request)}
        listed = needed <= principals.aws
    return _Match.NONE if listed else _Match.DIRECT


def context_free(
    action: str, identity_policies: Sequence[Policy], resource_policy: Policy | None = None
) -> bool:
    """Whether the decision on `action` depends on nothing but the principal and the resource.

    True when no statement that can apply to `action` has a condition or a policy variable in
    its Resource: the decision can then be cached per (principal, action, resource, policies).
    """
    policies = [*identity_policies, *([resource_policy] if resource_policy is not None else [])]
    for policy in policies:
        for stmt in policy.statements:
            matched = stmt.action_globs.matches(action)
            if matched != bool(stmt.actions):
                continue
            if stmt.conditions:
                return False
            if (
                policy.variables_enabled
                and stmt.resource_globs is not None
                and stmt.resource_globs.has_variables
            ):
                return False
    return True
