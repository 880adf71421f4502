"""CloudWatch Logs (JSON 1.1, X-Amz-Target Logs_20140328.*) handlers, the reading calls."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from secretsd.service.context import CallContext
from secretsd.service.logs import LogsService

Params = dict[str, Any]
Handler = Callable[[LogsService, CallContext, Params], dict[str, Any]]
TARGET_PREFIX = "Logs_20140328."

HANDLERS: dict[str, Handler] = {
    "DescribeLogGroups": lambda svc, ctx, p: svc.describe_log_groups(ctx, p),
    "DescribeLogStreams": lambda svc, ctx, p: svc.describe_log_streams(ctx, p),
    "GetLogEvents": lambda svc, ctx, p: svc.get_log_events(ctx, p),
    "FilterLogEvents": lambda svc, ctx, p: svc.filter_log_events(ctx, p),
}
