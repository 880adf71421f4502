"""Lambda (REST-JSON) handlers: validated parameters -> one service call -> the modelled output."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from secretsd.service.context import CallContext
from secretsd.service.functions import LambdaService

Params = dict[str, Any]
Handler = Callable[[LambdaService, CallContext, Params], Any]
OPERATIONS = (
    "CreateFunction",
    "GetFunction",
    "GetFunctionConfiguration",
    "UpdateFunctionCode",
    "UpdateFunctionConfiguration",
    "DeleteFunction",
    "ListFunctions",
    "Invoke",
    "AddPermission",
    "RemovePermission",
    "GetPolicy",
)


async def invoke(svc: LambdaService, ctx: CallContext, p: Params) -> dict[str, Any]:
    outcome = await svc.invoke(
        ctx,
        p["FunctionName"],
        p.get("Payload") or b"",
        invocation_type=p.get("InvocationType") or "RequestResponse",
        log_type=p.get("LogType"),
        qualifier=p.get("Qualifier"),
    )
    out: dict[str, Any] = {"StatusCode": outcome.status, "Payload": outcome.payload}
    if outcome.status == 200:
        out["ExecutedVersion"] = "$LATEST"
    if outcome.function_error is not None:
        out["FunctionError"] = outcome.function_error
    if outcome.log_result is not None:
        out["LogResult"] = outcome.log_result
    return out


def delete_function(svc: LambdaService, ctx: CallContext, p: Params) -> Awaitable[None]:
    return svc.delete_function(ctx, p["FunctionName"], p.get("Qualifier"))


def remove_permission(svc: LambdaService, ctx: CallContext, p: Params) -> None:
    svc.remove_permission(ctx, p)


HANDLERS: dict[str, Handler] = {
    "CreateFunction": lambda svc, ctx, p: svc.create_function(ctx, p),
    "GetFunction": lambda svc, ctx, p: svc.get_function(ctx, p["FunctionName"], p.get("Qualifier")),
    "GetFunctionConfiguration": lambda svc, ctx, p: svc.get_configuration(
        ctx, p["FunctionName"], p.get("Qualifier")
    ),
    "UpdateFunctionCode": lambda svc, ctx, p: svc.update_code(ctx, p),
    "UpdateFunctionConfiguration": lambda svc, ctx, p: svc.update_configuration(ctx, p),
    "DeleteFunction": delete_function,
    "ListFunctions": lambda svc, ctx, p: svc.list_functions(
        ctx, p.get("Marker"), p.get("MaxItems")
    ),
    "Invoke": invoke,
    "AddPermission": lambda svc, ctx, p: svc.add_permission(ctx, p),
    "RemovePermission": remove_permission,
    "GetPolicy": lambda svc, ctx, p: svc.get_policy(ctx, p["FunctionName"], p.get("Qualifier")),
}
