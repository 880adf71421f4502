"""The rotations dashboard's view of ListSecrets entries: which secrets' rotations failed, are
overdue, are due soon, or are scheduled.

What ListSecrets answers (RotationEnabled, NextRotationDate, LastRotatedDate, RotationRules,
SecretVersionsToStages) and, for the secrets it shows, the last rotation event recorded
(service/rotation_outcomes.py), so the dashboard shows exactly what the signed-in user may list
and describe."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

Status = Literal["failed", "overdue", "due", "scheduled"]
STATUSES: tuple[Status, ...] = ("failed", "overdue", "due", "scheduled")
DUE_WITHIN_SECONDS = 7 * 24 * 3600


@dataclass(frozen=True, slots=True)
class RotationRow:
    name: str
    arn: str
    status: Status
    rotation_enabled: bool
    next_rotation: float | None
    last_rotated: float | None
    schedule: str | None
    # Versions holding AWSPENDING without AWSCURRENT: a rotation that did not finish.
    pending_versions: tuple[str, ...]
    # When the last rotation event recorded was a failure (RotationFailed/RotationAbandoned).
    failed_at: float | None = None


def pending_only(versions_to_stages: Mapping[str, Iterable[str]] | None) -> tuple[str, ...]:
    return tuple(
        sorted(
            version
            for version, stages in (versions_to_stages or {}).items()
            if "AWSPENDING" in stages and "AWSCURRENT" not in stages
        )
    )


def _epoch(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _schedule(rules: object) -> str | None:
    if not isinstance(rules, Mapping):
        return None
    expression = rules.get("ScheduleExpression")
    if isinstance(expression, str) and expression:
        return expression
    days = rules.get("AutomaticallyAfterDays")
    return f"every {days} days" if isinstance(days, int) else None


def needs_outcome(entry: Mapping[str, Any]) -> bool:
    """Entries whose last rotation event the dashboard asks for."""
    return entry.get("RotationEnabled") is True or bool(
        pending_only(entry.get("SecretVersionsToStages"))
    )


def classify(
    entry: Mapping[str, Any], now: float, failed_at: float | None = None
) -> RotationRow | None:
    """One ListSecrets entry at `now` (epoch seconds), with the time its last rotation event
    reported a failure if it did; None when it has nothing to show: rotation off and no
    unfinished or failed rotation."""
    enabled = entry.get("RotationEnabled") is True
    pending = pending_only(entry.get("SecretVersionsToStages"))
    next_rotation = _epoch(entry.get("NextRotationDate"))
    if not enabled and not pending and failed_at is None:
        return None
    status: Status
    if pending or failed_at is not None:
        status = "failed"
    elif next_rotation is not None and next_rotation < now:
        status = "overdue"
    elif next_rotation is not None and next_rotation <= now + DUE_WITHIN_SECONDS:
        status = "due"
    else:
        status = "scheduled"
    return RotationRow(
        name=str(entry.get("Name", "")),
        arn=str(entry.get("ARN", "")),
        status=status,
        rotation_enabled=enabled,
        next_rotation=next_rotation,
        last_rotated=_epoch(entry.get("LastRotatedDate")),
        schedule=_schedule(entry.get("RotationRules")),
        pending_versions=pending,
        failed_at=failed_at,
    )


def dashboard(
    entries: Iterable[Mapping[str, Any]],
    now: float,
    failed_at: Mapping[str, float] | None = None,
) -> list[RotationRow]:
    """Rows worst first (failed, overdue, due, scheduled), soonest rotation first in each.
    `failed_at`: by ARN, when a secret's last rotation event was a failure."""
    failures = failed_at or {}
    rows = [
        row
        for row in (classify(e, now, failures.get(str(e.get("ARN", "")))) for e in entries)
        if row is not None
    ]
    return sorted(
        rows,
        key=lambda r: (
            STATUSES.index(r.status),
            r.next_rotation if r.next_rotation is not None else float("inf"),
            r.name,
        ),
    )
