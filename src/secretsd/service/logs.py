"""CloudWatch Logs, read side: what `aws logs describe-log-groups`, `describe-log-streams`,
`get-log-events`, `filter-log-events` and `aws logs tail` ask for. Lambda writes the events.

AWS's words: "The specified log group does not exist." / "The specified log stream does not
exist." (ResourceNotFoundException), "The specified nextToken is invalid."
(InvalidParameterException).
"""

from __future__ import annotations

import base64
import re
import shlex
from collections.abc import Mapping
from typing import Any

from secretsd.errors import ServiceError
from secretsd.service.authorization import Authorizer
from secretsd.service.context import CallContext
from secretsd.store.database import Database
from secretsd.store.lambda_repository import LogEventRecord, LogRepository

_FIRST = "0" * 56
_LAST = "9" * 56


def _group_arn(ctx: CallContext, name: str) -> str:
    return f"arn:aws:logs:{ctx.region}:{ctx.account_id}:log-group:{name}"


def _not_found(what: str) -> ServiceError:
    return ServiceError("ResourceNotFoundException", f"The specified {what} does not exist.")


def _bad_token() -> ServiceError:
    return ServiceError("InvalidParameterException", "The specified nextToken is invalid.")


def _offset(token: str | None) -> int:
    if not token:
        return 0
    try:
        return int(base64.urlsafe_b64decode(token.encode()).decode())
    except (ValueError, UnicodeDecodeError) as exc:
        raise _bad_token() from exc


def _token(offset: int) -> str:
    return base64.urlsafe_b64encode(str(offset).encode()).decode()


class FilterPattern:
    """CloudWatch's unstructured filter syntax, the common part: every term must occur
    (case-sensitively); "quoted phrases"; `-term` excludes; `?a ?b` matches any of them.
    JSON and space-delimited selectors (`{ $.x = 1 }`, `[a, b]`) are not supported."""

    def __init__(self, pattern: str | None) -> None:
        self.required: list[str] = []
        self.excluded: list[str] = []
        self.any_of: list[str] = []
        text = (pattern or "").strip()
        if text.startswith(("{", "[")):
            raise ServiceError(
                "InvalidParameterException",
                "Invalid filter pattern: JSON and space-delimited filter patterns are not"
                " supported here.",
            )
        try:
            terms = shlex.split(text)
        except ValueError as exc:
            raise ServiceError("InvalidParameterException", "Invalid filter pattern") from exc
        for term in terms:
            if term.startswith("?") and len(term) > 1:
                self.any_of.append(term[1:])
            elif term.startswith("-") and len(term) > 1:
                self.excluded.append(term[1:])
            elif term:
                self.required.append(term)

    def matches(self, message: str) -> bool:
        if any(term in message for term in self.excluded):
            return False
        if self.any_of and not any(term in message for term in self.any_of):
            return False
        return all(term in message for term in self.required)


