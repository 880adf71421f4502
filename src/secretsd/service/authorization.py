"""Every call's allow-or-deny: the caller's identity policies, the resource's policy, AWS's logic.

Identity policies are read from the IAM tables once per principal and kept parsed in memory
until the IAM change counter moves (IamRepository.generation): any IAM write, by any worker or
node, drops them. Resource policies arrive with the resource (a secret's row, a key's row) and
are parsed once per distinct text.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from secretsd.auth.identity import Identity
from secretsd.clock import Clock
from secretsd.errors import ServiceError
from secretsd.offload import current_call
from secretsd.policy import (
    ContextValue,
    Decision,
    Policy,
    PolicyKind,
    PolicySyntaxError,
    RequestContext,
    access_denied_message,
    context_free,
    evaluate,
    parse_policy,
)
from secretsd.policy.managed import aws_managed_policy
from secretsd.service.context import CallContext
from secretsd.store.database import Database
from secretsd.store.iam_repository import IamRepository
from secretsd.store.notifications import ChangeListener

_CACHE_MAX = 10_000
# Condition keys, or a function making them: called only when a decision is evaluated, not when
# it comes from the decision cache (the hot path).
ConditionKeys = Mapping[str, ContextValue] | Callable[[], Mapping[str, ContextValue]]
_UNSEEN = object()


class GenerationWatch:
    """The IAM change counter, read only when the database may have changed.

    On SQLite, `Database.change_token()` (data_version plus this connection's own writes) tells
    for free whether anything was committed since the last look. On PostgreSQL, `listener` (a
    `ChangeListener` on the IAM channel, which every IAM write notifies) plus this connection's
    own writes tell the same, within the time a notification takes to arrive; without a
    listener, or while it is disconnected, the counter is read at most once per request, or per
    `poll_seconds` when that is set.
    """

    def __init__(
        self,
        db: Database,
        poll_seconds: float = 0.0,
        listener: ChangeListener | None = None,
    ) -> None:
        self._db = db
        self._poll = poll_seconds
        self._listener = listener
        self._token: object = None
        self._checked = 0.0
        self._generation = -1
        self._task: object = None
        self._writes = -1
        # Handlers ask from several threads (ADR 0007): the decision to re-read and the stored
        # (generation, writes, token) must go together, or a slow reader could store an older
        # generation over a newer one. Re-reads are rare (a change, a new request without a
        # listener), so the lock is almost always free.
        self._lock = threading.Lock()

    def current(self) -> int:
        with self._lock:
            return self._current()

    def _current(self) -> int:
        token = self._db.change_token()
        if token is not None:
            if token == self._token:
                return self._generation
        else:
            task = current_call()
            # Only writes that notified (IAM changes): the lease renewals and audit flushes
            # committed many times a second need no re-read.
            writes = self._db.notified_writes
            if self._generation >= 0 and writes == self._writes:
                if task is not None and task is self._task:
                    return self._generation  # already read during this request
                if self._listener is not None:
                    if not self._listener.take_change():
                        return self._generation
                elif time.monotonic() - self._checked < self._poll:
                    return self._generation
            self._task = task
            self._writes = writes
        with self._db.statement() as tx:
            self._generation = IamRepository(tx).generation()
        self._token = token
        self._checked = time.monotonic()
        return self._generation


class _GenerationCaches:
    """What is cached for one IAM generation. A new generation gets a new object, swapped in
    whole: a thread still working from the previous generation's reads fills the old object,
    which nobody looks at any more, never the new one."""

    __slots__ = ("decisions", "generation", "identity")

    def __init__(self, generation: int) -> None:
        self.generation = generation
        self.identity: dict[tuple[str, str, str], tuple[Policy, ...]] = {}
        self.decisions: dict[tuple[object, ...], Decision | None] = {}


class Authorizer:
    def __init__(self, db: Database, clock: Clock, watch: GenerationWatch) -> None:
        self._db = db
        self._clock = clock
        self._watch = watch
        self._caches = _GenerationCaches(-1)
        self._resource_cache: dict[str, Policy] = {}

    # -- policies ------------------------------------------------------------------------------
    def identity_policies(self, identity: Identity) -> tuple[Policy, ...]:
        return self._identity_policies(identity)[0]

    def _identity_policies(
        self, identity: Identity
    ) -> tuple[tuple[Policy, ...], _GenerationCaches]:
        if identity.is_root:
            return (), self._caches
        generation = self._watch.current()
        caches = self._caches
        if generation != caches.generation:
            caches = _GenerationCaches(generation)
            self._caches = caches
        key = (identity.account_id, identity.owner_kind, identity.owner_name)
        cached = caches.identity.get(key)
        if cached is not None:
            return cached, caches
        with self._db.transaction() as tx:
            documents, aws_managed = IamRepository(tx).identity_policies(*key)
        policies: list[Policy] = []
        for source, text in documents:
            policies.append(_parse_stored(text, source))
        for arn in aws_managed:
            managed = aws_managed_policy(arn)
            if managed is not None:
                policies.append(_parse_stored(managed.document, arn))
        result = tuple(policies)
        if len(caches.identity) >= _CACHE_MAX:
            caches.identity.clear()
        caches.identity[key] = result
        return result, caches

    def resource_policy(self, text: str | None) -> Policy | None:
        if text is None:
            return None
        cached = self._resource_cache.get(text)
        if cached is None:
            # Parsed as "trust": like a resource policy, but Resource may be absent (role trust
            # policies have none, and a statement without it applies to the resource itself).
            # Documents were checked with their own rules when they were stored.
            cached = _parse_stored(text, "resource", kind="trust")
            if len(self._resource_cache) >= _CACHE_MAX:
                self._resource_cache.clear()
            self._resource_cache[text] = cached
        return cached

    # -- decisions -----------------------------------------------------------------------------
    def request(
        self,
        ctx: CallContext,
        action: str,
        resource: str = "*",
        *,
        resource_account: str | None = None,
        condition_keys: ConditionKeys | None = None,
    ) -> RequestContext:
        identity = ctx.identity
        now_ms = self._clock.now_ms()
        keys: dict[str, ContextValue] = {
            "aws:CurrentTime": datetime.fromtimestamp(now_ms / 1000, UTC),
            "aws:EpochTime": now_ms // 1000,
            "aws:SecureTransport": ctx.secure_transport,
            "aws:RequestedRegion": ctx.region,
            "aws:PrincipalIsAWSService": False,
            "aws:ViaAWSService": False,
        }
        if ctx.source_ip:
            keys["aws:SourceIp"] = ctx.source_ip
        if identity.is_session:
            # Present (false) only for temporary credentials, as AWS documents: long-term keys
            # carry no MFA information at all.
            keys["aws:MultiFactorAuthPresent"] = False
            if identity.session_issued_ms is not None:
                keys["aws:TokenIssueTime"] = datetime.fromtimestamp(
                    identity.session_issued_ms / 1000, UTC
                )
        if callable(condition_keys):
            condition_keys = condition_keys()
        if condition_keys:
            keys.update(condition_keys)
        return RequestContext(
            action=action,
            principal_arn=identity.principal_arn,
            principal_account=identity.account_id,
            resource=resource,
            resource_account=resource_account,
            caller_arn=identity.arn,
            principal_type=identity.principal_type,
            principal_tags=identity.tags,
            username=identity.username,
            userid=identity.userid,
            condition_keys=keys,
        )

    def check(
        self,
        ctx: CallContext,
        action: str,
        resource: str = "*",
        *,
        resource_account: str | None = None,
        resource_policy: str | None = None,
        condition_keys: ConditionKeys | None = None,
        require_resource_policy: bool = False,
    ) -> Decision:
        identity = ctx.identity
        policies, caches = self._identity_policies(identity)
        parsed = self.resource_policy(resource_policy)
        # Most policies have no conditions on the action asked for; their decision is then the
        # same for every request of this principal on this resource, and kept until any IAM
        # change (the cache is emptied with the identity policies) or a new resource policy
        # (its text is part of the key).
        key = (
            identity.account_id,
            identity.owner_kind,
            identity.owner_name,
            identity.arn,
            action,
            resource,
            resource_account,
            resource_policy,
            require_resource_policy,
        )
        cached = caches.decisions.get(key, _UNSEEN)
        if isinstance(cached, Decision):
            return cached
        request = self.request(
            ctx,
            action,
            resource,
            resource_account=resource_account,
            condition_keys=condition_keys,
        )
        decision = evaluate(
            request, policies, parsed, require_resource_policy=require_resource_policy
        )
        if cached is _UNSEEN:
            if len(caches.decisions) >= _CACHE_MAX:
                caches.decisions.clear()
            # None: this decision depends on the request's condition keys; evaluate each time.
            caches.decisions[key] = decision if context_free(action, policies, parsed) else None
        return decision

    def require(
        self,
        ctx: CallContext,
        action: str,
        resource: str = "*",
        *,
        resource_account: str | None = None,
        resource_policy: str | None = None,
        condition_keys: ConditionKeys | None = None,
        require_resource_policy: bool = False,
    ) -> Decision:
        """The decision if allowed; AccessDeniedException with AWS's message if not."""
        decision = self.check(
            ctx,
            action,
            resource,
            resource_account=resource_account,
            resource_policy=resource_policy,
            condition_keys=condition_keys,
            require_resource_policy=require_resource_policy,
        )
        if not decision.allowed:
            raise access_denied(ctx, action, resource, decision)
        return decision

    def check_service(
        self,
        principal: str,
        action: str,
        resource: str,
        *,
        account_id: str,
        resource_policy: str | None,
        condition_keys: Mapping[str, ContextValue] | None = None,
    ) -> Decision:
        """An AWS service principal (`secretsmanager.amazonaws.com`, `lambda.amazonaws.com`)
        acting on a resource of `account_id`: only the resource's policy can allow it (a
        service has no identity policies), so a resource without a policy refuses."""
        now_ms = self._clock.now_ms()
        keys: dict[str, ContextValue] = {
            "aws:CurrentTime": datetime.fromtimestamp(now_ms / 1000, UTC),
            "aws:EpochTime": now_ms // 1000,
            "aws:SecureTransport": True,
            "aws:PrincipalIsAWSService": True,
            "aws:PrincipalServiceName": principal,
            **(condition_keys or {}),
        }
        request = RequestContext(
            action=action,
            principal_arn=principal,
            principal_account=account_id,
            resource=resource,
            resource_account=account_id,
            principal_type="Service",
            service_principal=principal,
            condition_keys=keys,
        )
        return evaluate(
            request, (), self.resource_policy(resource_policy), require_resource_policy=True
        )


def access_denied(ctx: CallContext, action: str, resource: str, decision: Decision) -> ServiceError:
    return ServiceError(
        "AccessDeniedException",
        access_denied_message(ctx.identity.arn, action, resource, decision),
    )


def _parse_stored(text: str, source: str, *, kind: PolicyKind = "identity") -> Policy:
    try:
        return parse_policy(text, kind=kind, name=source, unique_sids=False)
    except PolicySyntaxError:
        # Stored documents were checked when they were written; one that no longer parses
        # (say, after a parser change) must grant nothing rather than fail every call.
        return Policy(statements=(), name=source)
