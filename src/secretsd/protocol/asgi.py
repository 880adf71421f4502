"""The HTTP edge: an ASGI app speaking AWS's JSON 1.1 protocol.

route (X-Amz-Target) -> SigV4 -> parse + validate against the model -> handler -> JSON out.
Every failure leaves as `{"__type": ..., "Message": ...}` with an `x-amzn-RequestId`; nothing a
client sends can produce a traceback on the wire.
"""

from __future__ import annotations

import asyncio
import gc
import hmac
import inspect
import logging
import os
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from secretsd.audit.record import CallFacts, is_read_only
from secretsd.audit.writer import AuditSink
from secretsd.auth import sigv4
from secretsd.auth.identity import Identity
from secretsd.auth.principals import Principal, PrincipalDirectory, token_digest
from secretsd.errors import ServiceError
from secretsd.offload import Offloader
from secretsd.protocol import query, rest
from secretsd.protocol.metrics import Metrics
from secretsd.protocol.throttle import Throttle
from secretsd.protocol.validate import Validator
from secretsd.service.context import CallContext
from secretsd.service.invocation import FunctionInvoker
from secretsd.service.secrets import SecretsService
from secretsd.store.database import StoreUnavailable
from secretsd.store.group_commit import wait_for_own_commits

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
# A handler answers at once, or (for work that waits on something else, such as a function
# invocation) returns an awaitable of its answer; the event loop keeps serving meanwhile.
HandlerResult = dict[str, Any] | None | Awaitable[dict[str, Any] | None]
Handler = Callable[[SecretsService, CallContext, dict[str, Any]], HandlerResult]
# Another ASGI app served under a path prefix of the same port (the web console, say).
Mount = tuple[str, Callable[[Scope, Receive, Send], Awaitable[None]]]
BackgroundTask = Callable[[], Coroutine[Any, Any, None]]

JSON_TYPE = b"application/x-amz-json-1.1"
TARGET_PREFIX = "secretsmanager."
SIGNING_NAME = "secretsmanager"
# Young (generation 1) collections between two full ones: Python's default is 10.
FULL_COLLECTION_AFTER = 1000

log = logging.getLogger("secretsd.request")


@dataclass(frozen=True, slots=True)
class Route:
    """Another JSON service on the same endpoint, chosen by its X-Amz-Target prefix."""

    target_prefix: str
    signing_name: str
    service: Any
    handlers: Mapping[str, Callable[[Any, CallContext, dict[str, Any]], HandlerResult]]
    validator: Validator


class BodyTooLarge(Exception):
    pass


@dataclass(slots=True)
class _Seen:
    """What the handling of one call found out, for its audit record and its metrics: filled
    in as far as the request got (a call refused at SigV4 still has its claimed key)."""

    service: str = ""
    operation: str = ""
    region: str = ""
    access_key_id: str | None = None
    identity: Identity | None = None
    params: Any = None
    result: Any = None
    error_code: str | None = None
    error_message: str | None = None
    resolved: list[str] | None = None

    def failed(self, code: str, message: str) -> None:
        self.error_code, self.error_message = code, message


class AuditUnavailable(Exception):
    """Fail-closed, and the audit store failed: the call is refused before it runs."""


def new_request_id() -> str:
    """A random (version 4) UUID, as AWS's request ids are; cheaper than uuid.uuid4()."""
    return _uuid4(os.urandom(16).hex())


def _uuid4(h: str) -> str:
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:32]}"


class RequestIds:
    """Request ids for one app, as `new_request_id` makes them, from random bits read a few
    kilobytes at a time: a system call per request (getrandom) was measurable on the hot path.
    Used on the event loop's thread only."""

    def __init__(self, pool_ids: int = 256) -> None:
        self._chunk = 16 * pool_ids
        self._pool = ""
        self._at = 0

    def new(self) -> str:
        if self._at + 32 > len(self._pool):
            self._pool, self._at = os.urandom(self._chunk).hex(), 0
        at = self._at
        self._at = at + 32
        return _uuid4(self._pool[at : at + 32])


def _log_request(
    request_id: str, operation: str | None, status: int, started: float, error_code: str | None
) -> None:
    """Failures at INFO, everything at DEBUG; never parameters (they may hold values)."""
    if status >= 400 or log.isEnabledFor(logging.DEBUG):
        ms = round((time.perf_counter() - started) * 1000, 2)
        log.log(
            logging.INFO if status >= 400 else logging.DEBUG,
            "request_id=%s operation=%s status=%d ms=%.2f",
            request_id,
            operation,
            status,
            ms,
            extra={
                "request_id": request_id,
                "operation": operation,
                "status": status,
                "ms": ms,
                "error_code": error_code,
            },
        )