class LogsService:
    def __init__(self, db: Database, authorizer: Authorizer) -> None:
        self._db = db
        self._authz = authorizer

    def _require(self, ctx: CallContext, action: str, group: str | None) -> None:
        resource = (
            f"arn:aws:logs:{ctx.region}:{ctx.account_id}:log-group:*"
            if group is None
            else f"{_group_arn(ctx, group)}:*"
        )
        self._authz.require(ctx, f"logs:{action}", resource)

    def _group_name(self, params: Mapping[str, Any]) -> str:
        name = params.get("logGroupName") or params.get("logGroupIdentifier")
        if not name:
            raise ServiceError(
                "InvalidParameterException",
                "Either logGroupName or logGroupIdentifier is required.",
            )
        if str(name).startswith("arn:"):
            name = re.sub(r"^arn:aws:logs:[^:]*:\d{12}:log-group:", "", str(name)).removesuffix(
                ":*"
            )
        return str(name)

    def _check_group(self, ctx: CallContext, group: str) -> None:
        with self._db.statement() as tx:
            exists = LogRepository(tx).group_exists(ctx.account_id, ctx.region, group)
        if not exists:
            raise _not_found("log group")

    def describe_log_groups(self, ctx: CallContext, params: Mapping[str, Any]) -> dict[str, Any]:
        self._require(ctx, "DescribeLogGroups", None)
        limit = int(params.get("limit") or 50)
        after = ""
        if params.get("nextToken"):
            try:
                after = base64.urlsafe_b64decode(params["nextToken"].encode()).decode()
            except (ValueError, UnicodeDecodeError) as exc:
                raise _bad_token() from exc
        prefix = params.get("logGroupNamePrefix") or params.get("logGroupNamePattern") or ""
        with self._db.statement() as tx:
            groups = LogRepository(tx).groups(ctx.account_id, ctx.region, prefix, after, limit + 1)
        out: dict[str, Any] = {
            "logGroups": [
                {
                    "logGroupName": g.name,
                    "creationTime": g.created_ms,
                    "metricFilterCount": 0,
                    "arn": f"{_group_arn(ctx, g.name)}:*",
                    "storedBytes": g.stored_bytes,
                    "logGroupClass": "STANDARD",
                    "logGroupArn": _group_arn(ctx, g.name),
                }
                for g in groups[:limit]
            ]
        }
        if len(groups) > limit:
            out["nextToken"] = base64.urlsafe_b64encode(groups[limit - 1].name.encode()).decode()
        return out

    def describe_log_streams(self, ctx: CallContext, params: Mapping[str, Any]) -> dict[str, Any]:
        group = self._group_name(params)
        self._require(ctx, "DescribeLogStreams", group)
        self._check_group(ctx, group)
        order = params.get("orderBy") or "LogStreamName"
        prefix = params.get("logStreamNamePrefix") or ""
        if prefix and order == "LastEventTime":
            raise ServiceError(
                "InvalidParameterException",
                "Cannot order by LastEventTime with a logStreamNamePrefix.",
            )
        with self._db.statement() as tx:
            streams = LogRepository(tx).streams(ctx.account_id, ctx.region, group, prefix)
        if order == "LastEventTime":
            streams.sort(key=lambda s: (s.last_event_ms or 0, s.name))
        else:
            streams.sort(key=lambda s: s.name)
        if params.get("descending"):
            streams.reverse()
        start = _offset(params.get("nextToken"))
        limit = int(params.get("limit") or 50)
        page = streams[start : start + limit]
        out: dict[str, Any] = {"logStreams": []}
        for s in page:
            entry: dict[str, Any] = {
                "logStreamName": s.name,
                "creationTime": s.created_ms,
                "arn": f"{_group_arn(ctx, group)}:log-stream:{s.name}",
                "storedBytes": s.stored_bytes,
            }
            if s.first_event_ms is not None:
                entry["firstEventTimestamp"] = s.first_event_ms
            if s.last_event_ms is not None:
                entry["lastEventTimestamp"] = s.last_event_ms
            if s.last_ingestion_ms is not None:
                entry["lastIngestionTime"] = s.last_ingestion_ms
            out["logStreams"].append(entry)
        if start + limit < len(streams):
            out["nextToken"] = _token(start + limit)
        return out

    def get_log_events(self, ctx: CallContext, params: Mapping[str, Any]) -> dict[str, Any]:
        group = self._group_name(params)
        self._require(ctx, "GetLogEvents", group)
        self._check_group(ctx, group)
        stream = params["logStreamName"]
        with self._db.statement() as tx:
            repo = LogRepository(tx)
            if not any(
                s.name == stream for s in repo.streams(ctx.account_id, ctx.region, group, stream)
            ):
                raise _not_found("log stream")
        limit = int(params.get("limit") or 10000)
        token = params.get("nextToken")
        forward = bool(params.get("startFromHead"))
        after, before = _FIRST, None
        if token:
            kind, _, event_id = token.partition("/")
            if kind not in ("f", "b") or not event_id.isdigit():
                raise _bad_token()
            forward = kind == "f"
            if forward:
                after = event_id
            else:
                before = event_id
        with self._db.statement() as tx:
            events = LogRepository(tx).events(
                ctx.account_id,
                ctx.region,
                group,
                streams=[stream],
                start_ms=params.get("startTime"),
                end_ms=params.get("endTime"),
                after=after,
                before=before,
                descending=not forward,
                limit=limit,
            )
        if not forward:
            events.reverse()
        first = events[0].event_id if events else (before or after or _FIRST)
        last = events[-1].event_id if events else (after if forward else (before or _LAST))
        return {
            "events": [
                {"timestamp": e.timestamp_ms, "message": e.message, "ingestionTime": e.ingestion_ms}
                for e in events
            ],
            "nextForwardToken": f"f/{last}",
            "nextBackwardToken": f"b/{first}",
        }

    def filter_log_events(self, ctx: CallContext, params: Mapping[str, Any]) -> dict[str, Any]:
        group = self._group_name(params)
        self._require(ctx, "FilterLogEvents", group)
        self._check_group(ctx, group)
        pattern = FilterPattern(params.get("filterPattern"))
        limit = int(params.get("limit") or 10000)
        after = params.get("nextToken") or _FIRST
        if not after.isdigit():
            raise _bad_token()
        names: list[str] | None = params.get("logStreamNames")
        prefix = params.get("logStreamNamePrefix")
        if names is not None and prefix is not None:
            raise ServiceError(
                "InvalidParameterException",
                "logStreamNames and logStreamNamePrefix are mutually exclusive",
            )
        if prefix is not None:
            with self._db.statement() as tx:
                names = [
                    s.name
                    for s in LogRepository(tx).streams(ctx.account_id, ctx.region, group, prefix)
                ]
        matched: list[LogEventRecord] = []
        exhausted = False
        # Scans in batches until a page is full of matching events or the group is read.
        while len(matched) < limit:
            with self._db.statement() as tx:
                batch = LogRepository(tx).events(
                    ctx.account_id,
                    ctx.region,
                    group,
                    streams=names,
                    start_ms=params.get("startTime"),
                    end_ms=params.get("endTime"),
                    after=after,
                    before=None,
                    descending=False,
                    limit=1000,
                )
            for event in batch:
                after = event.event_id
                if pattern.matches(event.message):
                    matched.append(event)
                    if len(matched) >= limit:
                        break
            if len(batch) < 1000 and (not batch or after == batch[-1].event_id):
                exhausted = True
                break
        out: dict[str, Any] = {
            "events": [
                {
                    "logStreamName": e.stream_name,
                    "timestamp": e.timestamp_ms,
                    "message": e.message,
                    "ingestionTime": e.ingestion_ms,
                    "eventId": e.event_id,
                }
                for e in matched
            ],
            "searchedLogStreams": [],
        }
        if not exhausted:
            out["nextToken"] = after
        return out
