"""Resource-policy analysis as Secrets Manager does it: public access and policy validation.

Secrets Manager decides "broad access" with Zelkova, the automated reasoning engine behind IAM
Access Analyzer: "Sends a call to Zelkova ... to ensure your resource policy does not allow broad
access to your secret, for example policies that use a wildcard for the principal"
(https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_ValidateResourcePolicy.html;
BlockPublicPolicy and PublicPolicyException:
https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_PutResourcePolicy.html).
Zelkova itself is not published, so this module implements the definition AWS does publish for
the same engine, S3's "The meaning of 'public'": a policy is public unless it grants access only
to fixed principals, or only under "a fixed aws:SourceArn / aws:SourceVpc / aws:SourceVpce /
aws:SourceOwner / aws:SourceAccount", "a fixed value of aws:userid outside the pattern
'AROLEID:*'", or "limits access to a set of CIDRs using aws:SourceIp"
(https://docs.aws.amazon.com/AmazonS3/latest/userguide/access-control-block-public-access.html#access-control-block-public-access-policy-status).
Added to that list, because they confine callers to named accounts or an organization just as
firmly and Access Analyzer reports such grants as cross-account rather than public:
aws:PrincipalAccount, aws:PrincipalArn, aws:PrincipalOrgID, aws:PrincipalOrgPaths,
aws:SourceOrgID, aws:SourceOrgPaths -- unverified against Secrets Manager itself.

What this implements (each rule is tested in tests/unit/test_policy_analysis.py):
- Only Allow statements grant; a Deny never makes a policy public.
- A statement is broad when its Principal is `*`, `{"AWS": "*"}`, any principal type with `*`,
  or an AWS principal ARN whose account is a wildcard (`arn:aws:iam::*:root`); an Allow with
  NotPrincipal grants everyone not listed, anonymous callers included
  (https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_notprincipal.html).
- It must grant at least one Secrets Manager action (Action/NotAction are expanded against the
  action catalogue): `"Action": "s3:*"` on a secret grants nothing on it.
- A condition restricts it when a positive operator (StringEquals[IgnoreCase], StringLike,
  ArnEquals, ArnLike, IpAddress; optionally ForAnyValue:) pins one of the keys above to fixed
  values. It does not when the operator is `...IfExists` or `ForAllValues:` (both are true when
  the key is absent, so an anonymous caller passes), negated, or Null, or when a value is
  wildcarded where the restriction lives (`StringLike aws:PrincipalAccount "*"`, an ARN with a
  `*` account, `0.0.0.0/0`). Under StringEquals/ArnEquals a `*` is a literal character and still
  pins the key.
- A Deny for every principal that covers all the Secrets Manager actions the broad Allow grants,
  on at least the same resources, and whose conditions are all negated restrictions
  (`StringNotEquals aws:PrincipalOrgID o-...`), confines the Allow to callers that meet one of
  those restrictions: the pattern AWS recommends for data perimeters.
- Resource ARNs are not narrowed further: the function does not know which secret it guards.

Where a finding's CheckName/ErrorMessage wording is AWS's, it is cited at the constant.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

from secretsd.policy.catalog import catalogued_service, known_action, service_actions
from secretsd.policy.conditions import ConditionClause
from secretsd.policy.document import Policy, PrincipalSet, Statement, parse_policy

_POSITIVE_OPERATORS = frozenset(
    {"StringEquals", "StringEqualsIgnoreCase", "StringLike", "ArnEquals", "ArnLike", "IpAddress"}
)
_NEGATED_OPERATORS = frozenset(
    {
        "StringNotEquals",
        "StringNotEqualsIgnoreCase",
        "StringNotLike",
        "ArnNotEquals",
        "ArnNotLike",
        "NotIpAddress",
    }
)
_LIKE_OPERATORS = frozenset({"StringLike", "StringNotLike", "ArnLike", "ArnNotLike"})

_ACCOUNT_KEYS = frozenset({"aws:principalaccount", "aws:sourceaccount", "aws:sourceowner"})
_ARN_KEYS = frozenset({"aws:principalarn", "aws:sourcearn"})
_EXACT_KEYS = frozenset(
    {"aws:principalorgid", "aws:sourceorgid", "aws:sourcevpc", "aws:sourcevpce"}
)
_ORG_PATH_KEYS = frozenset({"aws:principalorgpaths", "aws:sourceorgpaths"})
_USERID_KEY = "aws:userid"
_SOURCE_IP_KEY = "aws:sourceip"
RESTRICTING_KEYS = (
    _ACCOUNT_KEYS | _ARN_KEYS | _EXACT_KEYS | _ORG_PATH_KEYS | {_USERID_KEY, _SOURCE_IP_KEY}
)

_SECRETSMANAGER = "secretsmanager"
_VARIABLE = re.compile(r"\$\{[^}]*\}")
_USERID_WITH_ANY_SESSION = re.compile(r"^[A-Za-z0-9]+:\*$")
_VARIABLE_MARK = "\x00"  # stands in for a policy variable while a value is inspected
_LIKE_WILDCARDS = "*?\x00"

# Secrets Manager's ValidateResourcePolicy returns ValidationErrors entries of {CheckName,
# ErrorMessage}; AWS documents neither field's values
# (https://docs.aws.amazon.com/secretsmanager/latest/apireference/API_ValidationErrorsEntry.html).
# Unverified: the public-access check's name and message (kept as secretsd already answered).
PUBLIC_ACCESS_CHECK = "BLOCK_PUBLIC_POLICY"
PUBLIC_ACCESS_MESSAGE = "The resource policy grants broad access to the secret."
# IAM Access Analyzer's policy-validation code and wording for an action no service defines
# ("The action s3:ListBuckets does not exist.", issueCode INVALID_ACTION, recorded in
# awslabs/terraform-iam-policy-validator iam_check/doc/example_report_3.md;
# https://docs.aws.amazon.com/IAM/latest/UserGuide/access-analyzer-reference-policy-checks.html#access-analyzer-reference-policy-checks-error-invalid-action).
# Unverified: that Secrets Manager reports it this way.
INVALID_ACTION_CHECK = "INVALID_ACTION"


@dataclass(frozen=True, slots=True)
class ValidationFinding:
    """One ValidationErrors entry of ValidateResourcePolicy."""

    check_name: str
    error_message: str

    def as_entry(self) -> dict[str, str]:
        return {"CheckName": self.check_name, "ErrorMessage": self.error_message}


def validate_resource_policy(text: str) -> list[ValidationFinding]:
    """What ValidateResourcePolicy reports for `text`; an empty list means it passed.

    A document the grammar rejects raises `PolicySyntaxError`: AWS answers those with
    MalformedPolicyDocumentException ("The resource policy has syntax errors."), not with a
    ValidationErrors entry (API_ValidateResourcePolicy.html, "Errors").
    """
    return validation_findings(parse_policy(text, kind="resource"))


def validation_findings(policy: Policy) -> list[ValidationFinding]:
    """The findings for an already parsed resource policy (see `validate_resource_policy`)."""
    findings = [
        ValidationFinding(INVALID_ACTION_CHECK, f"The action {action} does not exist.")
        for action in unknown_actions(policy)
    ]
    if grants_public_access(policy):
        findings.append(ValidationFinding(PUBLIC_ACCESS_CHECK, PUBLIC_ACCESS_MESSAGE))
    return findings


def unknown_actions(policy: Policy) -> list[str]:
    """Actions (and NotActions) of catalogued services that name no real action, in document
    order without repeats. Other services' actions, and wildcard service prefixes, are not
    judged: the catalogue cannot."""
    seen: dict[str, None] = {}
    for statement in policy.statements:
        for action in statement.actions + statement.not_actions:
            prefix = action.partition(":")[0]
            if action in seen or not catalogued_service(prefix):
                continue
            if not known_action(action):
                seen[action] = None
    return list(seen)


def grants_public_access(policy: Policy) -> bool:
    """Whether the resource policy grants broad ("public") access to the secret: what
    PutResourcePolicy with BlockPublicPolicy refuses with PublicPolicyException."""
    denies = [s for s in policy.statements if s.effect == "Deny" and _confines(s)]
    for statement in policy.statements:
        if statement.effect != "Allow" or not _broad_principal(statement):
            continue
        granted = _secretsmanager_actions(statement)
        if not granted or _restricted(statement.conditions):
            continue
        if any(_deny_covers(deny, statement, granted) for deny in denies):
            continue
        return True
    return False


def _broad_principal(statement: Statement) -> bool:
    if statement.not_principal is not None:
        return True
    principal = statement.principal
    return principal is not None and _wildcard_principal(principal)


def _wildcard_principal(principal: PrincipalSet) -> bool:
    if principal.wildcard:
        return True
    if any(_has_wildcard(_account_of(_VARIABLE.sub("*", arn))) for arn in principal.aws):
        return True
    others = principal.service | principal.federated | principal.canonical_user
    return any(value == "*" for value in others)


def _account_of(arn: str) -> str:
    parts = arn.split(":", 5)
    return parts[4] if len(parts) > 4 else arn


def _has_wildcard(text: str) -> bool:
    return "*" in text or "?" in text or "${" in text


def _secretsmanager_actions(statement: Statement) -> frozenset[str]:
    """The Secrets Manager actions (lower-cased names) the statement's Action/NotAction covers."""
    globs = statement.action_globs
    matched = frozenset(
        name for name in service_actions(_SECRETSMANAGER) if globs.matches(f"secretsmanager:{name}")
    )
    if statement.actions:
        return matched
    return service_actions(_SECRETSMANAGER) - matched


