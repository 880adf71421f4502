"""AWS managed policies secretsd knows, with their real documents and metadata.

The documents are JSON files in `managed/` (package data); see `managed/README.md` for which
are verbatim and which trimmed. Metadata sources, per policy:

- AdministratorAccess: https://docs.aws.amazon.com/aws-managed-policy/latest/reference/AdministratorAccess.html
  and recorded `aws iam list-policies` output in public repositories (PolicyId
  ANPAIWMBCKSKIEE64ZLYK, v1, 2015-02-06T18:39:46Z for both dates).
- IAMFullAccess: https://docs.aws.amazon.com/aws-managed-policy/latest/reference/IAMFullAccess.html
  (created February 06, 2015, 18:40 UTC; edited June 21, 2019, 19:40 UTC; v2). PolicyId
  ANPAI7XKCFMBPM3QQRRVQ from recorded `list-policies` output in public repositories. The
  creation time's seconds are not published: unverified, recorded as :00.
- ReadOnlyAccess: https://docs.aws.amazon.com/aws-managed-policy/latest/reference/ReadOnlyAccess.html
  (v185, edited May 18, 2026, 15:42 UTC; its seconds unverified, recorded as :00). PolicyId
  ANPAILL3HVNFSB6DCOWYQ and CreateDate 2015-02-06T18:39:48 from recorded `get-policy` output.
- SecretsManagerReadWrite: https://docs.aws.amazon.com/aws-managed-policy/latest/reference/SecretsManagerReadWrite.html
  (created April 04, 2018, 18:05 UTC, documents v5 of February 22, 2024); the current default
  version v6, created 2026-08-25T23:37:10Z, as recorded by https://github.com/zoph-io/MAMIP.
  Its PolicyId could not be found in any public source: the value below is a placeholder in
  the right format (ANPA + 17 base-32 characters, derived from the ARN) -- unverified.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources

_ARN_PREFIX = "arn:aws:iam::aws:policy"


@dataclass(frozen=True, slots=True)
class ManagedPolicy:
    name: str
    arn: str
    policy_id: str
    path: str
    default_version_id: str
    description: str
    document: str  # the default version's JSON text
    create_date: datetime
    update_date: datetime


@dataclass(frozen=True, slots=True)
class _Meta:
    name: str
    policy_id: str
    default_version_id: str
    description: str
    create_date: datetime
    update_date: datetime
    path: str = "/"


def _utc(year: int, month: int, day: int, hour: int, minute: int, second: int) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


_META: tuple[_Meta, ...] = (
    _Meta(
        name="AdministratorAccess",
        policy_id="ANPAIWMBCKSKIEE64ZLYK",
        default_version_id="v1",
        description="Provides full access to AWS services and resources.",
        create_date=_utc(2015, 2, 6, 18, 39, 46),
        update_date=_utc(2015, 2, 6, 18, 39, 46),
    ),
    _Meta(
        name="IAMFullAccess",
        policy_id="ANPAI7XKCFMBPM3QQRRVQ",
        default_version_id="v2",
        description="Provides full access to IAM via the AWS Management Console.",
        create_date=_utc(2015, 2, 6, 18, 40, 0),
        update_date=_utc(2019, 6, 21, 19, 40, 0),
    ),
    _Meta(
        name="ReadOnlyAccess",
        policy_id="ANPAILL3HVNFSB6DCOWYQ",
        default_version_id="v185",
        description="Provides read-only access to AWS services and resources.",
        create_date=_utc(2015, 2, 6, 18, 39, 48),
        update_date=_utc(2026, 5, 18, 15, 42, 0),
    ),
    _Meta(
        name="SecretsManagerReadWrite",
        policy_id="ANPANTXH6XWVVOTTMMZBY",  # unverified placeholder, see the module docstring
        default_version_id="v6",
        # "exludes" is AWS's own spelling.
        description=(
            "Provides read/write access to AWS Secrets Manager via the AWS Management Console."
            " Note: this exludes IAM actions, so combine with IAMFullAccess if rotation"
            " configuration is required."
        ),
        create_date=_utc(2018, 4, 4, 18, 5, 0),
        update_date=_utc(2026, 8, 25, 23, 37, 10),
    ),
)


def _arn(meta: _Meta) -> str:
    return f"{_ARN_PREFIX}{meta.path}{meta.name}"


def _load() -> tuple[ManagedPolicy, ...]:
    folder = resources.files("secretsd.policy").joinpath("managed")
    return tuple(
        ManagedPolicy(
            name=meta.name,
            arn=_arn(meta),
            policy_id=meta.policy_id,
            path=meta.path,
            default_version_id=meta.default_version_id,
            description=meta.description,
            document=folder.joinpath(f"{meta.name}.json").read_text(encoding="utf-8"),
            create_date=meta.create_date,
            update_date=meta.update_date,
        )
        for meta in sorted(_META, key=lambda m: m.name)
    )


# Read once at import: four small files, and an immutable tuple rather than a mutable cache.
_POLICIES = _load()
_BY_ARN = {policy.arn: policy for policy in _POLICIES}


def aws_managed_policies() -> tuple[ManagedPolicy, ...]:
    """Every AWS managed policy secretsd serves, in name order."""
    return _POLICIES


def aws_managed_policy(arn: str) -> ManagedPolicy | None:
    """The AWS managed policy with this ARN (exact, case-sensitive as IAM ARNs are)."""
    return _BY_ARN.get(arn)
