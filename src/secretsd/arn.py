"""Secret names and ARNs: validation, the 6-character suffix, and how a SecretId is looked up.

A SecretId is a name, a full ARN (`...:secret:<name>-<6 chars>`) or a partial ARN (the ARN
without the suffix). AWS cannot tell a partial ARN whose name ends in `-` plus six alphanumerics
from a full ARN, and treats it as a full one; so do we (aws-behaviour.md section 2).
"""

from __future__ import annotations

import re
import secrets
import string
from dataclasses import dataclass
from typing import Literal

from secretsd.errors import ServiceError

# AWS's exact text [S test_invalid_secret_name]. The trailing "!" is a real character, not
# punctuation: names of secrets owned by other services look like "rds!cluster-...".
SECRET_NAME_ERROR = (
    "Invalid name. Must be a valid name containing alphanumeric characters, "
    "or any of the following: -/_+=.@!"
)

NAME_MAX_LENGTH = 512
SUFFIX_LENGTH = 6
SUFFIX_ALPHABET = string.ascii_letters + string.digits

# CreateSecret docs: "ASCII letters, numbers, and the following characters: /_+=.@-".
_NAME_RE = re.compile(r"[A-Za-z0-9/_+=.@-]+")
# Names of secrets managed by other services contain "!" (`rds!cluster-<id>`, see the
# service-linked-secrets user guide; aws-cli#9812 and terraform-provider-aws#43073 show such
# names used as SecretId). They must be addressable; the documented charset for creating a
# secret has no "!".
_ID_NAME_RE = re.compile(r"[A-Za-z0-9/_+=.@!-]+")
_SUFFIXED_RE = re.compile(r".+-[A-Za-z0-9]{6}", re.DOTALL)
_ARN_RE = re.compile(
    r"arn:(?P<partition>aws(?:-[a-z]+)*):secretsmanager:"
    r"(?P<region>(?:[a-z]+-)+[0-9]+):(?P<account>[0-9]{12}):secret:(?P<rest>.+)"
)

SecretRefKind = Literal["name", "full_arn", "partial_arn"]


@dataclass(frozen=True)
class SecretRef:
    """How to look up a SecretId.

    `name` is the secret name the id denotes (for a full ARN, the part before the suffix).
    `arn` is set only for a full ARN; `region`, `account` and `partition` only for ARNs.
    """

    kind: SecretRefKind
    name: str
    arn: str | None = None
    suffix: str | None = None
    region: str | None = None
    account: str | None = None
    partition: str | None = None

    @property
    def is_arn(self) -> bool:
        return self.kind != "name"


def validate_secret_name(name: str, *, allow_service_prefix: bool = False) -> None:
    """Raise AWS's ValidationException unless `name` is a valid secret name.

    `allow_service_prefix` also accepts "!", which only appears in names of secrets managed by
    other AWS services; use it for SecretId lookups, not for CreateSecret.
    """
    pattern = _ID_NAME_RE if allow_service_prefix else _NAME_RE
    if not 1 <= len(name) <= NAME_MAX_LENGTH or pattern.fullmatch(name) is None:
        raise ServiceError("ValidationException", SECRET_NAME_ERROR)


def new_suffix() -> str:
    return "".join(secrets.choice(SUFFIX_ALPHABET) for _ in range(SUFFIX_LENGTH))


def format_partial_secret_arn(region: str, account: str, name: str, partition: str = "aws") -> str:
    return f"arn:{partition}:secretsmanager:{region}:{account}:secret:{name}"


def format_secret_arn(
    region: str, account: str, name: str, suffix: str, partition: str = "aws"
) -> str:
    return f"{format_partial_secret_arn(region, account, name, partition)}-{suffix}"


def has_suffix_shape(text: str) -> bool:
    """True if `text` ends in "-" plus six alphanumerics, i.e. could be read as a full ARN."""
    return _SUFFIXED_RE.fullmatch(text) is not None


def parse_secret_id(secret_id: str) -> SecretRef:
    """Classify a SecretId as a name, a full ARN or a partial ARN.

    Anything that is not a well-formed Secrets Manager ARN is validated as a name, so a
    malformed ARN fails on its ":" with the name error. AWS does the same: a truncated ARN
    (`arn:aws:secretsmanager:eu-west-2:111111111110:secret`) got exactly that
    ValidationException (kubernetes-external-secrets#84).
    """
    match = _ARN_RE.fullmatch(secret_id)
    if match is None:
        validate_secret_name(secret_id, allow_service_prefix=True)
        return SecretRef(kind="name", name=secret_id)

    rest = match["rest"]
    region, account, partition = match["region"], match["account"], match["partition"]
    if has_suffix_shape(rest):
        name = rest[: -SUFFIX_LENGTH - 1]
        validate_secret_name(name, allow_service_prefix=True)
        return SecretRef(
            kind="full_arn",
            name=name,
            arn=secret_id,
            suffix=rest[-SUFFIX_LENGTH:],
            region=region,
            account=account,
            partition=partition,
        )
    validate_secret_name(rest, allow_service_prefix=True)
    return SecretRef(
        kind="partial_arn", name=rest, region=region, account=account, partition=partition
    )