def _restricted(conditions: Iterable[ConditionClause]) -> bool:
    """Conditions are AND'd, so one restricting clause confines the whole statement."""
    return any(_restricting(clause, negated=False) for clause in conditions)


def _restricting(clause: ConditionClause, *, negated: bool) -> bool:
    """Whether `clause` pins a restricting key to fixed values. With `negated`, the clause must
    be the negated form (a Deny's "not from my organization")."""
    op = clause.op
    if clause.key not in RESTRICTING_KEYS or op.if_exists or op.set_op == "ForAllValues":
        return False
    if op.base not in (_NEGATED_OPERATORS if negated else _POSITIVE_OPERATORS):
        return False
    if clause.key == _SOURCE_IP_KEY:
        if op.base not in ("IpAddress", "NotIpAddress"):
            return False
        return bool(clause.values) and all(_narrow_cidr(v) for v in clause.values)
    if op.base in ("IpAddress", "NotIpAddress"):
        return False
    like = op.base in _LIKE_OPERATORS
    return bool(clause.values) and all(_fixed(clause.key, v, like=like) for v in clause.values)


def _fixed(key: str, value: str, *, like: bool) -> bool:
    """Whether `value` names a fixed set of callers for `key`. Wildcards only widen a value
    under the Like operators; policy variables always do (they take the caller's own value)."""
    text = _VARIABLE.sub(_VARIABLE_MARK, value)
    wild_chars = _LIKE_WILDCARDS if like else _VARIABLE_MARK

    def wild(part: str) -> bool:
        return any(c in part for c in wild_chars)

    if not text:
        return False
    if not wild(text):
        return True
    if key in _ARN_KEYS:
        parts = text.split(":", 5)
        return len(parts) == 6 and bool(parts[4]) and not wild(parts[4])
    if key in _ORG_PATH_KEYS:
        organization = text.split("/", 1)[0]
        return bool(organization) and not wild(organization)
    if key == _USERID_KEY:
        # S3: "a fixed value of aws:userid outside the pattern 'AROLEID:*'" -- read here as
        # admitting one role's sessions (`AROA...:*`) as fixed. Unverified.
        return like and _USERID_WITH_ANY_SESSION.fullmatch(text) is not None
    return False


def _narrow_cidr(value: str) -> bool:
    """A CIDR that is not the whole address space. How broad a range S3/Zelkova still calls
    public is not documented; only /0 is treated as public here (unverified)."""
    try:
        network = ipaddress.ip_network(value.strip(), strict=False)
    except ValueError:
        return False
    return network.prefixlen > 0


def _confines(deny: Statement) -> bool:
    """A Deny for every caller whose conditions are all negated restrictions (or that has none,
    and so denies outright)."""
    principal = deny.principal
    if principal is None or not _wildcard_principal(principal):
        return False
    return all(_restricting(clause, negated=True) for clause in deny.conditions)


def _deny_covers(deny: Statement, allow: Statement, granted: frozenset[str]) -> bool:
    if not granted <= _secretsmanager_actions(deny):
        return False
    globs = deny.resource_globs
    if globs is None or deny.resources is None:
        return False  # a NotResource Deny leaves some resource uncovered
    if globs.match_all or "*" in deny.resources:
        return True
    if allow.resources is None:
        return False
    # Treat the Allow's patterns as text: a Deny pattern matching the pattern itself covers
    # every resource the Allow's pattern can match.
    return all(globs.matches(resource) for resource in allow.resources)
