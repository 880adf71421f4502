"""STS handlers: validated parameters -> one service call -> the modelled output (query protocol)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from secretsd.service.context import CallContext
from secretsd.service.sts import Credentials, StsService, tags_of

Params = dict[str, Any]
Handler = Callable[[StsService, CallContext, Params], dict[str, Any] | None]


def _credentials(creds: Credentials) -> dict[str, Any]:
    return {
        "AccessKeyId": creds.access_key_id,
        "SecretAccessKey": creds.secret_access_key,
        "SessionToken": creds.session_token,
        "Expiration": datetime.fromtimestamp(creds.expires_ms // 1000, UTC),
    }


def get_caller_identity(svc: StsService, ctx: CallContext, p: Params) -> dict[str, Any]:
    user_id, account, arn = svc.caller_identity(ctx)
    return {"UserId": user_id, "Account": account, "Arn": arn}


def get_session_token(svc: StsService, ctx: CallContext, p: Params) -> dict[str, Any]:
    return {"Credentials": _credentials(svc.get_session_token(ctx, p.get("DurationSeconds")))}


def assume_role(svc: StsService, ctx: CallContext, p: Params) -> dict[str, Any]:
    assumed = svc.assume_role(
        ctx,
        arn=p["RoleArn"],
        session_name=p["RoleSessionName"],
        duration_seconds=p.get("DurationSeconds"),
        tags=tags_of(p),
        external_id=p.get("ExternalId"),
        source_identity=p.get("SourceIdentity"),
        has_session_policy=bool(p.get("Policy") or p.get("PolicyArns")),
    )
    out: dict[str, Any] = {
        "Credentials": _credentials(assumed.credentials),
        "AssumedRoleUser": {"AssumedRoleId": assumed.assumed_role_id, "Arn": assumed.arn},
    }
    if assumed.packed_policy_size is not None:
        out["PackedPolicySize"] = assumed.packed_policy_size
    if p.get("SourceIdentity") is not None:
        out["SourceIdentity"] = p["SourceIdentity"]
    return out


HANDLERS: dict[str, Handler] = {
    "GetCallerIdentity": get_caller_identity,
    "GetSessionToken": get_session_token,
    "AssumeRole": assume_role,
}
