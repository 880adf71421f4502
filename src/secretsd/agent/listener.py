"""The Agent's HTTP API, answered as aws-secretsmanager-agent answers it.

GET /secretsmanager/get?secretId=ID[&versionId=&versionStage=&refreshNow=true]
GET /v1/ID[?versionId=&versionStage=&refreshNow=true]
GET /ping -> "healthy" (no token needed)

Every other request needs the SSRF token in X-Aws-Parameters-Secrets-Token (or X-Vault-Token):
403 "Bad Token" without it; 400 "Forwarded" with X-Forwarded-For; 405 "Not allowed" for methods
other than GET; 404 "Not found" for other paths; 400 with the parser's message for bad
parameters; Secrets Manager's errors with their status as {"__type": ..., "message": ...}.
The body of a success is GetSecretValue's answer (CreatedDate as a string of epoch seconds).
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import logging
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import parse_qsl

import orjson

from secretsd.agent.cache import AgentCache, Key, still_current
from secretsd.agent.upstream import UpstreamError

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

TOKEN_HEADERS = ("x-aws-parameters-secrets-token", "x-vault-token")
PATH_PREFIX = "/v1/"
QUERY_PATH = "/secretsmanager/get"
INTERNAL_FAILURE = b'{"__type":"InternalFailure"}'

log = logging.getLogger("secretsd.agent")


class Upstream(Protocol):
    def get_secret_value(
        self, secret_id: str, version_id: str | None, version_stage: str | None
    ) -> dict[str, Any]: ...

    def versions_to_stages(self, secret_arn: str) -> dict[str, list[str]]: ...


@dataclass(frozen=True)
class HttpError(Exception):
    status: int
    body: bytes


def error_response(code: str, message: str) -> bytes:
    """The Agent's error body: JSON 1.1 shape with a lower-case `message`."""
    if not message or code == "InternalFailure":
        return INTERNAL_FAILURE
    return b'{"__type":' + orjson.dumps(code) + b', "message":' + orjson.dumps(message) + b"}"


def read_token(names: Sequence[str], environ: MutableMapping[str, str] | dict[str, str]) -> str:
    """The first of the named variables that is set; `file://PATH` means the file's contents."""
    for name in names:
        value = environ.get(name)
        if value is None:
            continue
        if value.startswith("file://"):
            with open(value.removeprefix("file://"), encoding="utf-8") as f:
                return f.read().strip()
        return value
    raise LookupError(f"none of {', '.join(names)} is set: the agent listener needs its token")


def parse_request(path: str, query: str) -> Key | None:
    """(secretId, versionId, versionStage) and refreshNow from either form; None for a path
    that is neither. HttpError(400) with the Agent's messages for bad parameters."""
    pairs = parse_qsl(query, keep_blank_values=True)
    allowed: tuple[str, ...]
    if path == QUERY_PATH:
        secret_id = ""
        allowed = ("secretId", "versionId", "versionStage", "refreshNow")
    elif path.startswith(PATH_PREFIX):
        # `path` is already percent-decoded (ASGI's scope["path"]).
        secret_id = path[len(PATH_PREFIX) :]
        if not secret_id:
            raise HttpError(400, b"missing secret ID")
        allowed = ("versionId", "versionStage", "refreshNow")
    else:
        return None
    version_id: str | None = None
    version_stage: str | None = None
    for name, value in pairs:
        if name not in allowed:
            raise HttpError(400, f"unknown parameter: {name}".encode())
        if name == "secretId":
            secret_id = value
        elif name == "versionId":
            version_id = value
        elif name == "versionStage":
            version_stage = value
    if not secret_id:
        raise HttpError(400, b"missing parameter secretId")
    return secret_id, version_id, version_stage


def refresh_now(query: str) -> bool:
    value = "false"
    for name, raw in parse_qsl(query, keep_blank_values=True):
        if name == "refreshNow":
            value = raw.lower()
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise HttpError(400, b"invalid refreshNow value")


