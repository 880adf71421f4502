"""The little HTTP the console needs on bare ASGI: requests, form bodies, cookies, responses."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

# Room for a 65,536-byte value and the rest of the wizard, form-encoded (3 bytes per byte worst).
MAX_FORM_BYTES = 512 * 1024

# Scripts and styles from /console/static only; nothing may frame the console.
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


class FormTooLarge(Exception):
    pass


@dataclass
class Request:
    method: str
    path: str  # below the mount, e.g. "/secrets"
    query: dict[str, str]
    headers: dict[str, str]
    cookies: dict[str, str]
    client_ip: str
    secure: bool
    form: dict[str, list[str]] = field(default_factory=dict)

    def arg(self, name: str, default: str = "") -> str:
        return self.query.get(name, default)

    def field(self, name: str, default: str = "") -> str:
        values = self.form.get(name)
        return values[0] if values else default

    def fields(self, name: str) -> list[str]:
        return self.form.get(name, [])


async def read_request(scope: Scope, receive: Receive, prefix: str) -> Request:
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    cookies: dict[str, str] = {}
    if "cookie" in headers:
        jar: SimpleCookie = SimpleCookie()
        try:
            jar.load(headers["cookie"])
        except Exception:  # a malformed cookie header is ignored, as browsers' are
            jar = SimpleCookie()
        cookies = {k: m.value for k, m in jar.items()}
    query = {k: v[0] for k, v in parse_qs(scope.get("query_string", b"").decode("latin-1")).items()}
    path = scope["path"][len(prefix.rstrip("/")) :] or "/"
    request = Request(
        method=scope["method"],
        path=path,
        query=query,
        headers=headers,
        cookies=cookies,
        client_ip=(scope.get("client") or ("", 0))[0],
        secure=scope.get("scheme") == "https",
    )
    if request.method == "POST":
        body = await _read_body(receive)
        if headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            request.form = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
        elif headers.get("content-type", "").startswith("application/json"):
            request.form = {"__json__": [body.decode("utf-8", "replace")]}
    return request


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            raise FormTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


@dataclass
class Response:
    status: int = 200
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)

    def set_cookie(
        self, name: str, value: str, *, secure: bool, max_age: int | None = None
    ) -> None:
        parts = [f"{name}={value}", "Path=/console/", "HttpOnly", "SameSite=Strict"]
        if secure:
            parts.append("Secure")
        if max_age is not None:
            parts.append(f"Max-Age={max_age}")
        self.headers.append(("set-cookie", "; ".join(parts)))

    def clear_cookie(self, name: str, *, secure: bool) -> None:
        self.set_cookie(name, "", secure=secure, max_age=0)


def redirect(location: str) -> Response:
    # 303: the browser follows a POST's redirect with a GET (no re-submission on reload).
    return Response(303, b"", headers=[("location", location)])


async def send_response(send: Send, response: Response, *, static: bool = False) -> None:
    headers = [
        (b"content-type", response.content_type.encode()),
        (b"content-length", str(len(response.body)).encode()),
        (b"content-security-policy", CSP.encode()),
        (b"x-frame-options", b"DENY"),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        # Pages may show values, and every page shows what only this principal may see.
        (b"cache-control", b"max-age=3600" if static else b"no-store"),
    ]
    headers += [(k.encode(), v.encode()) for k, v in response.headers]
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})
