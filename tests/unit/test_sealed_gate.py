"""The sealed gate at the ASGI level: what a sealed server answers, and the hand-over."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from secretsd.protocol.sealed import SEALED_MESSAGE, SealedGate, UnsealRefused


class _Inner:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.lifespan: list[str] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                self.lifespan.append(message["type"])
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        self.calls.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"inner"})


async def _request(
    app: Any, method: str, path: str, body: bytes = b"", content_type: bytes = b""
) -> tuple[int, bytes]:
    sent: list[Any] = []
    messages = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> Any:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: Any) -> None:
        sent.append(message)

    scope: dict[str, Any] = {"type": "http", "method": method, "path": path, "headers": []}
    if content_type:
        scope["headers"] = [(b"content-type", content_type)]
    await app(scope, receive, send)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])


def test_sealed_until_the_right_passphrase_then_passes_through() -> None:
    inner = _Inner()

    def unseal(passphrase: str) -> Any:
        if passphrase != "right":
            raise UnsealRefused("The passphrase does not unseal secretsd.")
        return inner

    gate = SealedGate(unseal, {"workers": 1})

    async def scenario() -> None:
        lifespan_in: asyncio.Queue[Any] = asyncio.Queue()
        lifespan_out: list[Any] = []

        async def lifespan_send(message: Any) -> None:
            lifespan_out.append(message["type"])

        task = asyncio.create_task(gate({"type": "lifespan"}, lifespan_in.get, lifespan_send))
        await lifespan_in.put({"type": "lifespan.startup"})
        await asyncio.sleep(0)

        status, body = await _request(gate, "GET", "/health")
        assert status == 503 and json.loads(body)["sealed"] is True
        status, body = await _request(gate, "POST", "/", b"{}", b"application/x-amz-json-1.1")
        assert status == 503
        assert json.loads(body) == {
            "__type": "ServiceUnavailableException",
            "Message": SEALED_MESSAGE,
        }
        status, body = await _request(
            gate, "POST", "/", b"Action=GetCallerIdentity", b"application/x-www-form-urlencoded"
        )
        assert status == 503 and b"<Code>ServiceUnavailable</Code>" in body
        status, body = await _request(gate, "POST", "/unseal", b"not json")
        assert status == 400 and json.loads(body)["__type"] == "ValidationException"
        status, body = await _request(gate, "GET", "/unseal")
        assert status == 405
        status, body = await _request(gate, "POST", "/unseal", b'{"passphrase": "wrong"}')
        assert status == 403 and json.loads(body)["__type"] == "AccessDeniedException"
        assert gate.sealed and inner.calls == []

        status, body = await _request(gate, "POST", "/unseal", b'{"passphrase": "right"}')
        assert status == 200 and json.loads(body)["sealed"] is False
        assert not gate.sealed
        # The inner app's own startup ran (its background tasks start there).
        assert inner.lifespan == ["lifespan.startup"]
        assert await _request(gate, "GET", "/health") == (200, b"inner")
        assert await _request(gate, "POST", "/") == (200, b"inner")
        # Unsealing again is harmless and does not ask for the passphrase.
        status, _ = await _request(gate, "POST", "/unseal", b"{}")
        assert status == 200

        await lifespan_in.put({"type": "lifespan.shutdown"})
        await task
        assert inner.lifespan == ["lifespan.startup", "lifespan.shutdown"]
        assert lifespan_out == ["lifespan.startup.complete", "lifespan.shutdown.complete"]

    asyncio.run(scenario())


def test_unexpected_unseal_failure_is_a_500_without_details() -> None:
    def unseal(passphrase: str) -> Any:
        raise RuntimeError("database at /secret/path is down")

    gate = SealedGate(unseal, {})
    status, body = asyncio.run(_request(gate, "POST", "/unseal", b'{"passphrase": "p"}'))
    assert status == 500 and b"/secret/path" not in body and gate.sealed
