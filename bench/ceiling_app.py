"""The ceiling: a bare ASGI app answering every POST with a fixed 1 KiB JSON body.

Run under exactly the server stack secretsd uses (see ceiling_server.py), it shows what
uvicorn + httptools + uvloop alone can do on this machine, so secretsd's figures can be read as
a fraction of that.
"""

from __future__ import annotations

import os
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

# CPU time to burn per request (microseconds), for control runs that ask whether a latency effect
# comes from the server stack itself: set by `ceiling_server --busy-us`, read once at import
# because uvicorn's worker processes import this module by name.
BUSY_ENV = "BENCH_CEILING_BUSY_US"
BUSY_S = int(os.environ.get(BUSY_ENV, "0")) / 1e6
BODY_SIZE = 1024
_PREFIX = b'{"padding":"'
_SUFFIX = b'"}'
BODY = _PREFIX + b"x" * (BODY_SIZE - len(_PREFIX) - len(_SUFFIX)) + _SUFFIX
_OK_HEADERS = [
    (b"content-type", b"application/x-amz-json-1.1"),
    (b"content-length", str(len(BODY)).encode()),
]
_NOT_ALLOWED = b'{"message":"POST only"}'
_NOT_ALLOWED_HEADERS = [
    (b"content-type", b"application/json"),
    (b"content-length", str(len(_NOT_ALLOWED)).encode()),
]


async def app(scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        # secretsd runs with lifespan="on", so the ceiling must answer the same handshake.
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    # The body is read, as secretsd must, so that both pay for receiving it.
    while True:
        message = await receive()
        if message["type"] == "http.disconnect" or not message.get("more_body", False):
            break
    if BUSY_S:
        end = time.perf_counter() + BUSY_S
        while time.perf_counter() < end:
            pass
    if scope["method"] != "POST":
        await send({"type": "http.response.start", "status": 405, "headers": _NOT_ALLOWED_HEADERS})
        await send({"type": "http.response.body", "body": _NOT_ALLOWED})
        return
    await send({"type": "http.response.start", "status": 200, "headers": _OK_HEADERS})
    await send({"type": "http.response.body", "body": BODY})
