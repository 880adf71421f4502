"""uvicorn's httptools protocol, whose answers wait for the event loop's next turn while other
requests are in flight.

uvicorn writes an answer's status line and headers when the app sends `http.response.start`,
and its body when the app sends `http.response.body`: two `write()` system calls, each made the
moment the app hands its part over, in the middle of the loop's turn. On loopback every such
call also runs the client's TCP receive and wake-up on this core, between one request's Python
and the next one's.

While the worker has other requests in flight, a connection's writes wait in a list until the
loop's next turn and then go out in one call: every request that was ready in this turn has run
by then, and each answer costs one system call. With no other request in flight they go out at
once, as uvicorn's own do: holding them would only add a turn of the loop to the one answer's
latency. ADR 0011 has the measurements (GetSecretValue at 64 connections: +31% on one core).
The bare ASGI ceiling of the benchmarks runs on this protocol too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from typing import Any, cast

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


class GatheringTransport(asyncio.Transport):
    """A transport that passes everything on to `transport`, except that what is written while
    `in_flight` (the worker's running requests, this one's included) holds more than one
    waits for the loop's next turn, and then goes out in one write with whatever followed it."""

    __slots__ = ("_in_flight", "_loop", "_parts", "_transport")

    def __init__(
        self,
        transport: asyncio.Transport,
        loop: asyncio.AbstractEventLoop,
        in_flight: Collection[object] = (),
    ) -> None:
        super().__init__()
        self._transport = transport
        self._loop = loop
        self._in_flight = in_flight
        self._parts: list[bytes] | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        parts = self._parts
        if parts is not None:
            # Held already: what follows goes after it, in the same write.
            parts.append(bytes(data))
        elif len(self._in_flight) > 1:
            self._parts = [bytes(data)]
            self._loop.call_soon(self._flush)
        else:
            self._transport.write(data)

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def _flush(self) -> None:
        parts = self._parts
        self._parts = None
        if not parts or self._transport.is_closing():
            # The peer went away, or the connection was aborted: nothing can be sent.
            return
        self._transport.write(parts[0] if len(parts) == 1 else b"".join(parts))

    def close(self) -> None:
        # What was written before close() still goes out, as with the transport itself.
        self._flush()
        self._transport.close()

    def abort(self) -> None:
        self._parts = None
        self._transport.abort()

    def write_eof(self) -> None:
        self._flush()
        self._transport.write_eof()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()

    def get_write_buffer_size(self) -> int:
        held = sum(len(part) for part in self._parts) if self._parts else 0
        return held + self._transport.get_write_buffer_size()

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)


class GatheringHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol on a GatheringTransport (`uvicorn.Config(http=...)`)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but have its methods.
        # self.tasks: the server's running requests, shared by all its connections.
        real = cast(asyncio.Transport, transport)
        super().connection_made(GatheringTransport(real, self.loop, self.tasks))
