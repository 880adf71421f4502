"""The Lambda Runtime API (2018-06-01) for one execution environment.

Each environment gets its own listener on 127.0.0.1:0, so an environment can only ever be handed
its own invocations: the queue behind a listener belongs to one environment. A connection is
served only when it comes from the environment's own process (checked through /proc), so a
function that finds another environment's port still cannot fetch its events.

Paths (https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html):
GET  /2018-06-01/runtime/invocation/next
POST /2018-06-01/runtime/invocation/{AwsRequestId}/response
POST /2018-06-01/runtime/invocation/{AwsRequestId}/error
POST /2018-06-01/runtime/init/error
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import h11

_PREFIX = "/2018-06-01/runtime/"
_MAX_RESPONSE = 6 * 1024 * 1024


@dataclass
class PendingInvocation:
    request_id: str
    payload: bytes
    timeout_ms: int
    function_arn: str
    # (payload, error type or None) once the runtime answers.
    result: asyncio.Future[tuple[bytes, str | None]] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class RuntimeApi:
    """Serves one environment's runtime. `owner_pid()` is the environment's process id."""

    def __init__(
        self, owner_pid: Callable[[], int | None], on_next: Callable[[], None] = lambda: None
    ) -> None:
        self._owner_pid = owner_pid
        # Called the moment an invocation is handed to the runtime.
        self._on_next = on_next
        self._queue: asyncio.Queue[PendingInvocation] = asyncio.Queue()
        self._current: PendingInvocation | None = None
        self._server: asyncio.Server | None = None
        # Set when the runtime first asks for work (initialisation finished).
        self.ready = asyncio.Event()
        self.init_error: bytes | None = None
        self.init_failed = asyncio.Event()
        self.address = ""

    async def start(self) -> str:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        host, port = self._server.sockets[0].getsockname()[:2]
        self.address = f"{host}:{port}"
        return self.address

    def submit(self, invocation: PendingInvocation) -> None:
        self._queue.put_nowait(invocation)

    def abandon(self) -> None:
        """The current invocation is over on secretsd's side (timed out, process gone)."""
        self._current = None

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._server.wait_closed(), 1.0)
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            peer = writer.get_extra_info("peername")
            ours = writer.get_extra_info("sockname")
            if not _connection_of(self._owner_pid(), peer, ours):
                return
            conn = h11.Connection(h11.SERVER, max_incomplete_event_size=64 * 1024)
            while True:
                request, body = await _read_request(conn, reader)
                if request is None:
                    return
                status, headers, payload = await self._route(request, body)
                headers = [*headers, ("content-length", str(len(payload)))]
                writer.write(conn.send(h11.Response(status_code=status, headers=headers)))
                writer.write(conn.send(h11.Data(data=payload)))
                writer.write(conn.send(h11.EndOfMessage()))
                await writer.drain()
                if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
                    return
                conn.start_next_cycle()
        except (h11.RemoteProtocolError, h11.LocalProtocolError, ConnectionError):
            return
        except asyncio.CancelledError:
            # The environment is going away. Returning (not re-raising) spares asyncio's stream
            # callback, which on Python 3.11 calls .exception() on a cancelled handler task.
            return
        finally:
            writer.close()

    async def _route(
        self, request: h11.Request, body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        method = request.method.decode()
        path = request.target.decode("latin-1").split("?", 1)[0]
        json_headers = [("content-type", "application/json")]
        if not path.startswith(_PREFIX):
            return 404, json_headers, b'{"errorMessage":"Not found","errorType":"NotFound"}'
        rest = path[len(_PREFIX) :]
        if method == "GET" and rest == "invocation/next":
            invocation = await self._queue.get()
            self._current = invocation
            self._on_next()
            self.ready.set()
            headers = [
                *json_headers,
                ("lambda-runtime-aws-request-id", invocation.request_id),
                # The runtime measures against the machine's real clock (never secretsd's
                # offset clock), from the moment it receives the event.
                (
                    "lambda-runtime-deadline-ms",
                    str(int(time.time() * 1000) + invocation.timeout_ms),
                ),
                ("lambda-runtime-invoked-function-arn", invocation.function_arn),
                ("lambda-runtime-trace-id", f"Root=1-{os.urandom(4).hex()}-{os.urandom(12).hex()}"),
            ]
            return 200, headers, invocation.payload
        accepted = b'{"status":"OK"}'
        if method == "POST" and rest == "init/error":
            self.init_error = body
            self.init_failed.set()
            return 202, json_headers, accepted
        if method == "POST" and rest.startswith("invocation/"):
            request_id, _, kind = rest[len("invocation/") :].partition("/")
            current = self._current
            if current is None or current.request_id != request_id or current.result.done():
                return (
                    400,
                    json_headers,
                    b'{"errorMessage":"Invalid request ID","errorType":"InvalidRequestID"}',
                )
            if kind == "response":
                if len(body) > _MAX_RESPONSE:
                    error = (
                        b'{"errorMessage":"Response payload size exceeded maximum allowed'
                        b' payload size (6291556 bytes).","errorType":"Function.ResponseSizeTooLarge"}'
                    )
                    current.result.set_result((error, "Unhandled"))
                    return 413, json_headers, error
                current.result.set_result((body, None))
                self._current = None
                return 202, json_headers, accepted
            if kind == "error":
                current.result.set_result((body, "Unhandled"))
                self._current = None
                return 202, json_headers, accepted
        return 404, json_headers, b'{"errorMessage":"Not found","errorType":"NotFound"}'


async def _read_request(
    conn: h11.Connection, reader: asyncio.StreamReader
) -> tuple[h11.Request | None, bytes]:
    request: h11.Request | None = None
    chunks: list[bytes] = []
    size = 0
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            data = await reader.read(65536)
            conn.receive_data(data)
            if not data and request is None:
                return None, b""
            continue
        if isinstance(event, h11.Request):
            request = event
        elif isinstance(event, h11.Data):
            size += len(event.data)
            if size > _MAX_RESPONSE + 1024 * 1024:
                raise h11.RemoteProtocolError("body too large")
            chunks.append(bytes(event.data))
        elif isinstance(event, h11.EndOfMessage):
            return request, b"".join(chunks)
        elif isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
            return None, b""


def _connection_of(pid: int | None, peer: object, ours: object) -> bool:
    """Whether the TCP connection from `peer` belongs to process `pid` (its socket inode is
    one of the process's file descriptors). Linux only; elsewhere every local peer is served."""
    if pid is None or not isinstance(peer, tuple) or not isinstance(ours, tuple):
        return False
    if not os.path.exists("/proc/net/tcp"):
        return True
    inode = _socket_inode(int(peer[1]), int(ours[1]))
    if inode is None:
        return False
    target = f"socket:[{inode}]"
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{pid}/fd/{fd}") == target:
                    return True
    except OSError:
        return False
    return False


def _socket_inode(client_port: int, server_port: int) -> str | None:
    """The inode of the client's end of the connection 127.0.0.1:`client_port` ->
    127.0.0.1:`server_port` (an earlier connection from the same port may linger in TIME_WAIT,
    without an inode)."""
    local = f"0100007F:{client_port:04X}"
    remote = f"0100007F:{server_port:04X}"
    with open("/proc/net/tcp", encoding="ascii") as table:
        next(table)
        for line in table:
            fields = line.split()
            if len(fields) > 9 and fields[1] == local and fields[2] == remote and fields[9] != "0":
                return fields[9]
    return None
