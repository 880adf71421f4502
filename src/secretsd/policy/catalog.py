"""The IAM actions AWS defines for the services secretsd speaks: Secrets Manager, KMS, IAM, STS.

Data (package files in `actions/`, one per service prefix) is AWS's Service Authorization
Reference:
- https://docs.aws.amazon.com/service-authorization/latest/reference/list_awssecretsmanager.html
- https://docs.aws.amazon.com/service-authorization/latest/reference/list_awskeymanagementservice.html
- https://docs.aws.amazon.com/service-authorization/latest/reference/list_awsidentityandaccessmanagementiam.html
- https://docs.aws.amazon.com/service-authorization/latest/reference/list_awssecuritytokenservice.html
as recorded by udondan/iam-floyd's generated statement providers (the docs search only returns
excerpts of those pages). Each file's `unverified` list names actions added from the pinned
botocore API model or from an operation's "Required permissions" text, which the recorded
reference predates; they are named after their API operation, as AWS names nearly every action.

Action names are case-insensitive in policies, and `*`/`?` wildcards match any run / one
character ("IAM JSON policy elements: Action",
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_elements_action.html).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from types import MappingProxyType
from typing import Any

SERVICES = ("secretsmanager", "kms", "iam", "sts", "lambda", "logs", "cloudtrail")
# secretsd's own actions (not AWS's): `secretsd:ReplicateFromPeer` (docs/replication.md).
OWN_SERVICES = ("secretsd",)


@dataclass(frozen=True, slots=True)
class ActionInfo:
    """A Secrets Manager action: its resource type ("Secret", or None where the reference lists
    none and the policy must say `"Resource": "*"`) and the condition keys usable with it (the
    action's own keys plus those of its resource type, spelt as the reference spells them)."""

    name: str
    resource_type: str | None
    condition_keys: frozenset[str]


def _read(prefix: str) -> dict[str, Any]:
    folder = resources.files("secretsd.policy").joinpath("actions")
    data: dict[str, Any] = json.loads(folder.joinpath(f"{prefix}.json").read_text(encoding="utf-8"))
    return data


def _load_actions() -> Mapping[str, frozenset[str]]:
    """Lower-cased action names per service (lower-cased) prefix."""
    return MappingProxyType(
        {
            prefix: frozenset(name.lower() for name in _read(prefix)["actions"])
            for prefix in (*SERVICES, *OWN_SERVICES)
        }
    )


def _load_secretsmanager() -> Mapping[str, ActionInfo]:
    raw: dict[str, dict[str, Any]] = _read("secretsmanager")["actions"]
    return MappingProxyType(
        {
            name.lower(): ActionInfo(
                name=name,
                resource_type=entry["resource_type"],
                condition_keys=frozenset(entry["condition_keys"]),
            )
            for name, entry in raw.items()
        }
    )


# Immutable tables, read once at import.
_ACTIONS = _load_actions()
_SECRETSMANAGER = _load_secretsmanager()


def service_actions(prefix: str) -> frozenset[str]:
    """Every action of a catalogued service, lower-cased (empty for any other prefix)."""
    return _ACTIONS.get(prefix.lower(), frozenset())


def catalogued_service(prefix: str) -> bool:
    """Whether `prefix` is one of the services whose full action list this module holds; for any
    other service `known_action` cannot say, and returns False."""
    return prefix.lower() in _ACTIONS


def _glob(pattern: str) -> re.Pattern[str]:
    text = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(text, re.IGNORECASE | re.DOTALL)


def known_action(action: str) -> bool:
    """Whether a policy's action names at least one real action of a catalogued service.

    `*` is known. `service:Name` is known when the service is catalogued and some action matches
    the name pattern (case-insensitively, with `*` and `?` wildcards); so `secretsmanager:Get*`
    is known and `secretsmanager:Fly*` is not. A wildcard service prefix (`*:GetSecretValue`)
    is known when some catalogued service has a matching action.
    """
    if action == "*":
        return True
    prefix, sep, name = action.partition(":")
    if not sep or not prefix or not name:
        return False
    name_re = _glob(name)
    if "*" in prefix or "?" in prefix:
        prefix_re = _glob(prefix)
        services = [s for s in _ACTIONS if prefix_re.fullmatch(s)]
    else:
        services = [prefix.lower()] if prefix.lower() in _ACTIONS else []
    if not ("*" in name or "?" in name):
        return any(name.lower() in _ACTIONS[s] for s in services)
    return any(name_re.fullmatch(candidate) for s in services for candidate in _ACTIONS[s])


def secretsmanager_action(name: str) -> ActionInfo | None:
    """The Secrets Manager action called `name` (`GetSecretValue` or `secretsmanager:GetSecretValue`,
    any case), or None."""
    prefix, sep, rest = name.partition(":")
    if sep:
        if prefix.lower() != "secretsmanager":
            return None
        name = rest
    return _SECRETSMANAGER.get(name.lower())


def secretsmanager_actions() -> tuple[ActionInfo, ...]:
    """Every Secrets Manager action, in name order."""
    return tuple(sorted(_SECRETSMANAGER.values(), key=lambda a: a.name))
