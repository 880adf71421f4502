"""CloudTrail LookupEvents over the audit trail: the caller's account and region, newest first.

As AWS: at most one lookup attribute, a 90-day default window, MaxResults up to 50 (the
default), a NextToken bound to the request's filters. Authorized as cloudtrail:LookupEvents.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from secretsd.clock import Clock
from secretsd.errors import ServiceError
from secretsd.service.authorization import Authorizer
from secretsd.service.context import CallContext
from secretsd.service.pagination import TokenCodec
from secretsd.store.audit_repository import LOOKUP_COLUMNS, AuditRepository, StoredEvent
from secretsd.store.database import Database

DEFAULT_WINDOW_MS = 90 * 86_400_000
MAX_RESULTS = 50


@dataclass(frozen=True, slots=True)
class LookupPage:
    events: list[StoredEvent]
    next_token: str | None


class CloudTrailService:
    def __init__(
        self, db: Database, clock: Clock, authorizer: Authorizer, tokens: TokenCodec
    ) -> None:
        self._db = db
        self._clock = clock
        self._authorizer = authorizer
        self._tokens = tokens

    def lookup_events(
        self,
        ctx: CallContext,
        *,
        attributes: Sequence[tuple[str, str]],
        start: datetime | None,
        end: datetime | None,
        category: str | None,
        max_results: int | None,
        next_token: str | None,
    ) -> LookupPage:
        self._authorizer.require(ctx, "cloudtrail:LookupEvents")
        if len(attributes) > 1:
            raise ServiceError(
                "InvalidLookupAttributesException",
                "You can only specify one lookup attribute.",
            )
        attribute = attributes[0] if attributes else None
        if attribute is not None:
            if attribute[0] not in LOOKUP_COLUMNS:
                raise ServiceError(
                    "InvalidLookupAttributesException",
                    f"Invalid attribute key: {attribute[0]}.",
                )
            if attribute[0] == "ReadOnly" and attribute[1] not in ("true", "false"):
                raise ServiceError(
                    "InvalidLookupAttributesException",
                    "The value of the ReadOnly attribute must be true or false.",
                )
        now = self._clock.now_ms()
        end_ms = int(end.timestamp() * 1000) if end is not None else now
        start_ms = (
            int(start.timestamp() * 1000) if start is not None else end_ms - DEFAULT_WINDOW_MS
        )
        if start_ms > end_ms:
            raise ServiceError(
                "InvalidTimeRangeException", "Start time must be earlier than end time."
            )
        limit = MAX_RESULTS if max_results is None else max_results
        if not 1 <= limit <= MAX_RESULTS:
            raise ServiceError("InvalidMaxResultsException", "MaxResults must be between 1 and 50.")
        if category is not None:
            # Insights events are not produced here: an insight lookup finds nothing.
            return LookupPage([], None)
        # Bound to the filters as given (a default window moves with the clock between pages).
        given = (
            start.timestamp() if start is not None else None,
            end.timestamp() if end is not None else None,
        )
        scope = f"LookupEvents/{ctx.account_id}/{ctx.region}/{attribute}/{given}"
        before: tuple[int, int] | None = None
        if next_token is not None:
            try:
                position = self._tokens.decode(scope, next_token)
                before = (int(position[0]), int(position[1]))
            except (ServiceError, TypeError, ValueError, IndexError) as exc:
                raise ServiceError("InvalidNextTokenException", "Invalid NextToken.") from exc
        with self._db.transaction() as tx:
            found = AuditRepository(tx).lookup(
                ctx.account_id,
                ctx.region,
                start_ms=start_ms,
                end_ms=end_ms,
                attribute=attribute,
                before=before,
                limit=limit + 1,
            )
        token = None
        if len(found) > limit:
            last = found[limit - 1]
            token = self._tokens.encode(scope, [last.time_ms, last.seq])
            found = found[:limit]
        return LookupPage(found, token)
