"""A secret's activity on its details page: the LookupEvents events that name it, as rows."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any


def activity_row(event: Mapping[str, Any]) -> dict[str, Any]:
    """What the activity table shows of a LookupEvents event: from its CloudTrailEvent, only
    who, where and the outcome (the record's parameters are never read)."""
    try:
        record = json.loads(event.get("CloudTrailEvent") or "{}")
    except ValueError:
        record = {}
    if not isinstance(record, dict):
        record = {}
    who = record.get("userIdentity")
    who = who if isinstance(who, dict) else {}
    time_ = event.get("EventTime")
    return {
        "time": time_.timestamp() if isinstance(time_, datetime) else time_,
        "name": event.get("EventName", ""),
        "user": who.get("arn") or who.get("invokedBy") or event.get("Username") or "-",
        "user_name": event.get("Username") or who.get("userName") or "",
        "source_ip": record.get("sourceIPAddress") or "-",
        "error": record.get("errorCode") or "",
    }
