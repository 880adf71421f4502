"""The console's ASGI app: routes, sessions, CSRF, and pages rendered from templates.

Every page action is an API call made as the signed-in principal (console/calls.py), so the
console can do no more than that principal's policies allow, and refusals read as AWS's.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from importlib import resources
from typing import Any

import jinja2

from secretsd.console.calls import ApiOperations
from secretsd.console.web import (
    FormTooLarge,
    Receive,
    Request,
    Response,
    Scope,
    Send,
    read_request,
    redirect,
    send_response,
)
from secretsd.errors import ServiceError
from secretsd.service.console_sessions import (
    ConsoleSession,
    ConsoleSessions,
    SignInRefused,
    SignInThrottled,
)

log = logging.getLogger("secretsd.console")

PREFIX = "/console/"
SESSION_COOKIE = "secretsd_console"
# Before sign-in there is no session: the sign-in form's CSRF token is a double-submit cookie.
PRESESSION_COOKIE = "secretsd_console_pre"
_STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
PAGE_SIZES = (10, 25, 50, 100)
LIST_FILTERS = ("all", "name", "description", "tag-key", "tag-value")

Page = Callable[[Request, ConsoleSession], Awaitable[Response]]


def _when(epoch: object) -> str:
    if not isinstance(epoch, int | float):
        return "-"
    return datetime.fromtimestamp(epoch, UTC).strftime("%B %d, %Y, %H:%M:%S")


def _day(epoch: object) -> str:
    if not isinstance(epoch, int | float):
        return "-"
    return datetime.fromtimestamp(epoch, UTC).strftime("%B %d, %Y")


class ConsoleApp:
    def __init__(
        self,
        sessions: ConsoleSessions,
        secrets_api: ApiOperations,
        kms_api: ApiOperations,
    ) -> None:
        self._sessions = sessions
        self._sm = secrets_api
        self._kms = kms_api
        self._templates = jinja2.Environment(
            loader=jinja2.PackageLoader("secretsd.console", "templates"),
            autoescape=True,
        )
        self._templates.filters["when"] = _when
        self._templates.filters["day"] = _day
        self._static = {
            name: (
                resources.files("secretsd.console").joinpath("static", name).read_bytes(),
                _STATIC_TYPES[name[name.rfind(".") :]],
            )
            for name in ("console.css", "console.js")
        }
        self._pages: dict[tuple[str, str], Page] = {
            ("GET", "/secrets"): self.list_page,
            ("POST", "/signout"): self.sign_out,
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            request = await read_request(scope, receive, PREFIX)
        except FormTooLarge:
            await send_response(send, Response(413, b"Request too large.", "text/plain"))
            return
        if request.method == "GET" and request.path.startswith("/static/"):
            found = self._static.get(request.path[len("/static/") :])
            if found is None:
                await send_response(send, self._not_found())
            else:
                await send_response(send, Response(200, found[0], found[1]), static=True)
            return
        try:
            response = await self._route(request)
        except Exception:
            # Never a traceback in a page; never a value in the log (nothing puts one in an
            # exception message).
            log.exception("console error path=%s", request.path)
            response = self._render(
                "error.html", None, status=500, message="Something went wrong on the server side."
            )
        await send_response(send, response)

    async def _route(self, request: Request) -> Response:
        if request.path in ("/", ""):
            return redirect(PREFIX + "secrets")
        if request.path == "/signin":
            if request.method == "POST":
                return self.sign_in(request)
            return self.sign_in_page(request)
        session = self._session(request)
        if session is None:
            if request.method == "GET":
                response = redirect(PREFIX + "signin")
            else:
                response = self._render(
                    "error.html", None, status=401, message="Your session has ended. Sign in again."
                )
            response.clear_cookie(SESSION_COOKIE, secure=request.secure)
            return response
        if request.method == "POST" and not self._csrf_ok(request, session.csrf_token):
            return self._render(
                "error.html",
                session,
                status=403,
                message="The form has expired or did not come from this console. Reload the page and try again.",
            )
        page = self._pages.get((request.method, request.path))
        if page is None:
            return self._not_found(session)
        return await page(request, session)

    # -- helpers -----------------------------------------------------------------------------
    def _session(self, request: Request) -> ConsoleSession | None:
        token = request.cookies.get(SESSION_COOKIE)
        if not token:
            return None
        return self._sessions.resume(token)

    @staticmethod
    def _csrf_ok(request: Request, expected: str) -> bool:
        sent = request.field("csrf_token") or request.headers.get("x-csrf-token", "")
        return bool(sent) and hmac.compare_digest(sent.encode(), expected.encode())

    def _render(
        self, template: str, session: ConsoleSession | None, *, status: int = 200, **values: Any
    ) -> Response:
        html = self._templates.get_template(template).render(
            session=session,
            csrf_token=session.csrf_token if session else values.pop("csrf_token", ""),
            prefix=PREFIX,
            **values,
        )
        return Response(status, html.encode())

    def _not_found(self, session: ConsoleSession | None = None) -> Response:
        return self._render("error.html", session, status=404, message="This page does not exist.")

    # -- sign-in -----------------------------------------------------------------------------
    def sign_in_page(
        self, request: Request, *, error: str = "", status: int = 200, **values: Any
    ) -> Response:
        token = secrets.token_urlsafe(32)
        response = self._render(
            "signin.html",
            None,
            status=status,
            csrf_token=token,
            error=error,
            method=values.get("method", request.arg("method", "password")),
            account=values.get("account", ""),
            user_name=values.get("user_name", ""),
            region=values.get("region", "us-east-1"),
        )
        response.set_cookie(PRESESSION_COOKIE, token, secure=request.secure)
        return response

    def sign_in(self, request: Request) -> Response:
        expected = request.cookies.get(PRESESSION_COOKIE, "")
        method = request.field("method", "password")
        region = request.field("region", "us-east-1").strip() or "us-east-1"
        kept = {
            "method": method,
            "account": request.field("account").strip(),
            "user_name": request.field("user_name").strip(),
            "region": region,
        }
        if not expected or not self._csrf_ok(request, expected):
            return self.sign_in_page(
                request,
                error="The sign-in form has expired. Try again.",
                status=403,
                **kept,
            )
        try:
            if method == "key":
                session = self._sessions.sign_in_key(
                    request.field("access_key_id").strip(),
                    request.field("secret_access_key").strip(),
                    region,
                    request.client_ip,
                )
            else:
                session = self._sessions.sign_in_password(
                    kept["account"],
                    kept["user_name"],
                    request.field("password"),
                    region,
                    request.client_ip,
                )
        except SignInThrottled:
            return self.sign_in_page(
                request,
                error="Too many failed sign-in attempts. Wait a few minutes and try again.",
                status=429,
                **kept,
            )
        except SignInRefused:
            message = (
                "The access key ID or secret access key is incorrect."
                if method == "key"
                else "Your authentication information is incorrect. Please try again."
            )
            return self.sign_in_page(request, error=message, status=401, **kept)
        response = redirect(PREFIX + "secrets")
        response.set_cookie(SESSION_COOKIE, session.token, secure=request.secure)
        response.clear_cookie(PRESESSION_COOKIE, secure=request.secure)
        return response

    async def sign_out(self, request: Request, session: ConsoleSession) -> Response:
        self._sessions.sign_out(session.token)
        response = redirect(PREFIX + "signin")
        response.clear_cookie(SESSION_COOKIE, secure=request.secure)
        return response

    # -- secrets list ------------------------------------------------------------------------
    async def list_page(self, request: Request, session: ConsoleSession) -> Response:
        query = request.arg("q").strip()
        where = request.arg("filter", "all")
        if where not in LIST_FILTERS:
            where = "all"
        order = "desc" if request.arg("order") == "desc" else "asc"
        sort_by = request.arg("sort", "name")
        if sort_by not in ("name", "created-date", "last-accessed-date", "last-changed-date"):
            sort_by = "name"
        try:
            size = int(request.arg("size", "25"))
        except ValueError:
            size = 25
        if size not in PAGE_SIZES:
            size = 25
        deleted = request.arg("deleted") == "1"
        params: dict[str, Any] = {
            "MaxResults": size,
            "SortOrder": order,
            "SortBy": sort_by,
            "IncludePlannedDeletion": deleted,
        }
        if query:
            params["Filters"] = [{"Key": where, "Values": [query]}]
        if request.arg("next"):
            params["NextToken"] = request.arg("next")
        error = None
        listing: dict[str, Any] = {}
        try:
            listing = await self._sm.call(
                session, "ListSecrets", params, source_ip=request.client_ip, secure=request.secure
            )
        except ServiceError as exc:
            error = exc
        return self._render(
            "list.html",
            session,
            secrets=listing.get("SecretList", []),
            next_token=listing.get("NextToken"),
            error=error,
            q=query,
            where=where,
            order=order,
            sort_by=sort_by,
            size=size,
            sizes=PAGE_SIZES,
            filters=LIST_FILTERS,
            deleted=deleted,
            flash=request.arg("stored"),
        )