def error_body(code: str, message: str) -> bytes:
    try:
        return orjson.dumps({"__type": code, "Message": message})
    except TypeError:
        # A message quoting client input may hold a lone surrogate, which is not UTF-8: show
        # it escaped rather than fail the response.
        printable = message.encode("utf-8", "backslashreplace").decode("utf-8")
        return orjson.dumps({"__type": code, "Message": printable})


INTERNAL_ERROR = error_body("InternalServiceError", "An error occurred on the server side.")


class ApiApp:
    def __init__(
        self,
        *,
        service: SecretsService,
        handlers: Mapping[str, Handler],
        validator: Validator,
        principals: PrincipalDirectory,
        max_body_bytes: int,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
        background: Sequence[BackgroundTask] = (),
        routes: Sequence[Route] = (),
        query_routes: Sequence[query.QueryRoute] = (),
        mounts: Sequence[Mount] = (),
        rest_routes: Sequence[rest.RestRoute] = (),
        on_shutdown: Sequence[BackgroundTask] = (),
        function_invoker: FunctionInvoker | None = None,
        audit: AuditSink | None = None,
        metrics: Metrics | None = None,
        throttle: Throttle | None = None,
        offload: Offloader | None = None,
    ) -> None:
        # How Secrets Manager invokes Lambda functions (rotation), for whoever needs it.
        self.function_invoker = function_invoker
        self._rest_routes = tuple(rest_routes)
        self._on_shutdown = tuple(on_shutdown)
        self._routes = {
            r.target_prefix: r
            for r in (Route(TARGET_PREFIX, SIGNING_NAME, service, handlers, validator), *routes)
        }
        self._query_routes = {r.signing_name: r for r in query_routes}
        self._principals = principals
        self._max_body = max_body_bytes
        self._now = now
        self._signing_keys = sigv4.SigningKeyCache()
        self._header_cache = sigv4.HeaderCache()
        self._background = tuple(background)
        self._tasks: list[asyncio.Task[None]] = []
        self._mounts = tuple(mounts)
        self._audit = audit
        self._metrics = metrics
        self._throttle = throttle
        # PostgreSQL: handlers run in these threads, off the loop (ADR 0007); SQLite: inline.
        self._offload = offload
        self._request_ids = RequestIds()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if self._mounts:
            path: str = scope["path"]
            for prefix, mounted in self._mounts:
                if path == prefix.rstrip("/") or path.startswith(prefix):
                    await mounted(scope, receive, _after_own_commits(send))
                    return
        request_id = self._request_ids.new()
        started = time.perf_counter()
        operation = "-"
        content_type = JSON_TYPE
        query_route: query.QueryRoute | None = None
        seen = _Seen()
        time_ms = int(self._now().timestamp() * 1000)
        try:
            if scope["method"] == "GET" and scope["path"] in ("/health", "/healthz"):
                await self._respond(send, 200, b'{"status":"ok"}', request_id, b"application/json")
                return
            if scope["path"] == "/metrics" and self._metrics is not None:
                await self._metrics.serve(scope, send)
                return
            if self._audit is not None and not self._audit.accepting() and _may_change(scope):
                raise AuditUnavailable
            rest_route = self._rest_route(scope)
            if rest_route is not None:
                await self._serve_rest(
                    scope, receive, send, rest_route, request_id, started, time_ms
                )
                return
            # Chosen from the headers alone, so that a body too large is refused in XML too.
            query_route = self._query_route(scope)
            if query_route is not None:
                content_type = query.XML_TYPE
            body = await self._read_body(scope, receive)
            if query_route is not None:
                status, payload, operation = await self._handle_query(
                    scope, body, request_id, query_route, seen
                )
            else:
                status, payload, operation = await self._handle(scope, body, request_id, seen)
        except BodyTooLarge:
            message = f"Request body exceeds the maximum allowed size of {self._max_body} bytes."
            seen.failed("RequestEntityTooLargeException", message)
            status, payload = (413, error_body("RequestEntityTooLargeException", message))
        except StoreUnavailable as exc:
            _log_unavailable(request_id, operation, exc)
            seen.failed("InternalServiceError", "An error occurred on the server side.")
            status, payload = 500, INTERNAL_ERROR
        except AuditUnavailable:
            seen.failed("InternalServiceError", "audit trail unavailable")
            status, payload = 500, INTERNAL_ERROR
        except Exception:
            # Never a traceback on the wire; the log gets the details (values are not in them:
            # handlers never put secret values into exception messages).
            log.exception(
                "internal error request_id=%s operation=%s",
                request_id,
                operation,
                extra={"request_id": request_id, "operation": operation},
            )
            seen.failed("InternalServiceError", "An error occurred on the server side.")
            status, payload = (
                500,
                error_body("InternalServiceError", "An error occurred on the server side."),
            )
        if not await _own_commits_durable(request_id, operation, seen, "InternalServiceError"):
            status, payload = 500, INTERNAL_ERROR
        if self._audit is not None:
            facts = _facts(scope, seen, request_id, time_ms, status)
            if not await self._audit.record(facts):
                # Fail-closed: a call whose record cannot be made durable is not answered.
                log.error(
                    "audit record not written: refused request_id=%s",
                    request_id,
                    extra={"request_id": request_id},
                )
                status, payload = 500, INTERNAL_ERROR
                seen.failed("InternalServiceError", "audit trail unavailable")
        if self._metrics is not None:
            self._metrics.observe(
                seen.service or "unknown",
                seen.operation or "Unknown",
                status,
                seen.error_code or "",
                time.perf_counter() - started,
            )
        if query_route is not None and status >= 400 and not payload.startswith(b"<"):
            status, payload = _query_error_body(query_route, status, payload, request_id)
        await self._respond(send, status, payload, request_id, content_type)
        _log_request(request_id, operation, status, started, seen.error_code)

    async def _handle(
        self, scope: Scope, body: bytes, request_id: str, seen: _Seen
    ) -> tuple[int, bytes, str]:
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        target = ""
        for name, value in headers:
            if name == b"x-amz-target":
                target = value.decode("latin-1")
                break
        # The last dot: CloudTrail's target prefix has dots of its own.
        dot = target.rfind(".")
        route = self._routes.get(target[: dot + 1]) if dot > 0 else None
        operation = target[dot + 1 :] if route is not None else ""
        handler = route.handlers.get(operation) if route is not None else None
        if route is not None:
            seen.service = route.signing_name
            if handler is not None:
                seen.operation = operation
        try:
            if scope["method"] != "POST" or handler is None:
                raise ServiceError(
                    "UnknownOperationException",
                    f"The operation {target or '(none)'} is not supported by this endpoint.",
                )
            assert route is not None
            principal, region = self._authenticate(scope, headers, body, route.signing_name, seen)
            # After authentication, as AWS does: the caller's account is the one charged (and
            # the throttled call is still audited, with its ThrottlingException).
            if (
                self._throttle is not None
                and route.signing_name == SIGNING_NAME
                and not self._throttle.allow(principal.identity.account_id, region, operation)
            ):
                raise ServiceError("ThrottlingException", "Rate exceeded")
            raw = _load_json(body)
            seen.params = raw
            params = route.validator.parse_input(operation, raw)
            seen.params = params
            ctx = _call_context(scope, principal, region, operation)
            seen.resolved = ctx.resolved
            result = await self._call(handler, route.service, ctx, params)
        except ServiceError as exc:
            seen.failed(exc.code, exc.message)
            return exc.status, error_body(exc.code, exc.message), operation or target
        except StoreUnavailable as exc:
            _log_unavailable(request_id, operation, exc)
            seen.failed("InternalServiceError", "An error occurred on the server side.")
            return 500, INTERNAL_ERROR, operation
        except Exception:
            # Details go to the log (never values: nothing puts them in exception messages).
            log.exception(
                "internal error request_id=%s operation=%s",
                request_id,
                operation,
                extra={"request_id": request_id, "operation": operation},
            )
            seen.failed("InternalServiceError", "An error occurred on the server side.")
            return 500, INTERNAL_ERROR, operation
        seen.result = result
        return 200, b"" if result is None else orjson.dumps(result), operation

    def _rest_route(self, scope: Scope) -> rest.RestRoute | None:
        if not self._rest_routes:
            return None
        path: str = scope["path"]
        for route in self._rest_routes:
            if path.startswith(route.path_prefix):
                return route
        return None

    async def _serve_rest(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        route: rest.RestRoute,
        request_id: str,
        started: float,
        time_ms: int,
    ) -> None:
        """A REST-JSON request (Lambda): routed by method and path, signed like the others,
        audited and measured like them."""
        operation = "-"
        headers: list[tuple[bytes, bytes]] = []
        content_type = rest.JSON_TYPE
        seen = _Seen(service=route.signing_name)
        try:
            body = await self._read_body(scope, receive, route.max_body_bytes)
            matched = route.protocol.match(scope["method"], scope["path"])
            if matched is None:
                raise ServiceError(
                    "UnknownOperationException",
                    f"The operation {scope['method']} {scope['path']} is not supported.",
                    404,
                )
            op, uri = matched
            operation = op.name
            handler = route.handlers.get(op.name)
            if handler is None:
                raise ServiceError(
                    "UnknownOperationException", f"The operation {op.name} is not supported.", 404
                )
            seen.operation = op.name
            req_headers: list[tuple[bytes, bytes]] = scope["headers"]
            principal, region = self._authenticate(
                scope, req_headers, body, route.signing_name, seen
            )
            params = route.protocol.parse(
                op, uri, scope.get("query_string", b""), req_headers, body
            )
            seen.params = params
            ctx = _call_context(scope, principal, region, op.name)
            seen.resolved = ctx.resolved
            result = await self._call(handler, route.service, ctx, params)
            seen.result = result
            status, headers, payload, content_type = route.protocol.response(op, result)
        except BodyTooLarge:
            exc = ServiceError(
                "RequestEntityTooLargeException",
                f"Request must be smaller than {route.max_body_bytes} bytes for the"
                f" {operation if operation != '-' else 'requested'} operation",
                413,
            )
            seen.failed(exc.code, exc.message)
            status, headers, payload = rest.error_response(exc)
        except ServiceError as exc:
            seen.failed(exc.code, exc.message)
            status, headers, payload = rest.error_response(exc)
        except StoreUnavailable as exc:
            _log_unavailable(request_id, operation, exc)
            seen.failed("ServiceException", "An error occurred on the server side.")
            status, headers, payload = rest.error_response(
                ServiceError("ServiceException", "An error occurred on the server side.", 500)
            )
        except Exception:
            log.exception(
                "internal error request_id=%s operation=%s",
                request_id,
                operation,
                extra={"request_id": request_id, "operation": operation},
            )
            seen.failed("ServiceException", "An error occurred on the server side.")
            status, headers, payload = rest.error_response(
                ServiceError("ServiceException", "An error occurred on the server side.", 500)
            )
        if not await _own_commits_durable(request_id, operation, seen, "ServiceException"):
            content_type = rest.JSON_TYPE
            status, headers, payload = rest.error_response(
                ServiceError("ServiceException", "An error occurred on the server side.", 500)
            )
        if self._audit is not None and not await self._audit.record(
            _facts(scope, seen, request_id, time_ms, status)
        ):
            # Fail-closed: a call whose record cannot be made durable is not answered.
            log.error(
                "audit record not written: refused request_id=%s",
                request_id,
                extra={"request_id": request_id},
            )
            seen.failed("ServiceException", "audit trail unavailable")
            content_type = rest.JSON_TYPE
            status, headers, payload = rest.error_response(
                ServiceError("ServiceException", "An error occurred on the server side.", 500)
            )
        if self._metrics is not None:
            self._metrics.observe(
                seen.service,
                seen.operation or "Unknown",
                status,
                seen.error_code or "",
                time.perf_counter() - started,
            )
        await self._respond(send, status, payload, request_id, content_type, headers)
        _log_request(request_id, operation, status, started, seen.error_code)

    def _query_route(self, scope: Scope) -> query.QueryRoute | None:
        """The IAM or STS route of a query-protocol request signed for that service, else None
        (the JSON path then answers, as it always has, in its own words)."""
        if not self._query_routes or not _is_query_request(scope):
            return None
        request = sigv4.HttpRequest(
            method=scope["method"],
            raw_path=scope.get("raw_path") or scope["path"].encode(),
            query_string=scope.get("query_string", b""),
            headers=scope["headers"],
            body=b"",  # the credential is in the headers or the query string
        )
        try:
            claimed = sigv4.parse_credential(request)
        except ServiceError:
            return None
        return self._query_routes.get(claimed.service)

    async def _handle_query(
        self, scope: Scope, body: bytes, request_id: str, route: query.QueryRoute, seen: _Seen
    ) -> tuple[int, bytes, str]:
        """An IAM or STS request (AWS query protocol)."""
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        form = query.read_form(body, scope.get("query_string", b""))
        action = form.get("Action", "")
        seen.service = route.signing_name
        try:
            principal, region = self._authenticate(scope, headers, body, route.signing_name, seen)
            handler = route.handlers.get(action)
            if handler is None or not route.protocol.has_operation(action):
                raise query.invalid_action()
            seen.operation = action
            params = route.protocol.parse(action, form)
            seen.params = params
            ctx = _call_context(scope, principal, region, action)
            seen.resolved = ctx.resolved
            result = await self._call(handler, route.service, ctx, params)
            seen.result = result
            return 200, route.protocol.response(action, result, request_id), action
        except ServiceError as exc:
            seen.failed(query.wire_code(exc), exc.message)
            status, payload = route.protocol.error(exc, request_id)
            return status, payload, action or "-"

    async def _call(
        self, handler: Callable[[Any, CallContext, dict[str, Any]], Any], *args: Any
    ) -> Any:
        """A handler's answer: run in the offload threads when there are some (its database
        round trips then overlap with other requests' and never stall the loop), else here.
        An awaitable it returns is awaited here, on the loop."""
        if self._offload is None or inspect.iscoroutinefunction(handler):
            result = handler(*args)
        else:
            result = await self._offload.call(handler, *args)
        if inspect.isawaitable(result):
            result = await result
        return result

    def _authenticate(
        self,
        scope: Scope,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        signing_name: str,
        seen: _Seen,
    ) -> tuple[Principal, str]:
        """The verified caller and the region its signature is scoped to."""
        request = sigv4.HttpRequest(
            method=scope["method"],
            raw_path=scope.get("raw_path") or scope["path"].encode(),
            query_string=scope.get("query_string", b""),
            headers=headers,
            body=body,
        )
        cred = sigv4.parse_credential(request, self._header_cache)
        seen.access_key_id, seen.region = cred.access_key_id, cred.region
        # AWS checks the clock and the credential scope before it looks the key up.
        now = self._now()
        sigv4.check_credential(cred, now, service=signing_name)
        principal = self._principals.lookup(cred.access_key_id)
        if principal is None:
            raise sigv4.unknown_access_key_error()
        if principal.token_digest is None:
            if cred.security_token is not None:
                # A long-term key has no session token: whatever was sent cannot be its own.
                raise sigv4.invalid_security_token_error()
        else:
            if cred.security_token is None or not hmac.compare_digest(
                token_digest(cred.security_token), principal.token_digest
            ):
                raise sigv4.invalid_security_token_error()
            expires = principal.identity.session_expires_ms
            if expires is not None and now.timestamp() * 1000 >= expires:
                raise sigv4.expired_security_token_error()
        key = self._signing_keys.get(
            principal.access_key_id,
            principal.secret_access_key,
            cred.date,
            cred.region,
            cred.service,
        )
        sigv4.verify(request, cred, key, now, service=signing_name, checked=True)
        seen.identity = principal.identity
        return principal, cred.region

    async def _read_body(
        self, scope: Scope, receive: Receive, max_body: int | None = None
    ) -> bytes:
        limit = self._max_body if max_body is None else max_body
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    if int(value) > limit:
                        raise BodyTooLarge
                except ValueError:
                    pass
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise BodyTooLarge
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)

    @staticmethod
    async def _respond(
        send: Send,
        status: int,
        payload: bytes,
        request_id: str,
        content_type: bytes,
        headers: Sequence[tuple[bytes, bytes]] = (),
    ) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", content_type),
                    (b"content-length", str(len(payload)).encode()),
                    (b"x-amzn-requestid", request_id.encode()),
                    *headers,
                ],
            }
        )
        await send({"type": "http.response.body", "body": payload})

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                for start in self._background:
                    self._tasks.append(asyncio.create_task(start()))
                _freeze_startup_heap()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for task in self._tasks:
                    task.cancel()
                for stop in self._on_shutdown:
                    try:
                        await stop()
                    except Exception:
                        log.exception("shutdown hook failed")
                await send({"type": "lifespan.shutdown.complete"})
                return


