"""Console actions reach the audit trail as the API calls they are: the same CallFacts as the
wire API (identity, region, parameters, result, error), and fail-closed refuses them too."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from secretsd.audit.record import CallFacts
from secretsd.auth.identity import Identity
from secretsd.console.calls import ApiOperations
from secretsd.errors import ServiceError
from secretsd.protocol.model import load_service_model
from secretsd.protocol.validate import Validator
from secretsd.service.console_sessions import ConsoleSession
from secretsd.service.context import CallContext

ADMIN = Identity(
    account_id="123456789012",
    arn="arn:aws:iam::123456789012:user/admin",
    principal_arn="arn:aws:iam::123456789012:user/admin",
    principal_type="User",
    userid="AIDAEXAMPLE",
    owner_kind="user",
    owner_name="admin",
    access_key_id="AKIAEXAMPLE",
)
SESSION = ConsoleSession("token", ADMIN, "eu-west-1", "csrf", 0)


class Sink:
    def __init__(self, accept: bool) -> None:
        self.accept = accept
        self.facts: list[CallFacts] = []

    async def record(self, facts: CallFacts) -> bool:
        self.facts.append(facts)
        return self.accept

    def accepting(self) -> bool:
        return True


def describe(svc: Any, ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
    if p["SecretId"] == "missing":
        raise ServiceError("ResourceNotFoundException", "not found")
    return {"ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:s-abcdef", "Name": "s"}


def operations(sink: Sink) -> ApiOperations:
    return ApiOperations(
        None,
        {"DescribeSecret": describe},
        Validator(load_service_model("secretsmanager")),
        "secretsmanager",
        sink,
        lambda: 1_700_000_000_000,
    )


def test_console_calls_are_recorded_allowed_or_refused() -> None:
    sink = Sink(accept=True)
    ops = operations(sink)
    asyncio.run(ops.call(SESSION, "DescribeSecret", {"SecretId": "s"}, source_ip="10.0.0.1"))
    with pytest.raises(ServiceError):
        asyncio.run(ops.call(SESSION, "DescribeSecret", {"SecretId": "missing"}))
    ok, failed = sink.facts
    assert (ok.service, ok.operation, ok.region, ok.status) == (
        "secretsmanager",
        "DescribeSecret",
        "eu-west-1",
        200,
    )
    assert ok.identity == ADMIN and ok.source_ip == "10.0.0.1"
    assert ok.user_agent == "secretsd-console" and ok.time_ms == 1_700_000_000_000
    assert ok.request == {"SecretId": "s"} and ok.response is not None
    assert (failed.error_code, failed.status) == ("ResourceNotFoundException", 400)
    assert ok.request_id != failed.request_id


def test_fail_closed_refuses_a_console_action_whose_record_is_not_written() -> None:
    with pytest.raises(ServiceError) as refused:
        asyncio.run(
            operations(Sink(accept=False)).call(SESSION, "DescribeSecret", {"SecretId": "s"})
        )
    assert (refused.value.code, refused.value.status) == ("InternalServiceError", 500)
