"""Who is calling: the verified identity every authorization decision is made for."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType


def _no_tags() -> Mapping[str, str]:
    return MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Identity:
    """The caller behind a verified signature.

    `arn` is what AWS prints after "User:" in AccessDenied messages and returns from
    GetCallerIdentity (the user ARN, `arn:aws:sts::<acct>:assumed-role/<role>/<session>` for a
    role session, `arn:aws:iam::<acct>:root` for the root user). `principal_arn` is
    aws:PrincipalArn (the role ARN for a role session). `owner_kind`/`owner_name` say whose
    identity policies apply: ("user", name), ("role", name) or ("root", "").
    """

    account_id: str
    arn: str
    principal_arn: str
    principal_type: str  # aws:PrincipalType: "User" | "AssumedRole" | "Account"
    # aws:userid: AIDA... for users, "AROA...:<session>" for roles, the account id for root.
    userid: str
    owner_kind: str  # "user" | "role" | "root"
    owner_name: str
    access_key_id: str
    tags: Mapping[str, str] = field(default_factory=_no_tags)
    session_expires_ms: int | None = None
    session_issued_ms: int | None = None

    @property
    def username(self) -> str | None:
        """aws:username is present only for IAM users."""
        return self.owner_name if self.owner_kind == "user" else None

    @property
    def is_root(self) -> bool:
        return self.owner_kind == "root"

    @property
    def is_session(self) -> bool:
        return self.session_expires_ms is not None
