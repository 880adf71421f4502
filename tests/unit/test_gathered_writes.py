"""The gathering transport and uvicorn's httptools protocol on it: while other requests are in
flight an answer goes out in one write, on the loop's next turn, in order; alone, it goes out at
once; nothing written before a close is lost."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from uvicorn.config import Config
from uvicorn.lifespan.off import LifespanOff
from uvicorn.server import ServerState

from secretsd.protocol.gathered_writes import GatheringHttpToolsProtocol, GatheringTransport


class RecordingTransport(asyncio.Transport):
    def __init__(self, peer: tuple[str, int] = ("127.0.0.1", 40000)) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False
        self.aborted = False
        self.reading = True
        self.eof = False
        self._peer = peer

    def write(self, data: Any) -> None:
        assert not self.closed, "written after close"
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = self.closed = True

    def is_closing(self) -> bool:
        return self.closed

    def write_eof(self) -> None:
        self.eof = True

    def can_write_eof(self) -> bool:
        return True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": self._peer, "sockname": ("127.0.0.1", 8080)}.get(name, default)

    def pause_reading(self) -> None:
        self.reading = False

    def resume_reading(self) -> None:
        self.reading = True

    def is_reading(self) -> bool:
        return self.reading

    def get_write_buffer_size(self) -> int:
        return 0


# Two requests in flight: this one and another.
BUSY = frozenset({"this request", "another request"})


async def _next_turn() -> None:
    # call_soon callbacks made in this turn run in the next one; two sleeps are one full turn
    # whatever this task's own place in the queue.
    await asyncio.sleep(0)
    await asyncio.sleep(0)


def test_writes_of_one_turn_go_out_together_on_the_next() -> None:
    async def scenario() -> None:
        inner = RecordingTransport()
        outer = GatheringTransport(inner, asyncio.get_running_loop(), BUSY)
        outer.write(b"HTTP/1.1 200 OK\r\n\r\n")
        outer.write(bytearray(b"body"))
        outer.write(b"")
        assert inner.writes == []
        assert outer.get_write_buffer_size() == len(b"HTTP/1.1 200 OK\r\n\r\nbody")
        await _next_turn()
        assert inner.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody"]
        assert outer.get_write_buffer_size() == 0
        outer.write(memoryview(b"next"))
        await _next_turn()
        assert inner.writes == [b"HTTP/1.1 200 OK\r\n\r\nbody", b"next"]

    asyncio.run(scenario())


def test_alone_in_flight_writes_go_out_at_once() -> None:
    async def scenario() -> None:
        inner = RecordingTransport()
        in_flight = {"this request"}
        outer = GatheringTransport(inner, asyncio.get_running_loop(), in_flight)
        outer.write(b"head")
        outer.write(b"body")
        assert inner.writes == [b"head", b"body"]
        # Another request arrives: from now on writes wait for the next turn.
        in_flight.add("another request")
        outer.write(b"next head")
        outer.write(b"next body")
        assert inner.writes == [b"head", b"body"]
        # Held writes keep their order even if the other request ends before the turn.
        in_flight.discard("another request")
        outer.write(b"more")
        await _next_turn()
        assert inner.writes == [b"head", b"body", b"next headnext bodymore"]

    asyncio.run(scenario())


def test_a_held_buffer_is_a_copy_of_what_was_written() -> None:
    async def scenario() -> None:
        inner = RecordingTransport()
        outer = GatheringTransport(inner, asyncio.get_running_loop(), BUSY)
        data = bytearray(b"abc")
        outer.write(data)
        data[:] = b"xyz"
        await _next_turn()
        assert inner.writes == [b"abc"]

    asyncio.run(scenario())


def test_close_sends_what_was_written_first_and_abort_drops_it() -> None:
    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        inner = RecordingTransport()
        outer = GatheringTransport(inner, loop, BUSY)
        outer.write(b"last words")
        outer.close()
        assert inner.writes == [b"last words"] and inner.closed
        await _next_turn()  # the scheduled flush finds nothing left, and writes nothing
        assert inner.writes == [b"last words"]

        aborted = RecordingTransport()
        outer = GatheringTransport(aborted, loop, BUSY)
        outer.write(b"never sent")
        outer.abort()
        await _next_turn()
        assert aborted.writes == [] and aborted.aborted

        eof = RecordingTransport()
        outer = GatheringTransport(eof, loop, BUSY)
        outer.write(b"before eof")
        outer.write_eof()
        assert eof.writes == [b"before eof"] and eof.eof

    asyncio.run(scenario())


def test_nothing_is_written_to_a_transport_that_is_closing() -> None:
    async def scenario() -> None:
        inner = RecordingTransport()
        outer = GatheringTransport(inner, asyncio.get_running_loop(), BUSY)
        outer.write(b"answer")
        inner.closed = True  # the peer went away before the loop's next turn
        await _next_turn()
        assert inner.writes == []

    asyncio.run(scenario())


def test_the_rest_passes_through() -> None:
    async def scenario() -> None:
        inner = RecordingTransport(peer=("10.0.0.7", 5555))
        outer = GatheringTransport(inner, asyncio.get_running_loop(), BUSY)
        assert outer.get_extra_info("peername") == ("10.0.0.7", 5555)
        assert outer.get_extra_info("missing", "d") == "d"
        outer.pause_reading()
        assert not inner.reading and not outer.is_reading()
        outer.resume_reading()
        assert inner.reading and outer.is_reading()
        assert outer.can_write_eof()
        assert not outer.is_closing()

    asyncio.run(scenario())


async def _hello(scope: Any, receive: Any, send: Any) -> None:
    assert scope["type"] == "http"
    message = await receive()
    body = b"you sent " + message["body"]
    headers = [(b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _protocol(loop: asyncio.AbstractEventLoop, state: ServerState) -> GatheringHttpToolsProtocol:
    config = Config(app=_hello, lifespan="off", log_config=None, http=GatheringHttpToolsProtocol)
    return GatheringHttpToolsProtocol(
        config=config, server_state=state, app_state=LifespanOff(config).state, _loop=loop
    )


class _Elsewhere:
    """Stands for a request running on another connection (uvicorn's ServerState.tasks holds
    the worker's running request tasks)."""


@pytest.mark.parametrize("requests", [1, 3])
def test_uvicorn_answers_each_request_in_one_write_under_load(requests: int) -> None:
    """Through uvicorn's own protocol, with another request in flight: pipelined requests on
    one connection get their answers in order, each in a single write (head and body)."""

    async def scenario() -> None:
        inner = RecordingTransport()
        state = ServerState()
        state.tasks.add(_Elsewhere())  # type: ignore[arg-type]
        protocol = _protocol(asyncio.get_running_loop(), state)
        protocol.connection_made(inner)
        request = b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s"
        wire = b"".join(request % (len(b"n=%d" % i), b"n=%d" % i) for i in range(requests))
        protocol.data_received(wire)
        for _ in range(20 * requests):
            if len(inner.writes) == requests:
                break
            await asyncio.sleep(0)
        assert len(inner.writes) == requests
        for i, written in enumerate(inner.writes):
            head, _, body = written.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200 OK\r\n")
            assert body == b"you sent n=%d" % i
        protocol.shutdown()
        assert inner.closed

    asyncio.run(scenario())


def test_uvicorn_alone_writes_as_uvicorn_does() -> None:
    """With no other request in flight nothing waits: uvicorn's head and body writes go out as
    they come."""

    async def scenario() -> None:
        inner = RecordingTransport()
        protocol = _protocol(asyncio.get_running_loop(), ServerState())
        protocol.connection_made(inner)
        protocol.data_received(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc")
        for _ in range(20):
            if len(inner.writes) == 2:
                break
            await asyncio.sleep(0)
        assert len(inner.writes) == 2
        assert inner.writes[0].startswith(b"HTTP/1.1 200 OK\r\n")
        assert inner.writes[1] == b"you sent abc"

    asyncio.run(scenario())
