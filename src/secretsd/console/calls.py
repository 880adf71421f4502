"""Console actions are API calls: the same handlers, validation and Authorizer as the wire API,
made as the signed-in principal. A refusal is the ServiceError a CLI user would see."""

from __future__ import annotations

import inspect
import json
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from secretsd.audit.record import CallFacts, is_read_only
from secretsd.audit.writer import AuditSink
from secretsd.errors import ServiceError
from secretsd.protocol.asgi import new_request_id
from secretsd.protocol.validate import Validator
from secretsd.service.console_sessions import ConsoleSession
from secretsd.service.context import CallContext

log = logging.getLogger("secretsd.console.calls")

# Never logged: values and key material (the rest of a request is what CloudTrail would show).
_UNLOGGED = frozenset({"SecretString", "SecretBinary", "Plaintext", "CiphertextBlob"})


def call_context(
    session: ConsoleSession, operation: str, *, source_ip: str = "", secure: bool = False
) -> CallContext:
    """The context an API call made as the session's principal runs in."""
    return CallContext(
        identity=session.identity,
        region=session.region,
        operation=operation,
        source_ip=source_ip,
        secure_transport=secure,
    )


@dataclass(frozen=True, slots=True)
class ApiOperations:
    """One service's handlers with their validator (Secrets Manager's, KMS's)."""

    service: Any
    handlers: Mapping[str, Callable[[Any, CallContext, dict[str, Any]], Any]]
    validator: Validator
    # The audit trail records console actions as the API calls they are (userAgent
    # "secretsd-console"); signing_name names the service in the record.
    signing_name: str = ""
    audit: AuditSink | None = None
    now_ms: Callable[[], int] | None = None

    async def call(
        self,
        session: ConsoleSession,
        operation: str,
        params: dict[str, Any],
        *,
        source_ip: str = "",
        secure: bool = False,
    ) -> dict[str, Any]:
        if log.isEnabledFor(logging.INFO):
            shown = {k: ("(redacted)" if k in _UNLOGGED else v) for k, v in params.items()}
            log.info(
                "console call %s by %s: %s",
                operation,
                session.identity.arn,
                json.dumps(shown, default=str, sort_keys=True),
            )
        # As an AWS SDK does: the console's calls are SDK calls, not raw requests.
        missing = [m for m in self.validator.idempotency_tokens(operation) if m not in params]
        if missing:
            params = {**params, **{m: str(uuid.uuid4()) for m in missing}}
        time_ms = self.now_ms() if self.now_ms is not None else 0
        parsed: dict[str, Any] | None = None
        ctx = call_context(session, operation, source_ip=source_ip, secure=secure)
        try:
            if (
                self.audit is not None
                and not self.audit.accepting()
                and not is_read_only(self.signing_name, operation)
            ):
                # Fail-closed and the trail is failing: no change is made (see AuditSink).
                raise ServiceError(
                    "InternalServiceError", "An error occurred on the server side.", 500
                )
            parsed = self.validator.parse_input(operation, params)
            result = self.handlers[operation](self.service, ctx, parsed)
            if inspect.isawaitable(result):
                result = await result
        except ServiceError as exc:
            await self._record(session, ctx, time_ms, parsed, None, exc)
            raise
        await self._record(session, ctx, time_ms, parsed, result, None)
        return result or {}

    async def _record(
        self,
        session: ConsoleSession,
        ctx: CallContext,
        time_ms: int,
        params: dict[str, Any] | None,
        result: Any,
        error: ServiceError | None,
    ) -> None:
        if self.audit is None:
            return
        facts = CallFacts(
            service=self.signing_name,
            operation=ctx.operation,
            request_id=new_request_id(),
            time_ms=time_ms,
            status=error.status if error is not None else 200,
            region=session.region,
            source_ip=ctx.source_ip,
            user_agent="secretsd-console",
            identity=session.identity,
            request=params,
            response=result if isinstance(result, Mapping) else None,
            error_code=error.code if error is not None else None,
            error_message=error.message if error is not None else None,
            resolved=tuple(ctx.resolved),
        )
        if not await self.audit.record(facts) and error is None:
            # Fail-closed: an action whose record cannot be written is not shown as done.
            raise ServiceError("InternalServiceError", "An error occurred on the server side.", 500)
