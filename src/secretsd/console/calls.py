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
        parsed = self.validator.parse_input(operation, params)
        ctx = call_context(session, operation, source_ip=source_ip, secure=secure)
        result = self.handlers[operation](self.service, ctx, parsed)
        if inspect.isawaitable(result):
            result = await result
        return result or {}
