"""Request rate quotas as AWS Secrets Manager applies them: token buckets per calling account,
region and quota, where a quota may be shared by several operations ("combined rate of ...").

Defaults are AWS's published per-account, per-Region quotas ("AWS Secrets Manager quotas" in the
Secrets Manager User Guide). Like AWS, the account charged is the caller's, not the secret
owner's. Off unless enabled (`--throttle`); rates can be overridden per quota.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

# (operations sharing one quota, requests per second)
DEFAULT_QUOTAS: tuple[tuple[tuple[str, ...], float], ...] = (
    (("GetSecretValue", "DescribeSecret"), 10_000.0),
    (("BatchGetSecretValue",), 100.0),
    (("ListSecrets",), 100.0),
    (
        (
            "PutSecretValue",
            "RemoveRegionsFromReplication",
            "ReplicateSecretToRegions",
            "StopReplicationToReplica",
            "UpdateSecret",
            "UpdateSecretVersionStage",
        ),
        50.0,
    ),
    (
        (
            "DeleteResourcePolicy",
            "GetResourcePolicy",
            "PutResourcePolicy",
            "ValidateResourcePolicy",
        ),
        50.0,
    ),
    (("RestoreSecret",), 50.0),
    (("RotateSecret", "CancelRotateSecret"), 50.0),
    (("TagResource", "UntagResource"), 50.0),
    (("CreateSecret",), 50.0),
    (("DeleteSecret",), 50.0),
    (("ListSecretVersionIds",), 50.0),
    (("GetRandomPassword",), 50.0),
)


class QuotaConfigError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Quota:
    name: str  # the first operation of the group names it
    rate: float  # tokens per second, for this process
    burst: float  # bucket size: up to one second's worth, at least one request


def quotas(overrides: str = "", workers: int = 1) -> dict[str, Quota]:
    """Operation -> its quota, AWS's defaults with `overrides` ("Operation=rate,...") applied to
    the quota each named operation belongs to, divided among `workers` processes (each keeps
    its own buckets)."""
    rates = {ops: rate for ops, rate in DEFAULT_QUOTAS}
    group_of = {op: ops for ops, _ in DEFAULT_QUOTAS for op in ops}
    for item in filter(None, (part.strip() for part in overrides.split(","))):
        op, sep, raw = item.partition("=")
        op = op.strip()
        if not sep or op not in group_of:
            raise QuotaConfigError(
                f"throttle rate {item!r}: expected Operation=rate with one of"
                f" {', '.join(sorted(group_of))}"
            )
        try:
            rate = float(raw)
        except ValueError:
            rate = -1.0
        if not rate > 0:
            raise QuotaConfigError(f"throttle rate {item!r}: the rate must be a positive number")
        rates[group_of[op]] = rate
    result: dict[str, Quota] = {}
    for ops, rate in rates.items():
        per_process = rate / max(1, workers)
        quota = Quota(ops[0], per_process, max(1.0, per_process))
        for op in ops:
            result[op] = quota
    return result


@dataclass(slots=True)
class _Bucket:
    tokens: float
    stamp: float


@dataclass
class Throttle:
    """Token buckets keyed by (account, region, quota). Not thread-safe: one per event loop."""

    by_operation: Mapping[str, Quota]
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[tuple[str, str, str], _Bucket] = field(default_factory=dict)

    def allow(self, account: str, region: str, operation: str) -> bool:
        quota = self.by_operation.get(operation)
        if quota is None:
            return True
        now = self.clock()
        key = (account, region, quota.name)
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(quota.burst, now)
        else:
            bucket.tokens = min(quota.burst, bucket.tokens + (now - bucket.stamp) * quota.rate)
            bucket.stamp = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return True
        return False
