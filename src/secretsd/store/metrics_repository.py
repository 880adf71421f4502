"""Counts for /metrics, read at scrape time (no secret names: only numbers and fixed states)."""

from __future__ import annotations

from dataclasses import dataclass

from secretsd.store.database import Tx


@dataclass(frozen=True, slots=True)
class StoreCounts:
    scheduled_deletions: int  # secrets in their recovery window
    purge_backlog: int  # secrets whose recovery window has ended, not yet purged
    replicas_by_status: dict[str, int]
    service_events: dict[tuple[str, str], int]  # (event source, event name) -> count


def store_counts(tx: Tx, now_ms: int) -> StoreCounts:
    row = tx.one(
        "SELECT COUNT(*) AS scheduled,"
        " SUM(CASE WHEN deletion_ms <= ? THEN 1 ELSE 0 END) AS due"
        " FROM secrets WHERE deletion_ms IS NOT NULL",
        (now_ms,),
    )
    replicas = tx.all("SELECT status, COUNT(*) AS n FROM replicas GROUP BY status")
    events = tx.all(
        "SELECT event_source, event_name, COUNT(*) AS n FROM service_events"
        " GROUP BY event_source, event_name"
    )
    return StoreCounts(
        scheduled_deletions=int(row["scheduled"] or 0) if row else 0,
        purge_backlog=int(row["due"] or 0) if row else 0,
        replicas_by_status={r["status"]: int(r["n"]) for r in replicas},
        service_events={(r["event_source"], r["event_name"]): int(r["n"]) for r in events},
    )