def _may_change(scope: Scope) -> bool:
    """Whether a call may change something, judged from its method and X-Amz-Target before it
    is parsed: reads are let through while a fail-closed trail is failing (each is refused
    after it ran if its record fails, and the first whose record is committed reopens the gate),
    anything else is refused before it runs."""
    for name, value in scope["headers"]:
        if name == b"x-amz-target":
            target = value.decode("latin-1")
            return not is_read_only("", target[target.rfind(".") + 1 :])
    return bool(scope["method"] != "GET")


def _freeze_startup_heap() -> None:
    """Move everything built at startup (botocore's models, policies, templates: hundreds of
    thousands of objects that live as long as the process) out of the cyclic garbage collector's
    reach. Otherwise every full collection walks them all again, which measured as a tenth of a
    GetSecretValue's CPU time and as the pauses behind the p99 tail; requests' own short-lived
    objects are still collected as before.

    Then full collections are made rarer (FULL_COLLECTION_AFTER). Under concurrency the objects
    of requests in flight outlive two young collections and are counted as long-lived, so Python
    ran a full collection about every 14,000 requests at 64 connections, each a pause of up to
    70-100 ms (GC callbacks in a served worker: 18 in 250,000 GetSecretValue calls, 681 ms in
    all). Young collections, which free what requests leave in cycles, are unchanged; the
    worker's RSS stayed the same over 250,000 reads and over 160,000 calls that failed."""
    gc.collect()
    gc.freeze()
    young, middle, _ = gc.get_threshold()
    gc.set_threshold(young, middle, FULL_COLLECTION_AFTER)


