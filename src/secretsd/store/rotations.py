"""Rotation configuration and rotations in progress (migration 0008)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from secretsd.store.database import Row, Tx

_COLUMNS = (
    "secret_arn, account_id, region, lambda_arn, rules_json, enabled, last_rotated_ms,"
    " window_start_ms, window_end_ms, pending_token, pending_mode, attempts, retry_at_ms,"
    " claim_holder, claim_expires_ms, claim_fence"
)
_NAMES = tuple(c.strip() for c in _COLUMNS.split(","))


@dataclass(frozen=True, slots=True)
class RotationRecord:
    secret_arn: str
    account_id: str
    region: str
    lambda_arn: str
    rules: dict[str, Any]
    enabled: bool
    last_rotated_ms: int | None
    window_start_ms: int | None
    window_end_ms: int | None
    pending_token: str | None
    pending_mode: str | None  # "rotate" | "test"
    attempts: int
    retry_at_ms: int | None
    claim_holder: str | None
    claim_expires_ms: int
    claim_fence: int

    def with_changes(self, **changes: Any) -> RotationRecord:
        return replace(self, **changes)


def _record(r: Row) -> RotationRecord:
    return RotationRecord(
        secret_arn=r["secret_arn"],
        account_id=r["account_id"],
        region=r["region"],
        lambda_arn=r["lambda_arn"],
        rules=json.loads(r["rules_json"]),
        enabled=bool(r["enabled"]),
        last_rotated_ms=r["last_rotated_ms"],
        window_start_ms=r["window_start_ms"],
        window_end_ms=r["window_end_ms"],
        pending_token=r["pending_token"],
        pending_mode=r["pending_mode"],
        attempts=r["attempts"],
        retry_at_ms=r["retry_at_ms"],
        claim_holder=r["claim_holder"],
        claim_expires_ms=r["claim_expires_ms"],
        claim_fence=r["claim_fence"],
    )


def _values(rec: RotationRecord) -> tuple[Any, ...]:
    return (
        rec.secret_arn,
        rec.account_id,
        rec.region,
        rec.lambda_arn,
        json.dumps(rec.rules, sort_keys=True),
        int(rec.enabled),
        rec.last_rotated_ms,
        rec.window_start_ms,
        rec.window_end_ms,
        rec.pending_token,
        rec.pending_mode,
        rec.attempts,
        rec.retry_at_ms,
        rec.claim_holder,
        rec.claim_expires_ms,
        rec.claim_fence,
    )


class RotationRepository:
    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    def get(self, secret_arn: str, *, for_update: bool = False) -> RotationRecord | None:
        lock = " FOR UPDATE" if for_update and self.tx.dialect == "postgres" else ""
        row = self.tx.one(
            f"SELECT {_COLUMNS} FROM rotations WHERE secret_arn = ?{lock}", (secret_arn,)
        )
        return None if row is None else _record(row)

    def for_many(self, secret_arns: Sequence[str]) -> dict[str, RotationRecord]:
        if not secret_arns:
            return {}
        marks = ", ".join("?" for _ in secret_arns)
        rows = self.tx.all(
            f"SELECT {_COLUMNS} FROM rotations WHERE secret_arn IN ({marks})", tuple(secret_arns)
        )
        return {r["secret_arn"]: _record(r) for r in rows}

    def put(self, rec: RotationRecord) -> None:
        """Insert or replace the whole row (callers hold it FOR UPDATE, or it is new)."""
        assignments = ", ".join(f"{n} = excluded.{n}" for n in _NAMES[1:])
        marks = ", ".join("?" for _ in _NAMES)
        self.tx.execute(
            f"INSERT INTO rotations ({_COLUMNS}) VALUES ({marks})"
            f" ON CONFLICT (secret_arn) DO UPDATE SET {assignments}",
            _values(rec),
        )

    def replace_if_fence(self, rec: RotationRecord, expected_fence: int) -> bool:
        """Write the row only if its fence is still `expected_fence` (nobody claimed it since
        it was read): the one statement that decides who runs a rotation."""
        assignments = ", ".join(f"{n} = ?" for n in _NAMES[1:])
        return (
            self.tx.rowcount(
                f"UPDATE rotations SET {assignments} WHERE secret_arn = ? AND claim_fence = ?",
                (*_values(rec)[1:], rec.secret_arn, expected_fence),
            )
            == 1
        )

    def delete(self, secret_arn: str) -> None:
        self.tx.execute("DELETE FROM rotations WHERE secret_arn = ?", (secret_arn,))

    def due(self, now_ms: int, limit: int) -> list[RotationRecord]:
        """Rotations to start (enabled, window open) or to resume (in progress, unclaimed,
        retry time reached)."""
        rows = self.tx.all(
            f"SELECT {_COLUMNS} FROM rotations WHERE claim_expires_ms <= ? AND ("
            " (pending_token IS NULL AND enabled = 1 AND window_start_ms <= ?)"
            " OR (pending_token IS NOT NULL AND retry_at_ms IS NOT NULL AND retry_at_ms <= ?))"
            " ORDER BY secret_arn LIMIT ?",
            (now_ms, now_ms, now_ms, limit),
        )
        return [_record(r) for r in rows]
