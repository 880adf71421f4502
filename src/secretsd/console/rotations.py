"""The rotations dashboard's view of ListSecrets entries: which secrets' rotations failed, are
overdue, are due soon, or are scheduled.

Only what ListSecrets answers counts (RotationEnabled, NextRotationDate, LastRotatedDate,
RotationRules, SecretVersionsToStages), so the dashboard shows exactly what the signed-in user
may list."""

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


def classify(entry: Mapping[str, Any], now: float) -> RotationRow | None:
    """One ListSecrets entry at `now` (epoch seconds); None when it has nothing to show: rotation
    off and no unfinished rotation."""
    enabled = entry.get("RotationEnabled") is True
    pending = pending_only(entry.get("SecretVersionsToStages"))
    next_rotation = _epoch(entry.get("NextRotationDate"))
    if not enabled and not pending:
        return None
    status: Status
    if pending:
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
    )


def dashboard(entries: Iterable[Mapping[str, Any]], now: float) -> list[RotationRow]:
    """Rows worst first (failed, overdue, due, scheduled), soonest rotation first in each."""
    rows = [row for row in (classify(e, now) for e in entries) if row is not None]
    return sorted(
        rows,
        key=lambda r: (
            STATUSES.index(r.status),
            r.next_rotation if r.next_rotation is not None else float("inf"),
            r.name,
        ),
    )