async def _own_commits_durable(
    request_id: str, operation: str, seen: _Seen, error_code: str
) -> bool:
    """Wait until the writes this request committed are durable (on SQLite, fsync'd by the
    group commit's flusher; the loop serves other requests meanwhile). False: they cannot be
    made durable, and the call must not be acknowledged."""
    try:
        await wait_for_own_commits()
    except StoreUnavailable as exc:
        _log_unavailable(request_id, operation, exc)
        seen.failed(error_code, "An error occurred on the server side.")
        return False
    return True


def _after_own_commits(send: Send) -> Send:
    """`send` for a mounted app (the console): its answer starts once the writes it committed
    are durable."""

    async def durable_send(message: Message) -> None:
        if message["type"] == "http.response.start":
            await wait_for_own_commits()
        await send(message)

    return durable_send


def _log_unavailable(request_id: str, operation: str, exc: StoreUnavailable) -> None:
    # The database is away (a failover in progress): the caller gets AWS's retryable 500, which
    # every SDK retries, and the next request reconnects to the new primary. Expected, so one
    # line and no traceback.
    log.warning(
        "database unavailable request_id=%s operation=%s: %s",
        request_id,
        operation,
        exc,
        extra={"request_id": request_id, "operation": operation},
    )


def _query_error_body(
    route: query.QueryRoute, status: int, payload: bytes, request_id: str
) -> tuple[int, bytes]:
    """A JSON error body from the shared paths (413, 500) in the query service's XML."""
    code, message = "InternalServiceError", "An error occurred on the server side."
    try:
        parsed = orjson.loads(payload)
        code, message = str(parsed["__type"]), str(parsed["Message"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        pass
    return route.protocol.error(ServiceError(code, message, status), request_id)


def _is_query_request(scope: Scope) -> bool:
    """No X-Amz-Target, and a form body (or a GET with an Action): AWS's query protocol."""
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    if any(name == b"x-amz-target" for name, _ in headers):
        return False
    if scope["method"] == "GET":
        return b"Action=" in scope.get("query_string", b"")
    return scope["method"] == "POST" and query.is_form_request(headers)


def _call_context(scope: Scope, principal: Principal, region: str, operation: str) -> CallContext:
    return CallContext(
        identity=principal.identity,
        region=region,
        operation=operation,
        source_ip=(scope.get("client") or ("", 0))[0],
        secure_transport=scope.get("scheme") == "https",
    )


def _facts(scope: Scope, seen: _Seen, request_id: str, time_ms: int, status: int) -> CallFacts:
    user_agent = ""
    for name, value in scope["headers"]:
        if name == b"user-agent":
            user_agent = value.decode("latin-1")
            break
    return CallFacts(
        service=seen.service or "unknown",
        operation=seen.operation,
        request_id=request_id,
        time_ms=time_ms,
        status=status,
        region=seen.region,
        source_ip=(scope.get("client") or ("", 0))[0],
        user_agent=user_agent,
        identity=seen.identity,
        access_key_id=seen.access_key_id,
        request=seen.params if isinstance(seen.params, Mapping) else None,
        response=seen.result if isinstance(seen.result, Mapping) else None,
        error_code=seen.error_code,
        error_message=seen.error_message,
        resolved=tuple(seen.resolved or ()),
    )


def _load_json(body: bytes) -> Any:
    if not body:
        # AWS SDKs always send a JSON object; an empty body is treated as no parameters.
        return {}
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ServiceError(
            "SerializationException", "Malformed request body: not valid JSON."
        ) from exc
