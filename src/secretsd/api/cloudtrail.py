"""CloudTrail handlers (JSON 1.1): LookupEvents over the audit trail."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from secretsd.service.cloudtrail import CloudTrailService
from secretsd.service.context import CallContext

TARGET_PREFIX = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101."
Params = dict[str, Any]
Handler = Callable[[CloudTrailService, CallContext, Params], dict[str, Any] | None]


def lookup_events(svc: CloudTrailService, ctx: CallContext, p: Params) -> dict[str, Any]:
    page = svc.lookup_events(
        ctx,
        attributes=[
            (a["AttributeKey"], a["AttributeValue"]) for a in p.get("LookupAttributes") or []
        ],
        start=p.get("StartTime"),
        end=p.get("EndTime"),
        category=p.get("EventCategory"),
        max_results=p.get("MaxResults"),
        next_token=p.get("NextToken"),
    )
    events = []
    for e in page.events:
        entry: dict[str, Any] = {
            "EventId": e.event_id,
            "EventName": e.event_name,
            "ReadOnly": "true" if e.read_only else "false",
            "EventTime": e.event_time,
            "EventSource": e.event_source,
            "Resources": [
                {"ResourceName": name} | ({"ResourceType": kind} if kind else {})
                for kind, name in e.resources
            ],
            "CloudTrailEvent": e.record,
        }
        if e.access_key_id is not None:
            entry["AccessKeyId"] = e.access_key_id
        if e.username is not None:
            entry["Username"] = e.username
        events.append(entry)
    out: dict[str, Any] = {"Events": events}
    if page.next_token is not None:
        out["NextToken"] = page.next_token
    return out


HANDLERS: dict[str, Handler] = {"LookupEvents": lookup_events}
