"""The sealed gate: an ASGI wrapper for a server whose root keys need a passphrase.

Until unsealed, the API app does not exist (it cannot: its keys are still wrapped). The gate
answers `GET /health` (503, saying sealed), accepts `POST /unseal` with `{"passphrase": "..."}`,
and refuses everything else with a 503 `ServiceUnavailableException`, the error AWS JSON
services use for a temporary failure of the server (e.g.
https://docs.aws.amazon.com/botocore/latest/reference/services/backup/client/exceptions/ServiceUnavailableException.html);
AWS SDKs retry it, which suits a node that is about to be unsealed. Query-protocol calls (IAM,
STS) get the same error in their XML shape (the code `ServiceUnavailable` there is unverified).

Once unsealed the gate builds the app, runs its lifespan startup (background tasks) and passes
every request through; `POST /unseal` then just reports that the server is unsealed.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any
from xml.sax.saxutils import escape

import orjson

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
AsgiApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_UNSEAL_BODY = 64 * 1024
SEALED_MESSAGE = (
    "secretsd is sealed: its root keys are protected by a passphrase. Unseal it with"
    " `secretsd unseal` (POST /unseal) before calling the API."
)

log = logging.getLogger("secretsd.sealed")


class UnsealRefused(Exception):
    """The passphrase does not open the root keys (the message is safe to return)."""


class SealedGate:
    def __init__(self, unseal: Callable[[str], AsgiApp], health_extra: dict[str, Any]) -> None:
        """`unseal(passphrase)` builds the API app or raises UnsealRefused."""
        self._unseal = unseal
        self._health_extra = health_extra
        self._app: AsgiApp | None = None
        self._lifespan_started = False
        self._inner_lifespan: _InnerLifespan | None = None

    @property
    def sealed(self) -> bool:
        return self._app is None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        if path == "/unseal":
            await self._unseal_call(method, receive, send)
            return
        app = self._app
        if app is not None:
            await app(scope, receive, send)
            return
        if method == "GET" and path in ("/health", "/healthz"):
            body = {"status": "sealed", "sealed": True, "pid": os.getpid(), **self._health_extra}
            await _respond(send, 503, orjson.dumps(body), b"application/json")
            return
        await _drain(receive)
        await _respond_sealed(scope, send)

    async def _unseal_call(self, method: str, receive: Receive, send: Send) -> None:
        if method != "POST":
            await _drain(receive)
            await _respond(
                send, 405, _error("ValidationException", "Use POST /unseal."), b"application/json"
            )
            return
        body = await _read(receive, MAX_UNSEAL_BODY)
        if self._app is None:
            passphrase = _passphrase(body)
            if passphrase is None:
                await _respond(
                    send,
                    400,
                    _error(
                        "ValidationException",
                        'The body must be a JSON object {"passphrase": "..."} of at most'
                        f" {MAX_UNSEAL_BODY} bytes.",
                    ),
                    b"application/json",
                )
                return
            try:
                app = self._unseal(passphrase)
            except UnsealRefused as exc:
                log.warning("unseal refused: %s", exc)
                await _respond(
                    send, 403, _error("AccessDeniedException", str(exc)), b"application/json"
                )
                return
            except Exception:
                log.exception("unseal failed")
                await _respond(
                    send,
                    500,
                    _error("InternalServiceError", "An error occurred on the server side."),
                    b"application/json",
                )
                return
            if self._app is None:
                self._app = app
                if self._lifespan_started:
                    self._inner_lifespan = _InnerLifespan(app)
                    await self._inner_lifespan.startup()
                log.warning("unsealed (pid %d)", os.getpid())
        body_out = {"sealed": False, "pid": os.getpid(), **self._health_extra}
        await _respond(send, 200, orjson.dumps(body_out), b"application/json")

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._lifespan_started = True
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._inner_lifespan is not None:
                    await self._inner_lifespan.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return


async def starting(scope: Scope, receive: Receive, send: Send) -> None:
    """What a supervisor serves between its unseal and its workers taking over (a moment)."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["type"] == "http":
        await _drain(receive)
        message = "secretsd is unsealed and starting its workers; retry in a moment."
        await _respond(
            send, 503, _error("ServiceUnavailableException", message), b"application/json"
        )


class _InnerLifespan:
    """Runs an app's lifespan protocol after the server's own startup already happened."""

    def __init__(self, app: AsgiApp) -> None:
        self._app = app
        self._inbox: asyncio.Queue[Message] = asyncio.Queue()
        self._started = asyncio.Event()
        self._stopped = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def _send(self, message: Message) -> None:
        if message["type"].startswith("lifespan.startup."):
            self._started.set()
        elif message["type"].startswith("lifespan.shutdown."):
            self._stopped.set()

    async def startup(self) -> None:
        scope: Scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
        app = self._app

        async def run() -> None:
            await app(scope, self._inbox.get, self._send)

        self._task = asyncio.create_task(run())
        await self._inbox.put({"type": "lifespan.startup"})
        await asyncio.wait_for(self._started.wait(), timeout=30)

    async def shutdown(self) -> None:
        await self._inbox.put({"type": "lifespan.shutdown"})
        try:
            await asyncio.wait_for(self._stopped.wait(), timeout=10)
        except TimeoutError:
            if self._task is not None:
                self._task.cancel()


def _passphrase(body: bytes) -> str | None:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(parsed, dict):
        return None
    value = parsed.get("passphrase")
    return value if isinstance(value, str) and value else None


def _error(code: str, message: str) -> bytes:
    return orjson.dumps({"__type": code, "Message": message})


async def _respond_sealed(scope: Scope, send: Send) -> None:
    headers = dict(scope.get("headers") or [])
    content_type = headers.get(b"content-type", b"")
    if content_type.startswith(b"application/x-www-form-urlencoded"):
        xml = (
            "<ErrorResponse><Error><Type>Receiver</Type><Code>ServiceUnavailable</Code>"
            f"<Message>{escape(SEALED_MESSAGE)}</Message></Error>"
            f"<RequestId>{_request_id()}</RequestId></ErrorResponse>"
        )
        await _respond(send, 503, xml.encode(), b"text/xml")
        return
    await _respond(
        send,
        503,
        _error("ServiceUnavailableException", SEALED_MESSAGE),
        b"application/x-amz-json-1.1",
    )


def _request_id() -> str:
    h = os.urandom(16).hex()
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{h[16:20]}-{h[20:]}"


async def _read(receive: Receive, limit: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size <= limit:
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks) if size <= limit else b""


async def _drain(receive: Receive) -> None:
    await _read(receive, 0)


async def _respond(send: Send, status: int, body: bytes, content_type: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                (b"x-amzn-requestid", _request_id().encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
