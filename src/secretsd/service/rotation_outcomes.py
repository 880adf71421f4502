"""How each secret's last rotation ended, from the service events rotation records
(RotationStarted, RotationSucceeded, RotationFailed, RotationAbandoned; ADR 0004).

For the console's rotations dashboard: a caller learns a secret's outcome only if allowed to
DescribeSecret it (the same check, resource policy included, as the API's)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from secretsd.errors import ServiceError
from secretsd.service.context import CallContext
from secretsd.service.secrets import SecretsService
from secretsd.store.database import Database
from secretsd.store.events import EventRepository

ROTATION_EVENTS = ("RotationStarted", "RotationSucceeded", "RotationFailed", "RotationAbandoned")


class RotationOutcome(NamedTuple):
    event_name: str
    time_ms: int

    @property
    def failed(self) -> bool:
        return self.event_name in ("RotationFailed", "RotationAbandoned")


class RotationOutcomes:
    def __init__(self, db: Database, secrets: SecretsService) -> None:
        self._db = db
        self._secrets = secrets

    def last(self, ctx: CallContext, arns: Iterable[str]) -> dict[str, RotationOutcome]:
        """The newest rotation event of each secret the caller may describe; secrets without
        one, or that the caller may not describe, are left out."""
        allowed: list[str] = []
        for arn in arns:
            try:
                self._secrets.describe_secret(ctx, secret_id=arn)
            except ServiceError:
                continue
            allowed.append(arn)
        found: dict[str, RotationOutcome] = {}
        with self._db.transaction() as tx:
            events = EventRepository(tx)
            for arn in allowed:
                event = events.latest_for_resource(arn, ROTATION_EVENTS)
                if event is not None:
                    found[arn] = RotationOutcome(event.event_name, event.time_ms)
        return found
