"""The console's ASGI app: routes, sessions, CSRF, and pages rendered from templates.

Every page action is an API call made as the signed-in principal (console/calls.py), so the
console can do no more than that principal's policies allow, and refusals read as AWS's.
"""

from __future__ import annotations

import base64
import contextlib
import hmac
import json
import logging
import secrets
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from importlib import resources
from typing import Any
from urllib.parse import quote, urlencode

import jinja2

from secretsd.clock import Clock, SystemClock
from secretsd.console.activity import activity_row
from secretsd.console.calls import ApiOperations, call_context
from secretsd.console.compare import VersionDiff, compare, reveal
from secretsd.console.forms import (
    DATABASE_ENGINES,
    NAME_MARKER,
    NAME_RULES,
    REGIONS,
    SAMPLE_LANGUAGES,
    FormError,
    key_value_view,
    rotation_request,
    sample_code,
    secret_value,
    store_request,
)
from secretsd.console.rotations import DUE_WITHIN_SECONDS, STATUSES, dashboard, needs_outcome
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
from secretsd.service.rotation_outcomes import RotationOutcomes

log = logging.getLogger("secretsd.console")

PREFIX = "/console/"
SESSION_COOKIE = "secretsd_console"
# Before sign-in there is no session: the sign-in form's CSRF token is a double-submit cookie.
PRESESSION_COOKIE = "secretsd_console_pre"
_STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}
PAGE_SIZES = (10, 25, 50, 100)
# The dashboard reads at most this many secrets (ListSecrets pages of 100) per view.
ROTATION_SCAN = 1000
# Previous page remembers this many pages back (First page always works).
BACK_PAGES = 20
FIRST_PAGE = "~"
# The key picker describes at most this many keys without an alias.
UNNAMED_KEYS = 25
# Events per page of a secret's activity.
ACTIVITY_PAGE = 20
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
        clock: Clock | None = None,
        rotation_outcomes: RotationOutcomes | None = None,
        trail_api: ApiOperations | None = None,
    ) -> None:
        self._sessions = sessions
        # CloudTrail's LookupEvents, for a secret's activity (beyond AWS's console).
        self._trail = trail_api
        self._outcomes = rotation_outcomes
        # The server's clock (with its offset), so "due" and "overdue" agree with the API's dates.
        self._clock = clock or SystemClock()
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
            ("GET", "/secrets/new"): self.new_page,
            ("GET", "/rotations"): self.rotations_page,
            ("POST", "/secrets/new"): self.store,
            ("POST", "/keys/new"): self.add_key,
            ("POST", "/policy/validate"): self.validate_policy,
            ("GET", "/secrets/detail"): self.detail_page,
            ("POST", "/secrets/detail/retrieve"): self.retrieve,
            ("POST", "/secrets/detail/compare"): self.compare_versions,
            ("POST", "/secrets/detail/value"): self.put_value,
            ("POST", "/secrets/detail/delete"): self.delete,
            ("POST", "/secrets/detail/restore"): self.restore,
            ("POST", "/secrets/detail/tags"): self.edit_tags,
            ("POST", "/secrets/detail/policy"): self.edit_policy,
            ("POST", "/secrets/detail/rotation"): self.edit_rotation,
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
    async def list_page(
        self, request: Request, session: ConsoleSession, *, problems: tuple[str, ...] = ()
    ) -> Response:
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
        # ListSecrets only pages forward: the tokens of the pages before this one ride in the
        # address ("~" for the first page), so Previous page can ask for the one before.
        back = [t for t in request.arg("back").split(".") if t][-BACK_PAGES:]
        shown = {
            "q": query,
            "filter": where,
            "sort": sort_by,
            "order": order,
            "size": str(size),
            **({"deleted": "1"} if deleted else {}),
        }
        previous_href = next_href = None
        if back:
            before = {"next": back[-1]} if back[-1] != FIRST_PAGE else {}
            previous_href = "secrets?" + urlencode(
                {**shown, **before, **({"back": ".".join(back[:-1])} if back[:-1] else {})}
            )
        if listing.get("NextToken"):
            stack = [*back, request.arg("next") or FIRST_PAGE]
            next_href = "secrets?" + urlencode(
                {**shown, "next": listing["NextToken"], "back": ".".join(stack)}
            )
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
            paged=bool(request.arg("next")),
            previous_href=previous_href,
            next_href=next_href,
            problems=problems,
        )

    # -- rotations dashboard -----------------------------------------------------------------
    async def rotations_page(self, request: Request, session: ConsoleSession) -> Response:
        """Every secret the user may list whose rotation is on or unfinished (ListSecrets pages,
        up to ROTATION_SCAN secrets)."""
        entries: list[dict[str, Any]] = []
        params: dict[str, Any] = {"MaxResults": 100}
        error = None
        truncated = False
        while True:
            try:
                listing = await self._call(self._sm, request, session, "ListSecrets", params)
            except ServiceError as exc:
                error = exc
                break
            entries.extend(listing.get("SecretList", []))
            token = listing.get("NextToken")
            if not token:
                break
            if len(entries) >= ROTATION_SCAN:
                truncated = True
                break
            params = {"MaxResults": 100, "NextToken": token}
        failed_at: dict[str, float] = {}
        if self._outcomes is not None:
            arns = [str(e["ARN"]) for e in entries if needs_outcome(e)]
            if arns:
                log.info(
                    "console rotation outcomes by %s: %d secrets", session.identity.arn, len(arns)
                )
                ctx = call_context(
                    session, "DescribeSecret", source_ip=request.client_ip, secure=request.secure
                )
                found = self._outcomes.last(ctx, arns)
                failed_at = {a: o.time_ms / 1000 for a, o in found.items() if o.failed}
        rows = dashboard(entries, self._clock.now_ms() / 1000, failed_at)
        return self._render(
            "rotations.html",
            session,
            rows=rows,
            counts={s: sum(1 for r in rows if r.status == s) for s in STATUSES},
            due_days=DUE_WITHIN_SECONDS // 86400,
            scanned=len(entries),
            truncated=truncated,
            error=error,
        )

    # -- calls -------------------------------------------------------------------------------
    async def _call(
        self,
        api: ApiOperations,
        request: Request,
        session: ConsoleSession,
        operation: str,
        params: dict[str, Any],
    ) -> dict[str, Any]:
        return await api.call(
            session, operation, params, source_ip=request.client_ip, secure=request.secure
        )

    @staticmethod
    def _wants_json(request: Request) -> bool:
        return "application/json" in request.headers.get("accept", "")

    @staticmethod
    def _json(status: int, body: dict[str, Any]) -> Response:
        return Response(status, json.dumps(body).encode(), "application/json")

    @staticmethod
    def _endpoint(request: Request) -> str:
        host = request.headers.get("host", "localhost")
        return f"{'https' if request.secure else 'http'}://{host}"

    # -- store a new secret ------------------------------------------------------------------
    async def _customer_keys(
        self, request: Request, session: ConsoleSession
    ) -> list[tuple[str, str]]:
        """Customer managed keys this principal may use, as (KmsKeyId, label): aliases first
        (what ListAliases shows), then enabled keys without an alias by key id (ListKeys, and
        DescribeKey to leave out AWS managed keys and keys that are disabled or being deleted)."""
        try:
            out = await self._call(self._kms, request, session, "ListAliases", {"Limit": 100})
        except ServiceError:
            return []
        aliases = [a for a in out.get("Aliases", []) if a.get("TargetKeyId")]
        named = {a["TargetKeyId"] for a in aliases}
        keys = sorted(
            (a["AliasName"], a["AliasName"][len("alias/") :])
            for a in aliases
            if not a["AliasName"].startswith("alias/aws/")
        )
        try:
            listed = await self._call(self._kms, request, session, "ListKeys", {"Limit": 100})
        except ServiceError:
            return keys
        unnamed: list[tuple[str, str]] = []
        for entry in listed.get("Keys", []):
            key_id = entry["KeyId"]
            if key_id in named or len(unnamed) >= UNNAMED_KEYS:
                continue
            try:
                meta = (
                    await self._call(self._kms, request, session, "DescribeKey", {"KeyId": key_id})
                )["KeyMetadata"]
            except ServiceError:
                continue
            if meta.get("KeyManager") == "CUSTOMER" and meta.get("KeyState") == "Enabled":
                label = key_id + (f" ({meta['Description']})" if meta.get("Description") else "")
                unnamed.append((key_id, label))
        return keys + sorted(unnamed)

    async def new_page(
        self,
        request: Request,
        session: ConsoleSession,
        *,
        error: str = "",
        step: int = 1,
        status: int = 200,
    ) -> Response:
        return self._render(
            "new.html",
            session,
            status=status,
            error=error,
            step=step,
            keys=await self._customer_keys(request, session),
            chosen_key=request.arg("key") or request.field("kms_key_id"),
            token=str(uuid.uuid4()),
            engines=DATABASE_ENGINES,
            regions=REGIONS,
            name_rules=NAME_RULES,
            languages=SAMPLE_LANGUAGES,
            samples=sample_code(NAME_MARKER, session.region, self._endpoint(request)),
            marker=NAME_MARKER,
            name=request.field("name"),
            description=request.field("description"),
        )

    async def _refuse_store(
        self, request: Request, session: ConsoleSession, message: str, step: int
    ) -> Response:
        if self._wants_json(request):
            return self._json(400, {"error": message, "step": step})
        # Without the page's script the form comes back without the value (never echoed).
        return await self.new_page(request, session, error=message, step=step, status=400)

    async def store(self, request: Request, session: ConsoleSession) -> Response:
        try:
            plan = store_request(
                request.field, request.fields, request.field("token") or str(uuid.uuid4())
            )
        except FormError as exc:
            return await self._refuse_store(request, session, exc.message, exc.step)
        sm = self._sm
        if plan.policy is not None:
            try:
                check = await self._call(
                    sm, request, session, "ValidateResourcePolicy", {"ResourcePolicy": plan.policy}
                )
            except ServiceError as exc:
                return await self._refuse_store(request, session, f"{exc.code}: {exc.message}", 2)
            if not check.get("PolicyValidationPassed"):
                findings = "; ".join(
                    str(e.get("ErrorMessage", "")) for e in check.get("ValidationErrors", [])
                )
                return await self._refuse_store(
                    request, session, f"The resource policy is not valid: {findings}", 2
                )
        try:
            created = await self._call(sm, request, session, "CreateSecret", plan.create)
        except ServiceError as exc:
            return await self._refuse_store(request, session, f"{exc.code}: {exc.message}", 4)
        arn = created["ARN"]
        problems: list[str] = []
        if plan.policy is not None:
            try:
                await self._call(
                    sm,
                    request,
                    session,
                    "PutResourcePolicy",
                    {"SecretId": arn, "ResourcePolicy": plan.policy},
                )
            except ServiceError as exc:
                problems.append(f"The resource policy was not attached: {exc.code}: {exc.message}")
        if plan.rotation is not None:
            try:
                await self._call(
                    sm, request, session, "RotateSecret", {"SecretId": arn, **plan.rotation}
                )
            except ServiceError as exc:
                problems.append(f"Rotation was not turned on: {exc.code}: {exc.message}")
        location = f"{PREFIX}secrets?stored={created['Name']}"
        if self._wants_json(request):
            return self._json(
                200, {"location": location, "stored": created["Name"], "problems": problems}
            )
        if problems:
            request.query["stored"] = created["Name"]
            return await self.list_page(request, session, problems=tuple(problems))
        return redirect(location)

    async def add_key(self, request: Request, session: ConsoleSession) -> Response:
        """Add new key: a symmetric KMS key and its alias, made as this principal."""
        alias = request.field("new_key_alias").strip()
        if alias and not alias.startswith("alias/"):
            alias = f"alias/{alias}"
        try:
            if not alias or alias.startswith("alias/aws/"):
                raise ServiceError(
                    "ValidationException",
                    "Enter an alias name that does not begin with aws/.",
                )
            params: dict[str, Any] = {}
            if request.field("new_key_description").strip():
                params["Description"] = request.field("new_key_description").strip()
            key = await self._call(self._kms, request, session, "CreateKey", params)
            key_id = key["KeyMetadata"]["KeyId"]
            try:
                await self._call(
                    self._kms,
                    request,
                    session,
                    "CreateAlias",
                    {"AliasName": alias, "TargetKeyId": key_id},
                )
            except ServiceError:
                # No key left behind without the alias that names it in the list; the alias's
                # refusal is the one the user must see, whatever the clean-up answers.
                with contextlib.suppress(ServiceError):
                    await self._call(
                        self._kms,
                        request,
                        session,
                        "ScheduleKeyDeletion",
                        {"KeyId": key_id, "PendingWindowInDays": 7},
                    )
                raise
        except ServiceError as exc:
            if self._wants_json(request):
                return self._json(400, {"error": f"{exc.code}: {exc.message}"})
            return await self.new_page(
                request, session, error=f"{exc.code}: {exc.message}", status=400
            )
        if self._wants_json(request):
            return self._json(200, {"alias": alias, "keyId": key_id})
        return redirect(f"{PREFIX}secrets/new?key={alias}")

    async def validate_policy(self, request: Request, session: ConsoleSession) -> Response:
        params: dict[str, Any] = {"ResourcePolicy": request.field("resource_policy")}
        if request.field("secret_id"):
            params["SecretId"] = request.field("secret_id")
        try:
            out = await self._call(self._sm, request, session, "ValidateResourcePolicy", params)
        except ServiceError as exc:
            return self._json(400, {"passed": False, "error": f"{exc.code}: {exc.message}"})
        return self._json(
            200,
            {
                "passed": bool(out.get("PolicyValidationPassed")),
                "findings": [
                    f"{e.get('CheckName', '')}: {e.get('ErrorMessage', '')}"
                    for e in out.get("ValidationErrors", [])
                ],
            },
        )

    # -- secret details ----------------------------------------------------------------------
    async def detail_page(
        self,
        request: Request,
        session: ConsoleSession,
        *,
        value: dict[str, Any] | None = None,
        comparison: dict[str, Any] | None = None,
        error: str = "",
        status: int = 200,
    ) -> Response:
        secret_id = request.arg("id") or request.field("id")
        try:
            secret = await self._call(
                self._sm, request, session, "DescribeSecret", {"SecretId": secret_id}
            )
        except ServiceError as exc:
            return self._render(
                "error.html", session, status=exc.status, message=f"{exc.code}: {exc.message}"
            )
        versions: list[dict[str, Any]] = []
        policy: str | None = None
        problems: list[str] = []
        try:
            listed = await self._call(
                self._sm,
                request,
                session,
                "ListSecretVersionIds",
                {"SecretId": secret["ARN"], "IncludeDeprecated": True},
            )
            versions = listed.get("Versions", [])
        except ServiceError as exc:
            problems.append(f"Versions: {exc.code}: {exc.message}")
        try:
            got = await self._call(
                self._sm, request, session, "GetResourcePolicy", {"SecretId": secret["ARN"]}
            )
            policy = got.get("ResourcePolicy")
        except ServiceError as exc:
            problems.append(f"Resource permissions: {exc.code}: {exc.message}")
        activity = await self._activity(request, session, secret["ARN"])
        return self._render(
            "detail.html",
            session,
            status=status,
            secret=secret,
            versions=sorted(versions, key=lambda v: -float(v.get("CreatedDate", 0))),
            policy=_pretty(policy),
            problems=problems,
            value=value,
            comparison=comparison,
            activity=activity,
            error=error,
            done=request.arg("done"),
            languages=SAMPLE_LANGUAGES,
            samples=sample_code(secret["Name"], session.region, self._endpoint(request)),
        )

    async def _activity(
        self, request: Request, session: ConsoleSession, arn: str
    ) -> dict[str, Any] | None:
        """The secret's activity: LookupEvents by ResourceName as the signed-in user, a page of
        ACTIVITY_PAGE newest first. Only who, what, when and where are shown: never
        requestParameters or responseElements."""
        if self._trail is None:
            return None
        params: dict[str, Any] = {
            "LookupAttributes": [{"AttributeKey": "ResourceName", "AttributeValue": arn}],
            "MaxResults": ACTIVITY_PAGE,
        }
        token = request.arg("activity")
        if token:
            params["NextToken"] = token
        try:
            found = await self._call(self._trail, request, session, "LookupEvents", params)
        except ServiceError as exc:
            return {"error": f"{exc.code}: {exc.message}", "events": [], "next": None}
        return {
            "error": "",
            "events": [activity_row(e) for e in found.get("Events", [])],
            "next": found.get("NextToken"),
            "paged": bool(token),
        }

    async def retrieve(self, request: Request, session: ConsoleSession) -> Response:
        """Retrieve secret value: the only page that puts a value in HTML (no-store, POST)."""
        try:
            got = await self._call(
                self._sm, request, session, "GetSecretValue", {"SecretId": request.field("id")}
            )
        except ServiceError as exc:
            return await self.detail_page(
                request, session, error=f"{exc.code}: {exc.message}", status=exc.status
            )
        string = got.get("SecretString")
        value = {
            "string": string,
            "binary": string is None,
            "pairs": key_value_view(string) if string is not None else None,
            "version_id": got.get("VersionId"),
            "stages": got.get("VersionStages", []),
        }
        return await self.detail_page(request, session, value=value)

    async def compare_versions(self, request: Request, session: ConsoleSession) -> Response:
        """Compare two versions as this principal (GetSecretValue on each): the page names the
        keys added, removed or changed; values come only with `reveal`, an explicit Retrieve."""
        old_id, new_id = request.field("from"), request.field("to")
        values: list[str | bytes | None] = []
        for version_id in (old_id, new_id):
            try:
                got = await self._call(
                    self._sm,
                    request,
                    session,
                    "GetSecretValue",
                    {"SecretId": request.field("id"), "VersionId": version_id},
                )
            except ServiceError as exc:
                return await self.detail_page(
                    request, session, error=f"{exc.code}: {exc.message}", status=exc.status
                )
            string = got.get("SecretString")
            # The handler answers as the wire does: SecretBinary base64-encoded.
            binary = base64.b64decode(got.get("SecretBinary") or "")
            values.append(string if string is not None else binary)
        diff: VersionDiff = compare(values[0], values[1])
        comparison: dict[str, Any] = {"old": old_id, "new": new_id, "diff": diff}
        if request.field("reveal") == "1":
            comparison["revealed"] = reveal(diff, values[0], values[1])
        return await self.detail_page(request, session, comparison=comparison)

    def _back(self, request: Request, done: str) -> Response:
        return redirect(f"{PREFIX}secrets/detail?id={quote(request.field('id'))}&done={done}")

    async def put_value(self, request: Request, session: ConsoleSession) -> Response:
        try:
            value = secret_value(request.field, request.fields)
            await self._call(
                self._sm,
                request,
                session,
                "PutSecretValue",
                {
                    "SecretId": request.field("id"),
                    "SecretString": value,
                    "ClientRequestToken": request.field("token") or str(uuid.uuid4()),
                },
            )
        except FormError as exc:
            return await self.detail_page(request, session, error=exc.message, status=400)
        except ServiceError as exc:
            return await self.detail_page(
                request, session, error=f"{exc.code}: {exc.message}", status=exc.status
            )
        return self._back(request, "value")

    async def delete(self, request: Request, session: ConsoleSession) -> Response:
        try:
            days = int(request.field("days", "30"))
        except ValueError:
            days = 0
        try:
            await self._call(
                self._sm,
                request,
                session,
                "DeleteSecret",
                {"SecretId": request.field("id"), "RecoveryWindowInDays": days},
            )
        except ServiceError as exc:
            return await self.detail_page(
                request, session, error=f"{exc.code}: {exc.message}", status=exc.status
            )
        return self._back(request, "deleted")

    async def restore(self, request: Request, session: ConsoleSession) -> Response:
        try:
            await self._call(
                self._sm, request, session, "RestoreSecret", {"SecretId": request.field("id")}
            )
        except ServiceError as exc:
            return await self.detail_page(
                request, session, error=f"{exc.code}: {exc.message}", status=exc.status
            )
        return self._back(request, "restored")

    async def _detail_calls(
        self, request: Request, session: ConsoleSession, calls: list[tuple[str, dict[str, Any]]]
    ) -> str | None:
        """Runs the calls in order; the first refusal, in AWS's words, stops them."""
        for operation, params in calls:
            try:
                await self._call(self._sm, request, session, operation, params)
            except ServiceError as exc:
                return f"{exc.code}: {exc.message}"
        return None

    async def _after(
        self, request: Request, session: ConsoleSession, error: str | None, done: str
    ) -> Response:
        if error is not None:
            return await self.detail_page(request, session, error=error, status=400)
        return self._back(request, done)

    async def edit_tags(self, request: Request, session: ConsoleSession) -> Response:
        secret_id = request.field("id")
        call: tuple[str, dict[str, Any]]
        if request.field("action") == "remove":
            call = ("UntagResource", {"SecretId": secret_id, "TagKeys": [request.field("key")]})
        else:
            tag = {"Key": request.field("tag_key").strip(), "Value": request.field("tag_value")}
            call = ("TagResource", {"SecretId": secret_id, "Tags": [tag]})
        return await self._after(
            request, session, await self._detail_calls(request, session, [call]), "tags"
        )

    async def edit_policy(self, request: Request, session: ConsoleSession) -> Response:
        secret_id = request.field("id")
        if request.field("action") == "delete":
            error = await self._detail_calls(
                request, session, [("DeleteResourcePolicy", {"SecretId": secret_id})]
            )
            return await self._after(request, session, error, "policy")
        policy = request.field("resource_policy").strip()
        try:
            check = await self._call(
                self._sm,
                request,
                session,
                "ValidateResourcePolicy",
                {"SecretId": secret_id, "ResourcePolicy": policy},
            )
        except ServiceError as exc:
            return await self._after(request, session, f"{exc.code}: {exc.message}", "policy")
        if not check.get("PolicyValidationPassed"):
            findings = "; ".join(
                str(e.get("ErrorMessage", "")) for e in check.get("ValidationErrors", [])
            )
            return await self._after(
                request, session, f"The resource policy is not valid: {findings}", "policy"
            )
        error = await self._detail_calls(
            request,
            session,
            [("PutResourcePolicy", {"SecretId": secret_id, "ResourcePolicy": policy})],
        )
        return await self._after(request, session, error, "policy")

    async def edit_rotation(self, request: Request, session: ConsoleSession) -> Response:
        """Edit rotation and Rotate secret immediately: RotateSecret / CancelRotateSecret."""
        secret_id = request.field("id")
        call: tuple[str, dict[str, Any]]
        if request.field("action") == "now":
            call = ("RotateSecret", {"SecretId": secret_id})
        else:
            try:
                rotation = rotation_request(request.field)
            except FormError as exc:
                return await self._after(request, session, exc.message, "rotation")
            if rotation is None:
                call = ("CancelRotateSecret", {"SecretId": secret_id})
            else:
                call = ("RotateSecret", {"SecretId": secret_id, **rotation})
        return await self._after(
            request, session, await self._detail_calls(request, session, [call]), "rotation"
        )


def _pretty(policy: str | None) -> str | None:
    if policy is None:
        return None
    try:
        return json.dumps(json.loads(policy), indent=2)
    except ValueError:
        return policy
