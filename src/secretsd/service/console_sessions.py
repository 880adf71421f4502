"""Console sign-in and sessions: who is behind a browser, as an Identity the Authorizer knows.

A session is a random token in an HttpOnly cookie; the database keeps only its SHA-256, the
principal it stands for, a CSRF token and its times. Each request re-reads the principal, so a
deleted user, password or access key ends its sessions at once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections import deque
from dataclasses import dataclass
from types import MappingProxyType

from secretsd.auth.identity import Identity
from secretsd.auth.principals import PrincipalDirectory
from secretsd.clock import Clock
from secretsd.crypto.password_hash import decoy_hash, verify_password
from secretsd.service.iam import user_arn
from secretsd.store.console_repository import ConsoleRepository, ConsoleSessionRecord
from secretsd.store.database import Database
from secretsd.store.iam_repository import IamRepository

# Re-written at most this often, so that browsing does not write on every page.
_TOUCH_EVERY_MS = 30_000


class SignInRefused(Exception):
    """Wrong account, user, password or key; the message never says which."""


class SignInThrottled(Exception):
    pass


@dataclass(frozen=True, slots=True)
class ConsoleSession:
    token: str  # only in the cookie; never stored
    identity: Identity
    region: str
    csrf_token: str
    created_ms: int


@dataclass(frozen=True, slots=True)
class Throttle:
    """Failed sign-ins allowed per `window_seconds` (counted per worker process): `per_name`
    for one user or access key, `per_address` from one client address (higher: a NAT may hold
    many honest users)."""

    per_name: int = 5
    per_address: int = 30
    window_seconds: float = 300.0


def token_digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


class ConsoleSessions:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        principals: PrincipalDirectory,
        *,
        idle_seconds: int,
        absolute_seconds: int,
        throttle: Throttle | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._principals = principals
        self.idle_ms = idle_seconds * 1000
        self.absolute_ms = absolute_seconds * 1000
        self._throttle = throttle or Throttle()
        self._failures: dict[str, deque[float]] = {}
        self._decoy = decoy_hash()

    # -- throttling --------------------------------------------------------------------------
    def _check_throttle(self, keys: list[str]) -> None:
        now = time.monotonic()
        for key in keys:
            seen = self._failures.get(key)
            if seen is None:
                continue
            while seen and seen[0] <= now - self._throttle.window_seconds:
                seen.popleft()
            limit = self._throttle.per_address if key.startswith("ip:") else self._throttle.per_name
            if len(seen) >= limit:
                raise SignInThrottled

    def _fail(self, keys: list[str]) -> None:
        now = time.monotonic()
        if len(self._failures) > 10_000:
            self._failures.clear()
        for key in keys:
            self._failures.setdefault(key, deque()).append(now)

    # -- sign-in -----------------------------------------------------------------------------
    def sign_in_password(
        self, account: str, user_name: str, password: str, region: str, source_ip: str
    ) -> ConsoleSession:
        keys = [f"user:{account}:{user_name.lower()}", f"ip:{source_ip}"]
        self._check_throttle(keys)
        with self._db.transaction() as tx:
            user = IamRepository(tx).user(account, user_name)
            profile = (
                None if user is None else ConsoleRepository(tx).login_profile(account, user.name)
            )
        # Always one scrypt verification, so that timing does not tell which part was wrong.
        ok = verify_password(password, profile.password_hash if profile else self._decoy)
        if not ok or user is None or profile is None:
            self._fail(keys)
            raise SignInRefused
        return self._start(account, "password", user.name, None, region)

    def sign_in_key(
        self, access_key_id: str, secret_access_key: str, region: str, source_ip: str
    ) -> ConsoleSession:
        keys = [f"key:{access_key_id}", f"ip:{source_ip}"]
        self._check_throttle(keys)
        principal = (
            self._principals.lookup(access_key_id) if access_key_id.startswith("AKIA") else None
        )
        expected = principal.secret_access_key if principal else secrets.token_urlsafe(30)
        ok = hmac.compare_digest(expected.encode(), secret_access_key.encode())
        if not ok or principal is None:
            self._fail(keys)
            raise SignInRefused
        return self._start(principal.account_id, "key", None, access_key_id, region)

    def _start(
        self,
        account: str,
        kind: str,
        user_name: str | None,
        access_key_id: str | None,
        region: str,
    ) -> ConsoleSession:
        token = secrets.token_urlsafe(32)
        now = self._clock.now_ms()
        record = ConsoleSessionRecord(
            token_digest(token),
            account,
            kind,
            user_name,
            access_key_id,
            secrets.token_urlsafe(32),
            now,
            now,
            region,
        )
        with self._db.transaction(write=True) as tx:
            repo = ConsoleRepository(tx)
            repo.delete_sessions_older_than(now - self.absolute_ms)
            repo.insert_session(record)
        session = self._resume_record(record, token)
        assert session is not None
        return session

    # -- requests ----------------------------------------------------------------------------
    def resume(self, token: str) -> ConsoleSession | None:
        """The live session behind a cookie; None when unknown, expired or its principal gone."""
        digest = token_digest(token)
        with self._db.statement() as tx:
            record = ConsoleRepository(tx).session(digest)
        if record is None:
            return None
        now = self._clock.now_ms()
        if now - record.created_ms >= self.absolute_ms or now - record.last_seen_ms >= self.idle_ms:
            self.sign_out(token)
            return None
        session = self._resume_record(record, token)
        if session is None:
            self.sign_out(token)
            return None
        if now - record.last_seen_ms >= _TOUCH_EVERY_MS:
            with self._db.transaction(write=True) as tx:
                ConsoleRepository(tx).touch_session(digest, now)
        return session

    def _resume_record(self, record: ConsoleSessionRecord, token: str) -> ConsoleSession | None:
        identity = self._identity(record)
        if identity is None:
            return None
        return ConsoleSession(token, identity, record.region, record.csrf_token, record.created_ms)

    def _identity(self, record: ConsoleSessionRecord) -> Identity | None:
        if record.kind == "key":
            assert record.access_key_id is not None
            principal = self._principals.lookup(record.access_key_id)
            return None if principal is None else principal.identity
        assert record.user_name is not None
        with self._db.transaction() as tx:
            user = IamRepository(tx).user(record.account_id, record.user_name)
            profile = (
                None
                if user is None
                else ConsoleRepository(tx).login_profile(record.account_id, user.name)
            )
        if user is None or profile is None:
            return None
        arn = user_arn(user.account_id, user.path, user.name)
        return Identity(
            account_id=user.account_id,
            arn=arn,
            principal_arn=arn,
            principal_type="User",
            userid=user.user_id,
            owner_kind="user",
            owner_name=user.name,
            access_key_id="",
            tags=MappingProxyType(dict(user.tags)),
        )

    def sign_out(self, token: str) -> None:
        with self._db.transaction(write=True) as tx:
            ConsoleRepository(tx).delete_session(token_digest(token))
