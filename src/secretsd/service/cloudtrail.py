"""CloudTrail LookupEvents over the audit trail: the caller's account and region, newest first.

As AWS: at most one lookup attribute, a 90-day default window, MaxResults up to 50 (the
default), a NextToken bound to the request's filters. Authorized as cloudtrail:LookupEvents.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from secretsd.audit.chain import record_bytes
from secretsd.audit.record import render
from secretsd.clock import Clock
from secretsd.errors import ServiceError
from secretsd.service.authorization import Authorizer
from secretsd.service.context import CallContext
from secretsd.service.pagination import TokenCodec
from secretsd.store.audit_repository import AuditRepository
from secretsd.store.database import Database

DEFAULT_WINDOW_MS = 90 * 86_400_000
MAX_RESULTS = 50
# Records examined per call at most: a lookup whose filter matches little in a long trail
# answers with what it found so far and a NextToken, as CloudTrail may answer with a short page.
SCAN_LIMIT = 20_000
_BLOCKS_PER_READ = 50
ATTRIBUTES = (
    "EventId",
    "EventName",
    "ReadOnly",
    "Username",
    "ResourceType",
    "ResourceName",
    "EventSource",
    "AccessKeyId",
)


@dataclass(frozen=True, slots=True)
class FoundEvent:
    """A record as LookupEvents shows it."""

    seq: int
    record: str
    event_id: str
    event_name: str
    read_only: bool
    event_time: int  # epoch seconds
    event_source: str
    username: str | None
    access_key_id: str | None
    resources: tuple[tuple[str | None, str], ...]

    @classmethod
    def parse(cls, seq: int, line: str) -> FoundEvent:
        body = render(line)
        record = line if line[:1] == "{" else record_bytes(body).decode()
        who = body.get("userIdentity") or {}
        kind = who.get("type")
        if kind == "Root":
            username: str | None = "root"
        elif kind == "AssumedRole":
            username = str(who.get("arn", "")).rsplit("/", 1)[-1]
        else:
            username = who.get("userName")
        return cls(
            seq=seq,
            record=record,
            event_id=body["eventID"],
            event_name=body["eventName"],
            read_only=bool(body["readOnly"]),
            event_time=calendar.timegm(time.strptime(body["eventTime"], "%Y-%m-%dT%H:%M:%SZ")),
            event_source=body["eventSource"],
            username=username,
            access_key_id=who.get("accessKeyId"),
            resources=tuple((r.get("type"), r["ARN"]) for r in body.get("resources") or ()),
        )

    def matches(self, attribute: tuple[str, str] | None) -> bool:
        if attribute is None:
            return True
        key, value = attribute
        if key == "EventId":
            return self.event_id == value
        if key == "EventName":
            return self.event_name == value
        if key == "ReadOnly":
            return ("true" if self.read_only else "false") == value
        if key == "Username":
            return self.username == value
        if key == "ResourceType":
            return any(kind == value for kind, _ in self.resources)
        if key == "ResourceName":
            return any(name == value for _, name in self.resources)
        if key == "EventSource":
            return self.event_source == value
        return self.access_key_id == value


@dataclass(frozen=True, slots=True)
class LookupPage:
    events: list[FoundEvent]
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
            if attribute[0] not in ATTRIBUTES:
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
        # The position: the sequence number the next page starts at (going back in time).
        position: int | None = None
        if next_token is not None:
            try:
                position = int(self._tokens.decode(scope, next_token))
            except (ServiceError, TypeError, ValueError) as exc:
                raise ServiceError("InvalidNextTokenException", "Invalid NextToken.") from exc
        found: list[FoundEvent] = []
        scanned = 0
        start_s, end_s = start_ms // 1000, end_ms // 1000
        while len(found) <= limit and scanned < SCAN_LIMIT:
            with self._db.transaction() as tx:
                blocks = AuditRepository(tx).blocks_newest_first(
                    ctx.account_id,
                    ctx.region,
                    start_ms=start_s * 1000,
                    end_ms=end_s * 1000 + 999,
                    at_or_before_seq=position,
                    limit=_BLOCKS_PER_READ,
                )
            if not blocks:
                position = None
                break
            for block in blocks:
                lines = block.lines()
                for offset in range(len(lines) - 1, -1, -1):
                    seq = block.first_seq + offset
                    if position is not None and seq > position:
                        continue
                    position = seq - 1
                    scanned += 1
                    event = FoundEvent.parse(seq, lines[offset])
                    if start_s <= event.event_time <= end_s and event.matches(attribute):
                        found.append(event)
                        if len(found) > limit:
                            break
                if len(found) > limit:
                    break
                position = block.first_seq - 1
            if len(blocks) < _BLOCKS_PER_READ and len(found) <= limit:
                position = None
                break
        token = None
        if len(found) > limit:
            found = found[:limit]
            position = found[-1].seq - 1
        if position is not None and position >= 1:
            token = self._tokens.encode(scope, position)
        return LookupPage(found, token)
