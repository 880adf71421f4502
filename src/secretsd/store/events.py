"""Service events as rows: recorded in the transaction of the change they describe."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from secretsd.store.database import Tx


class ServiceEvent(NamedTuple):
    event_id: str
    time_ms: int
    account_id: str
    region: str
    event_source: str
    event_name: str
    resource_arn: str | None
    details: Mapping[str, Any]


def new_event_id(time_ms: int) -> str:
    """Sortable by time, unique without coordination: 12 hex digits of ms, 20 random."""
    return f"{time_ms:012x}{os.urandom(10).hex()}"


class EventRepository:
    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    def record(
        self,
        *,
        time_ms: int,
        account_id: str,
        region: str,
        event_source: str,
        event_name: str,
        resource_arn: str | None,
        details: Mapping[str, Any] | None = None,
    ) -> ServiceEvent:
        event = ServiceEvent(
            new_event_id(time_ms),
            time_ms,
            account_id,
            region,
            event_source,
            event_name,
            resource_arn,
            dict(details or {}),
        )
        self.tx.execute(
            "INSERT INTO service_events (event_id, time_ms, account_id, region, event_source,"
            " event_name, resource_arn, details_json) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                event.event_id,
                time_ms,
                account_id,
                region,
                event_source,
                event_name,
                resource_arn,
                json.dumps(event.details, sort_keys=True),
            ),
        )
        return event

    def for_resource(self, resource_arn: str, limit: int = 100) -> list[ServiceEvent]:
        rows = self.tx.all(
            "SELECT event_id, time_ms, account_id, region, event_source, event_name,"
            " resource_arn, details_json FROM service_events WHERE resource_arn = ?"
            " ORDER BY time_ms DESC, event_id DESC LIMIT ?",
            (resource_arn, limit),
        )
        return [_event(r) for r in rows]

    def latest_for_resource(
        self, resource_arn: str, event_names: Sequence[str]
    ) -> ServiceEvent | None:
        """The newest of a resource's events named `event_names` (service_events_by_resource)."""
        marks = ", ".join("?" for _ in event_names)
        rows = self.tx.all(
            "SELECT event_id, time_ms, account_id, region, event_source, event_name,"
            " resource_arn, details_json FROM service_events"
            f" WHERE resource_arn = ? AND event_name IN ({marks})"
            " ORDER BY time_ms DESC, event_id DESC LIMIT 1",
            (resource_arn, *event_names),
        )
        return _event(rows[0]) if rows else None

    def since(
        self, account_id: str, region: str, after_event_id: str, limit: int
    ) -> list[ServiceEvent]:
        """Events of an account and region after `after_event_id` ("" for the first), oldest
        first (event ids sort by time)."""
        rows = self.tx.all(
            "SELECT event_id, time_ms, account_id, region, event_source, event_name,"
            " resource_arn, details_json FROM service_events"
            " WHERE account_id = ? AND region = ? AND event_id > ? ORDER BY event_id LIMIT ?",
            (account_id, region, after_event_id, limit),
        )
        return [_event(r) for r in rows]


def _event(row: Any) -> ServiceEvent:
    return ServiceEvent(
        row["event_id"],
        row["time_ms"],
        row["account_id"],
        row["region"],
        row["event_source"],
        row["event_name"],
        row["resource_arn"],
        json.loads(row["details_json"]),
    )
