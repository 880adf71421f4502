"""A secret's activity: the rows the details page shows of LookupEvents' events (never a request
parameter), and the resolved ARN that lets LookupEvents by ResourceName find calls made by name."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from secretsd.audit.record import CallFacts, api_call_record
from secretsd.auth.identity import Identity
from secretsd.console.activity import activity_row
from secretsd.console.calls import ApiOperations
from secretsd.protocol.model import load_service_model
from secretsd.protocol.validate import Validator
from secretsd.service.console_sessions import ConsoleSession
from secretsd.service.context import CallContext

ARN = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:app/db-AbCdEf"
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


def facts(operation: str, **kw: Any) -> CallFacts:
    return CallFacts(
        service="secretsmanager",
        operation=operation,
        request_id="r",
        time_ms=1_700_000_000_000,
        status=400 if "error_code" in kw else 200,
        region="eu-west-1",
        source_ip="10.1.2.3",
        identity=ADMIN,
        **kw,
    )


def resources(f: CallFacts) -> Any:
    return api_call_record(f, None).body.get("resources")


def test_a_call_by_name_names_the_resolved_arn() -> None:
    # TagResource answers nothing, a refused read has no response: the ARN the service resolved
    # is the resource, not what the caller typed.
    tagged = facts("TagResource", request={"SecretId": "app/db"}, response={}, resolved=(ARN,))
    assert resources(tagged) == [
        {"type": "AWS::SecretsManager::Secret", "ARN": ARN, "accountId": "123456789012"}
    ]
    refused = facts(
        "GetSecretValue",
        request={"SecretId": "app/db"},
        error_code="AccessDeniedException",
        error_message="no",
        resolved=(ARN, ARN),
    )
    assert resources(refused)[0]["ARN"] == ARN
    # Nothing resolved (a secret that does not exist): what was asked for, as before.
    missing = facts("DescribeSecret", request={"SecretId": "nope"}, error_code="X")
    assert resources(missing)[0]["ARN"] == "nope"
    # A batch of several secrets: no single one stands for the call.
    batch = facts("BatchGetSecretValue", request={}, resolved=(ARN, ARN + "x"))
    assert resources(batch) is None


def test_console_calls_carry_what_the_service_resolved() -> None:
    seen: list[CallFacts] = []

    class Sink:
        async def record(self, f: CallFacts) -> bool:
            seen.append(f)
            return True

        def accepting(self) -> bool:
            return True

    def describe(svc: Any, ctx: CallContext, p: dict[str, Any]) -> dict[str, Any]:
        ctx.resolved.append(ARN)
        return {}

    ops = ApiOperations(
        None,
        {"DescribeSecret": describe},
        Validator(load_service_model("secretsmanager")),
        "secretsmanager",
        Sink(),
        lambda: 0,
    )
    session = ConsoleSession("token", ADMIN, "eu-west-1", "csrf", 0)
    asyncio.run(ops.call(session, "DescribeSecret", {"SecretId": "app/db"}, source_ip="10.0.0.9"))
    assert seen[0].resolved == (ARN,) and seen[0].source_ip == "10.0.0.9"
    assert seen[0].operation == "DescribeSecret"


def test_activity_rows_show_who_what_when_where_and_never_parameters() -> None:
    record = api_call_record(
        facts(
            "PutSecretValue",
            request={"SecretId": ARN, "ClientRequestToken": "tok-SENTINEL", "Extra": "x"},
            response={"ARN": ARN, "VersionId": "v-SENTINEL"},
            error_code="AccessDeniedException",
            error_message="User is not authorized",
        ),
        None,
    )
    event = {
        "EventName": "PutSecretValue",
        "EventTime": 1_700_000_000,
        "Username": "admin",
        "CloudTrailEvent": json.dumps(record.body | {"requestParameters": {"x": "SENTINEL"}}),
    }
    row = activity_row(event)
    assert row == {
        "time": 1_700_000_000,
        "name": "PutSecretValue",
        "user": ADMIN.arn,
        "user_name": "admin",
        "source_ip": "10.1.2.3",
        "error": "AccessDenied",
    }
    assert "SENTINEL" not in json.dumps(row)
    service_event = {
        "EventName": "RotationSucceeded",
        "EventTime": 1,
        "CloudTrailEvent": json.dumps(
            {
                "userIdentity": {"type": "AWSService", "invokedBy": "secretsmanager.amazonaws.com"},
                "sourceIPAddress": "secretsmanager.amazonaws.com",
            }
        ),
    }
    assert activity_row(service_event)["user"] == "secretsmanager.amazonaws.com"
    assert activity_row({"EventName": "X", "CloudTrailEvent": "not json"})["user"] == "-"
    assert activity_row({"EventName": "X", "CloudTrailEvent": "[1]"})["source_ip"] == "-"
