"""Who is calling, where: everything the service needs to know about a request."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CallContext:
    account_id: str
    region: str
    principal_arn: str
    operation: str = ""
    source_ip: str = ""
