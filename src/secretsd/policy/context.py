"""The request context a decision is made on: who, what, on which resource, with which keys.

Global keys derived from the principal (aws:PrincipalArn, aws:PrincipalAccount, aws:PrincipalType,
aws:PrincipalTag/*, aws:username, aws:userid) are filled in here, as AWS's "AWS global condition
context keys" page describes them; keys passed in `condition_keys` take precedence.
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import MappingProxyType

from secretsd.policy.conditions import ContextValues

ContextValue = str | bool | int | float | datetime | bytes | Sequence[str]
_SCALARS = (str, bool, int, float, datetime, bytes)


def _no_tags() -> Mapping[str, str]:
    return MappingProxyType({})


def _no_keys() -> Mapping[str, ContextValue]:
    return MappingProxyType({})


def request_tag_keys(tags: Sequence[tuple[str, str]]) -> dict[str, ContextValue]:
    """aws:RequestTag/<key> for each tag a request sets, and aws:TagKeys; none for no tags."""
    if not tags:
        return {}
    keys: dict[str, ContextValue] = {f"aws:RequestTag/{k}": v for k, v in tags}
    keys["aws:TagKeys"] = [k for k, _ in tags]
    return keys


def account_root(account: str) -> str:
    return f"arn:aws:iam::{account}:root"


@dataclass(frozen=True, slots=True)
class RequestContext:
    """One authorization request.

    `principal_arn` is aws:PrincipalArn: the user ARN, the *role* ARN for an assumed-role session,
    or `arn:aws:iam::<account>:root` for the root user. `caller_arn` is the ARN AWS prints after
    "User:" in AccessDenied messages (the `arn:aws:sts::...:assumed-role/Role/session` ARN for a
    session); it defaults to `principal_arn`. `principal_type` is aws:PrincipalType: "Account",
    "User", "FederatedUser", "AssumedRole" or "Anonymous". `resource` is `"*"` for actions that
    take no resource (ListSecrets). `resource_account` None means the caller's own account.
    """

    action: str
    principal_arn: str
    principal_account: str
    resource: str = "*"
    resource_account: str | None = None
    caller_arn: str | None = None
    principal_type: str = "User"
    principal_tags: Mapping[str, str] = field(default_factory=_no_tags)
    username: str | None = None
    userid: str | None = None
    service_principal: str | None = None
    condition_keys: Mapping[str, ContextValue] = field(default_factory=_no_keys)
    keys: Mapping[str, ContextValues] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        keys: dict[str, ContextValues] = {
            "aws:principalarn": (self.principal_arn,),
            "aws:principalaccount": (self.principal_account,),
            "aws:principaltype": (self.principal_type,),
        }
        if self.username is not None:
            keys["aws:username"] = (self.username,)
        if self.userid is not None:
            keys["aws:userid"] = (self.userid,)
        if self.principal_tags:
            keys["aws:principaltagkeys"] = tuple(self.principal_tags)
            for tag, tag_value in self.principal_tags.items():
                keys[f"aws:principaltag/{tag.lower()}"] = (tag_value,)
        for key, value in self.condition_keys.items():
            keys[key.lower()] = (value,) if isinstance(value, _SCALARS) else tuple(value)
        # A plain dict: the dataclass is frozen and never hands it out for mutation.
        object.__setattr__(self, "keys", keys)

    @property
    def same_account(self) -> bool:
        return self.resource_account is None or self.resource_account == self.principal_account

    @property
    def shown_arn(self) -> str:
        return self.caller_arn or self.principal_arn

    def variable(self, name: str) -> str | None:
        """A policy variable's value: present and single-valued, else None."""
        values = self.keys.get(name)
        if not values or len(values) != 1:
            return None
        value = values[0]
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str):
            return value
        if isinstance(value, int | float):
            return str(value)
        return None