def render(answer: dict[str, Any]) -> dict[str, Any]:
    """GetSecretValue's answer as the Agent serialises it."""
    shown: dict[str, Any] = {
        "ARN": answer.get("ARN"),
        "Name": answer.get("Name"),
        "VersionId": answer.get("VersionId"),
    }
    if answer.get("SecretString") is not None:
        shown["SecretString"] = answer["SecretString"]
    if answer.get("SecretBinary") is not None:
        shown["SecretBinary"] = base64.b64encode(answer["SecretBinary"]).decode()
    if answer.get("VersionStages") is not None:
        shown["VersionStages"] = list(answer["VersionStages"])
    created = answer.get("CreatedDate")
    shown["CreatedDate"] = _epoch_text(created) if isinstance(created, datetime) else None
    return shown


def _epoch_text(when: datetime) -> str:
    millis = round(when.timestamp() * 1000)
    seconds, frac = divmod(millis, 1000)
    return f"{seconds}.{frac:03d}".rstrip("0").rstrip(".")


class AgentApp:
    def __init__(
        self,
        upstream: Upstream,
        cache: AgentCache,
        token: str,
        max_connections: int = 800,
    ) -> None:
        self._upstream = upstream
        self._cache = cache
        self._token = token.encode()
        self._max = max_connections
        self._active = 0
        self._refreshing: dict[Key, asyncio.Lock] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        self._active += 1
        try:
            status, body = await self._answer(scope)
        except HttpError as exc:
            status, body = exc.status, exc.body
        except Exception:
            log.exception("agent listener: internal error")
            status, body = 500, INTERNAL_FAILURE
        finally:
            self._active -= 1
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _answer(self, scope: Scope) -> tuple[int, bytes]:
        path: str = scope["path"]
        health = path == "/ping"
        if self._active > self._max + (2 if health else 0):
            raise HttpError(429, b"Connection limit exceeded")
        if not health:
            self._check_token(scope["headers"])
        if scope["method"] != "GET":
            raise HttpError(405, b"Not allowed")
        if health:
            return 200, b"healthy"
        query = scope.get("query_string", b"").decode("latin-1")
        key = parse_request(path, query)
        if key is None:
            raise HttpError(404, b"Not found")
        refresh = refresh_now(query)
        try:
            value = await self._fetch(key, refresh)
        except UpstreamError as exc:
            return exc.status, error_response(exc.code, exc.message)
        return 200, orjson.dumps(value)

    def _check_token(self, headers: list[tuple[bytes, bytes]]) -> None:
        if any(name == b"x-forwarded-for" for name, _ in headers):
            log.error("Rejecting request with X-Forwarded-For header")
            raise HttpError(400, b"Forwarded")
        for name, value in headers:
            if name.decode("latin-1") in TOKEN_HEADERS and hmac.compare_digest(value, self._token):
                return
        log.error("Rejecting request with incorrect SSRF token")
        raise HttpError(403, b"Bad Token")

    async def _fetch(self, key: Key, refresh: bool) -> dict[str, Any]:
        if not refresh:
            cached, fresh = self._cache.lookup(key)
            if cached is not None and fresh:
                return cached
        # One refresh per key at a time: concurrent misses wait for the first rather than all
        # calling the server; other keys' hits and refreshes go on meanwhile.
        lock = self._refreshing.setdefault(key, asyncio.Lock())
        try:
            async with lock:
                return await self._refresh(key, refresh)
        finally:
            if not lock.locked():
                self._refreshing.pop(key, None)

    async def _refresh(self, key: Key, refresh: bool) -> dict[str, Any]:
        cached, fresh = (None, False) if refresh else self._cache.lookup(key)
        if cached is not None and fresh:
            return cached  # refreshed by the request this one waited for
        if cached is not None:
            try:
                stages = await asyncio.to_thread(
                    self._upstream.versions_to_stages, str(cached["ARN"])
                )
            except UpstreamError as exc:
                if not exc.transient:
                    raise
                current = True  # the Agent serves the cached value through an outage
            else:
                current = still_current(key, cached, stages)
            if current:
                self._cache.store(key, cached)
                return cached
        try:
            answer = await asyncio.to_thread(self._upstream.get_secret_value, *key)
        except UpstreamError as exc:
            if cached is not None and exc.transient:
                return cached
            raise
        value = render(answer)
        self._cache.store(key, value)
        return value
