"""RotateSecret, CancelRotateSecret and scheduled rotation, run as AWS runs them.

RotateSecret commits the configuration, the AWSPENDING version (no value yet) and a claim on
the rotation in one transaction; only then are the function's four steps (createSecret,
setSecret, testSecret, finishSecret) invoked, each awaited outside any transaction (ADR 0004).
The claim (columns of the `rotations` row: holder, expiry, fence) is renewed while a step runs;
a worker that dies stops renewing, and once the claim expires the scheduler of any worker or
node resumes the rotation from createSecret with the same token, as AWS retries "the entire
rotation process". A failed step leaves AWS's state: AWSPENDING stays on the new version, the
next RotateSecret answers "A previous rotation isn't complete" and reattempts it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from secretsd.background import log_failed_pass
from secretsd.clock import Clock
from secretsd.errors import ServiceError, invalid_parameter, invalid_request
from secretsd.offload import Offloader, off_loop, on_loop
from secretsd.policy import ContextValue
from secretsd.scheduler.leases import holder_name
from secretsd.service import staging
from secretsd.service.authorization import Authorizer
from secretsd.service.context import CallContext
from secretsd.service.invocation import (
    SECRETS_MANAGER_PRINCIPAL,
    FunctionInvoker,
    FunctionNotInvokable,
    Invocation,
)
from secretsd.service.schedule import DAY_MS, Schedule, next_window, parse_rules, rules_out
from secretsd.service.secrets import MSG_TOKEN_REQUIRED, SecretsService
from secretsd.service.views import WriteResult
from secretsd.store.database import Database
from secretsd.store.events import EventRepository
from secretsd.store.records import SecretRecord, VersionRecord
from secretsd.store.repository import Repository
from secretsd.store.rotations import RotationRecord, RotationRepository

log = logging.getLogger("secretsd.rotation")

SM_ROTATE = "secretsmanager:RotateSecret"
SM_CANCEL = "secretsmanager:CancelRotateSecret"
LAMBDA_INVOKE = "lambda:InvokeFunction"
EVENT_SOURCE = "secretsmanager.amazonaws.com"
STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")
ROTATE, TEST = "rotate", "test"

# Recorded (aws-behaviour.md §8).
MSG_NO_LAMBDA = "No Lambda rotation function ARN is associated with this secret."
MSG_PREVIOUS = "A previous rotation isn't complete. That rotation will be reattempted."
MSG_CANNOT_INVOKE = (
    "Secrets Manager cannot invoke the specified Lambda function. Ensure that the function"
    " policy grants access to the principal secretsmanager.amazonaws.com."
)

CLAIM_TTL_MS = 60_000
# After a failed attempt the whole rotation is retried (AWS: "retries the entire rotation
# process multiple times"); after these, it waits for the next window or RotateSecret.
RETRY_DELAYS_MS = (5 * 60_000, 30 * 60_000)
MAX_RUNNING = 8
# The errorType of a rotation that failed in secretsd itself rather than in its function.
INTERNAL_FAILURE = "InternalFailure"


def function_name(function_arn: str) -> str | None:
    """The function name of a Lambda function ARN (qualifier dropped), None otherwise."""
    parts = function_arn.split(":")
    if len(parts) in (7, 8) and parts[0] == "arn" and parts[2] == "lambda":
        if parts[5] == "function":
            return parts[6]
    return None


class RotatorRouter:
    """Built-in rotators by function name; every other function goes to Lambda."""

    def __init__(self, builtins: Mapping[str, FunctionInvoker], functions: FunctionInvoker):
        self._builtins = dict(builtins)
        self._functions = functions

    def _target(self, function_arn: str) -> FunctionInvoker:
        name = function_name(function_arn)
        return self._builtins.get(name or "", self._functions)

    def check_service_may_invoke(
        self, function_arn: str, *, principal: str, source_account: str, source_arn: str
    ) -> None:
        self._target(function_arn).check_service_may_invoke(
            function_arn, principal=principal, source_account=source_account, source_arn=source_arn
        )

    async def invoke_as_service(
        self,
        function_arn: str,
        payload: bytes,
        *,
        principal: str,
        source_account: str,
        source_arn: str,
    ) -> Invocation:
        return await self._target(function_arn).invoke_as_service(
            function_arn,
            payload,
            principal=principal,
            source_account=source_account,
            source_arn=source_arn,
        )


@dataclass(frozen=True, slots=True)
class RotationInfo:
    """The rotation members of DescribeSecret and ListSecrets."""

    enabled: bool
    lambda_arn: str
    rules: dict[str, Any]
    last_rotated_ms: int | None
    next_rotation_ms: int | None


@dataclass(frozen=True, slots=True)
class _Run:
    secret_arn: str
    account_id: str
    token: str
    mode: str
    fence: int


class RotationService:
    def __init__(
        self,
        db: Database,
        clock: Clock,
        secrets: SecretsService,
        authorizer: Authorizer,
        invoker: FunctionInvoker,
        holder: str | None = None,
    ) -> None:
        self._db = db
        self._clock = clock
        self._secrets = secrets
        self._auth = authorizer
        self._invoker = invoker
        self.holder = holder or holder_name()
        self._tasks: set[asyncio.Task[None]] = set()
        self.wake = asyncio.Event()

    # -- the API ------------------------------------------------------------------------------
    def rotate_secret(
        self,
        ctx: CallContext,
        *,
        secret_id: str,
        token: str | None,
        lambda_arn: str | None,
        rules: dict[str, Any] | None,
        rotate_immediately: bool | None,
    ) -> WriteResult:
        """Configures rotation and starts it in the background: RotateSecret answers before the
        steps run, as AWS's does ("Secrets Manager rotates the secret asynchronously")."""
        if token is None:
            raise invalid_parameter(MSG_TOKEN_REQUIRED)
        immediately = True if rotate_immediately is None else rotate_immediately
        if rules is not None:
            parse_rules(rules)
        keys: dict[str, ContextValue] = {
            "secretsmanager:RotateImmediately": immediately,
            "secretsmanager:ModifyRotationRules": rules is not None,
        }
        if lambda_arn is not None:
            keys["secretsmanager:RotationLambdaARN"] = lambda_arn
        with self._db.transaction() as tx:
            repo = Repository(tx)
            secret = self._secrets.locate(repo, ctx, secret_id, SM_ROTATE, keys=keys)
            rec = RotationRepository(tx).get(secret.arn)
            stages = repo.stages(secret.arn)
            existing = repo.version(secret.arn, token)
        function = lambda_arn or (rec.lambda_arn if rec is not None else None)
        if not function:
            raise invalid_request(MSG_NO_LAMBDA)
        pending = stages.get(staging.PENDING)
        if pending is not None and pending != stages.get(staging.CURRENT):
            self._reattempt(secret, pending)
            raise invalid_request(MSG_PREVIOUS)
        if existing is not None:
            # The same request again (an SDK retry): the rotation it started is not repeated.
            return WriteResult(secret.arn, secret.name, token)
        self._auth.require(
            ctx, LAMBDA_INVOKE, function, resource_account=_arn_account(function, ctx.account_id)
        )
        try:
            self._invoker.check_service_may_invoke(
                function,
                principal=SECRETS_MANAGER_PRINCIPAL,
                source_account=secret.account_id,
                source_arn=secret.arn,
            )
        except FunctionNotInvokable:
            raise ServiceError("AccessDeniedException", MSG_CANNOT_INVOKE) from None
        run = self._configure(ctx, secret_id, keys, token, function, rules, immediately)
        self._spawn(run)
        return WriteResult(secret.arn, secret.name, token)

    def _configure(
        self,
        ctx: CallContext,
        secret_id: str,
        keys: Mapping[str, ContextValue],
        token: str,
        function: str,
        rules: dict[str, Any] | None,
        immediately: bool,
    ) -> _Run:
        now = self._clock.now_ms()
        with self._db.transaction(write=True) as tx:
            repo = Repository(tx)
            rotations = RotationRepository(tx)
            secret = self._secrets.locate(
                repo, ctx, secret_id, SM_ROTATE, keys=keys, for_update=True
            )
            stages = repo.stages(secret.arn)
            pending = stages.get(staging.PENDING)
            if pending is not None and pending != stages.get(staging.CURRENT):
                raise invalid_request(MSG_PREVIOUS)  # another call got there first
            old = rotations.get(secret.arn, for_update=True)
            kept_rules = rules if rules is not None else (old.rules if old is not None else {})
            schedule = _schedule(kept_rules)
            start, end = next_window(schedule, now) if schedule is not None else (None, None)
            fence = (old.claim_fence if old is not None else 0) + 1
            mode = ROTATE if immediately else TEST
            rotations.put(
                RotationRecord(
                    secret_arn=secret.arn,
                    account_id=secret.account_id,
                    region=secret.region,
                    lambda_arn=function,
                    rules=kept_rules,
                    enabled=True,
                    last_rotated_ms=old.last_rotated_ms if old is not None else None,
                    window_start_ms=start,
                    window_end_ms=end,
                    pending_token=token,
                    pending_mode=mode,
                    attempts=1,
                    retry_at_ms=now + CLAIM_TTL_MS,
                    claim_holder=self.holder,
                    claim_expires_ms=now + CLAIM_TTL_MS,
                    claim_fence=fence,
                )
            )
            self._add_placeholder(repo, secret, token, stages, now)
            self._event(tx, secret, "RotationStarted" if immediately else "TestRotationStarted")
            return _Run(secret.arn, secret.account_id, token, mode, fence)

    def _reattempt(self, secret: SecretRecord, pending: str) -> None:
        """The incomplete rotation (AWSPENDING on `pending`) is run again now, from its start."""
        now = self._clock.now_ms()
        with self._db.transaction(write=True) as tx:
            rotations = RotationRepository(tx)
            rec = rotations.get(secret.arn, for_update=True)
            if rec is None or rec.claim_expires_ms > now:
                return  # never configured here, or running right now
            rotations.put(
                rec.with_changes(
                    pending_token=pending, pending_mode=ROTATE, attempts=0, retry_at_ms=now
                )
            )
        on_loop(self.wake.set)

    def cancel_rotate_secret(self, ctx: CallContext, *, secret_id: str) -> WriteResult:
        with self._db.transaction(write=True) as tx:
            repo = Repository(tx)
            secret = self._secrets.locate(repo, ctx, secret_id, SM_CANCEL, for_update=True)
            rotations = RotationRepository(tx)
            rec = rotations.get(secret.arn, for_update=True)
            stages = repo.stages(secret.arn)
            pending = stages.get(staging.PENDING)
            version = (
                pending if pending is not None and pending != stages.get(staging.CURRENT) else None
            )
            if rec is not None:
                if rec.pending_token is not None:
                    version = rec.pending_token
                # The fence moves: a worker still running the rotation cannot finish it.
                rotations.put(
                    rec.with_changes(
                        enabled=False,
                        pending_token=None,
                        pending_mode=None,
                        retry_at_ms=None,
                        claim_expires_ms=0,
                        claim_fence=rec.claim_fence + 1,
                    )
                )
            return WriteResult(secret.arn, secret.name, version)

    def info_for(self, secret_arns: Sequence[str]) -> dict[str, RotationInfo]:
        with self._db.transaction() as tx:
            found = RotationRepository(tx).for_many(secret_arns)
        out = {}
        for arn, rec in found.items():
            out[arn] = RotationInfo(
                enabled=rec.enabled,
                lambda_arn=rec.lambda_arn,
                rules=rules_out(rec.rules) if rec.rules else {},
                last_rotated_ms=rec.last_rotated_ms if rec.enabled else None,
                # "The next rotation is scheduled to occur on or before this date": the end of
                # the next window (its last second).
                next_rotation_ms=(
                    rec.window_end_ms - 1000
                    if rec.enabled and rec.window_end_ms is not None
                    else None
                ),
            )
        return out

    # -- scheduling -----------------------------------------------------------------------------
    def start_due(self, limit: int = 20) -> int:
        """Start (or resume) the rotations that are due; returns how many this worker took."""
        if len(self._tasks) >= MAX_RUNNING:
            return 0
        now = self._clock.now_ms()
        with self._db.transaction() as tx:
            due = RotationRepository(tx).due(now, limit)
        started = 0
        for rec in due:
            if len(self._tasks) >= MAX_RUNNING:
                break
            run = self._claim_due(rec)
            if run is not None:
                self._spawn(run)
                started += 1
        return started

    def _claim_due(self, seen: RotationRecord) -> _Run | None:
        now = self._clock.now_ms()
        with self._db.transaction(write=True) as tx:
            repo = Repository(tx)
            rotations = RotationRepository(tx)
            rec = rotations.get(seen.secret_arn, for_update=True)
            if rec is None or rec.claim_fence != seen.claim_fence or rec.claim_expires_ms > now:
                return None
            secret = repo.secret_by_arn(rec.secret_arn, for_update=True)
            if secret is None:
                rotations.delete(rec.secret_arn)
                return None
            schedule = _schedule(rec.rules)
            changes: dict[str, Any] = {}
            window_due = (
                rec.enabled and rec.window_start_ms is not None and rec.window_start_ms <= now
            )
            if window_due and rec.pending_token is None and schedule is not None:
                # AutomaticallyAfterDays: "Manually updating the secret value by calling
                # PutSecretValue or UpdateSecret is considered a valid rotation."
                moved = self._manual_update_ms(repo, secret.arn, rec, schedule)
                if moved is not None:
                    start, end = next_window(schedule, moved)
                    if start > now:
                        rotations.replace_if_fence(
                            rec.with_changes(window_start_ms=start, window_end_ms=end),
                            rec.claim_fence,
                        )
                        return None
            if window_due and schedule is not None:
                # This window is used up, whatever happens to the rotation started in it.
                changes["window_start_ms"], changes["window_end_ms"] = next_window(schedule, now)
            stages = repo.stages(secret.arn)
            if secret.deletion_ms is not None:
                rotations.replace_if_fence(rec.with_changes(**changes), rec.claim_fence)
                return None
            token, mode = rec.pending_token, rec.pending_mode or ROTATE
            if token is None:
                pending = stages.get(staging.PENDING)
                if pending is not None and pending != stages.get(staging.CURRENT):
                    token = pending  # an incomplete rotation: reattempted, as AWS does
                else:
                    token = str(uuid.uuid4())
                    self._add_placeholder(repo, secret, token, stages, now)
                mode = ROTATE
            elif mode == ROTATE and stages.get(staging.PENDING) != token:
                # Someone moved AWSPENDING away (a manual cleanup): nothing left to resume.
                changes.update(pending_token=None, pending_mode=None, retry_at_ms=None)
                rotations.replace_if_fence(rec.with_changes(**changes), rec.claim_fence)
                return None
            fence = rec.claim_fence + 1
            claimed = rec.with_changes(
                **changes,
                pending_token=token,
                pending_mode=mode,
                attempts=rec.attempts + 1,
                retry_at_ms=now + CLAIM_TTL_MS,
                claim_holder=self.holder,
                claim_expires_ms=now + CLAIM_TTL_MS,
                claim_fence=fence,
            )
            if not rotations.replace_if_fence(claimed, rec.claim_fence):
                return None
            self._event(tx, secret, "RotationStarted" if mode == ROTATE else "TestRotationStarted")
            return _Run(secret.arn, secret.account_id, token, mode, fence)

    @staticmethod
    def _manual_update_ms(
        repo: Repository, secret_arn: str, rec: RotationRecord, schedule: Schedule
    ) -> int | None:
        """When AWSCURRENT got a value since the window was scheduled (days schedules only)."""
        if schedule.kind != "days" or rec.window_start_ms is None:
            return None
        current = repo.stages(secret_arn).get(staging.CURRENT)
        version = repo.version(secret_arn, current) if current is not None else None
        scheduled_from = rec.window_start_ms - schedule.days * DAY_MS
        if version is None or version.created_ms < scheduled_from + DAY_MS:
            return None
        if rec.last_rotated_ms is not None and version.created_ms <= rec.last_rotated_ms:
            return None
        return version.created_ms

    # -- running ------------------------------------------------------------------------------
    def _spawn(self, run: _Run) -> None:
        # RotateSecret's handler may be running in a thread (ADR 0007): the task is started on
        # the loop either way.
        on_loop(self._start_task, run)

    def _start_task(self, run: _Run) -> None:
        task = asyncio.get_running_loop().create_task(self._run(run))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, run: _Run) -> None:
        steps = STEPS if run.mode == ROTATE else ("testSecret",)
        rotation_token = str(uuid.uuid4())
        step = steps[0]
        try:
            for step in steps:
                if not self._renew(run):
                    log.info("rotation of %s was taken over or cancelled", run.secret_arn)
                    return
                failure = await self._step(run, step, rotation_token)
                if failure is not None:
                    self._finish(run, failed_step=step, error=failure)
                    return
            self._finish(run)
        except Exception as exc:
            log_failed_pass(log, f"rotation of {run.secret_arn}", exc)
            # Ended as a failed attempt, event and all: left claimed, it would sit silent until
            # the claim ran out and then start again, a second RotationStarted with no end
            # between. If the database is what failed, this fails too and the claim's expiry
            # resumes the rotation, as after a crash.
            try:
                self._finish(run, failed_step=step, error=INTERNAL_FAILURE)
            except Exception as again:
                log_failed_pass(log, f"recording the failed rotation of {run.secret_arn}", again)

    async def _step(self, run: _Run, step: str, rotation_token: str) -> str | None:
        """Invoke one step; the error type when it failed."""
        with self._db.transaction() as tx:
            rec = RotationRepository(tx).get(run.secret_arn)
        if rec is None:
            return "ResourceNotFoundException"
        payload = json.dumps(
            {
                "Step": step,
                "SecretId": run.secret_arn,
                "ClientRequestToken": run.token,
                "RotationToken": rotation_token,
            }
        ).encode()
        heartbeat = asyncio.get_running_loop().create_task(self._heartbeat(run))
        try:
            result = await self._invoker.invoke_as_service(
                rec.lambda_arn,
                payload,
                principal=SECRETS_MANAGER_PRINCIPAL,
                source_account=run.account_id,
                source_arn=run.secret_arn,
            )
        except FunctionNotInvokable:
            return "AccessDeniedException"
        finally:
            heartbeat.cancel()
        if result.function_error is None:
            return None
        try:
            document = json.loads(result.payload)
            kind = document.get("errorType") if isinstance(document, dict) else None
        except ValueError:
            kind = None
        return str(kind or result.function_error)

    async def _heartbeat(self, run: _Run) -> None:
        while True:
            await asyncio.sleep(CLAIM_TTL_MS / 3000)
            try:
                if not self._renew(run):
                    return
            except Exception as exc:
                # Tried again at the next beat: a heartbeat that died here would let the claim
                # run out under a step still running, and another worker start the rotation over.
                log_failed_pass(log, f"renewing the claim on the rotation of {run.secret_arn}", exc)

    def _renew(self, run: _Run) -> bool:
        now = self._clock.now_ms()
        with self._db.transaction(write=True) as tx:
            rotations = RotationRepository(tx)
            rec = rotations.get(run.secret_arn, for_update=True)
            if not _holds(rec, run, self.holder):
                return False
            assert rec is not None
            return rotations.replace_if_fence(
                rec.with_changes(
                    claim_expires_ms=now + CLAIM_TTL_MS, retry_at_ms=now + CLAIM_TTL_MS
                ),
                run.fence,
            )

    def _finish(self, run: _Run, failed_step: str | None = None, error: str | None = None) -> None:
        now = self._clock.now_ms()
        with self._db.transaction(write=True) as tx:
            repo = Repository(tx)
            rotations = RotationRepository(tx)
            rec = rotations.get(run.secret_arn, for_update=True)
            if not _holds(rec, run, self.holder):
                return
            assert rec is not None
            secret = repo.secret_by_arn(run.secret_arn, for_update=True)
            if secret is None:
                rotations.delete(run.secret_arn)
                return
            stages = repo.stages(secret.arn)
            if (
                failed_step is None
                and run.mode == ROTATE
                and stages.get(staging.CURRENT) != run.token
            ):
                failed_step, error = "finishSecret", "AWSCURRENT was not moved to the new version"
            released = rec.with_changes(claim_expires_ms=0)
            if run.mode == TEST:
                # "This test creates an AWSPENDING version of the secret and then removes it."
                self._remove_pending(repo, secret, run.token, stages, drop_empty=True)
                rotations.put(
                    released.with_changes(
                        pending_token=None, pending_mode=None, retry_at_ms=None, attempts=0
                    )
                )
                name = "TestRotationFailed" if failed_step else "TestRotationSucceeded"
            elif failed_step is not None:
                retry = (
                    now + RETRY_DELAYS_MS[rec.attempts - 1]
                    if rec.attempts <= len(RETRY_DELAYS_MS)
                    else None
                )
                rotations.put(released.with_changes(retry_at_ms=retry))
                name = "RotationFailed"
            else:
                if stages.get(staging.PENDING) == run.token:
                    # AWS's final state after a rotation: no AWSPENDING beside AWSCURRENT.
                    self._remove_pending(repo, secret, run.token, stages, drop_empty=False)
                schedule = _schedule(rec.rules)
                window = (rec.window_start_ms, rec.window_end_ms)
                if schedule is not None and (window[0] is None or window[0] <= now):
                    window = next_window(schedule, now)
                rotations.put(
                    released.with_changes(
                        last_rotated_ms=now,
                        window_start_ms=window[0],
                        window_end_ms=window[1],
                        pending_token=None,
                        pending_mode=None,
                        retry_at_ms=None,
                        attempts=0,
                    )
                )
                name = "RotationSucceeded"
            details = {"step": failed_step, "errorType": error} if failed_step else {}
            self._event(tx, secret, name, details)
        if failed_step is not None:
            log.warning("rotation of %s failed at %s (%s)", run.secret_arn, failed_step, error)
        else:
            log.info("rotated %s (%s)", run.secret_arn, run.mode)

    # -- helpers ------------------------------------------------------------------------------
    def _add_placeholder(
        self,
        repo: Repository,
        secret: SecretRecord,
        token: str,
        stages: Mapping[str, str],
        now: int,
    ) -> None:
        """AWSPENDING on a new version without a value, before createSecret (recorded)."""
        if repo.version(secret.arn, token) is None:
            repo.insert_version(
                VersionRecord(
                    secret_arn=secret.arn,
                    version_id=token,
                    seq=secret.version_seq,
                    created_ms=now,
                    last_accessed_ms=None,
                    value_kind="none",
                    envelope=None,
                    kms_key_arn=None,
                )
            )
        new = dict(stages)
        new[staging.PENDING] = token
        repo.replace_stages(secret.arn, stages, new)
        repo.update_secret(secret.arn, last_changed_ms=max(now, secret.last_changed_ms + 1))

    @staticmethod
    def _remove_pending(
        repo: Repository,
        secret: SecretRecord,
        token: str,
        stages: Mapping[str, str],
        *,
        drop_empty: bool,
    ) -> None:
        if stages.get(staging.PENDING) != token:
            return
        new = {k: v for k, v in stages.items() if k != staging.PENDING}
        repo.replace_stages(secret.arn, stages, new)
        version = repo.version(secret.arn, token)
        if drop_empty and version is not None and version.value_kind == "none":
            if token not in new.values():
                repo.delete_versions(secret.arn, [token])

    def _event(
        self,
        tx: Any,
        secret: SecretRecord,
        name: str,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        EventRepository(tx).record(
            time_ms=self._clock.now_ms(),
            account_id=secret.account_id,
            region=secret.region,
            event_source=EVENT_SOURCE,
            event_name=name,
            resource_arn=secret.arn,
            details=details,
        )


def _holds(rec: RotationRecord | None, run: _Run, holder: str) -> bool:
    return (
        rec is not None
        and rec.claim_fence == run.fence
        and rec.claim_holder == holder
        and rec.pending_token == run.token
    )


def _schedule(rules: Mapping[str, Any]) -> Schedule | None:
    return parse_rules(dict(rules)) if rules else None


def _arn_account(arn: str, default: str) -> str:
    parts = arn.split(":")
    return parts[4] if len(parts) > 4 and parts[4] else default


def rotation_loop(
    service: RotationService, tick_seconds: float = 1.0, offload: Offloader | None = None
) -> Callable[[], Coroutine[Any, Any, None]]:
    """Every worker looks for due rotations; the per-secret claim lets one of them run each."""

    async def run() -> None:
        while True:
            try:
                await off_loop(offload, service.start_due)
            except Exception as exc:
                log_failed_pass(log, "rotation scheduling", exc)
            service.wake.clear()
            try:
                # asyncio.timeout, not wait_for: Python 3.11's wait_for loses a cancellation
                # that arrives as the wait ends, and the task would then never stop.
                async with asyncio.timeout(tick_seconds):
                    await service.wake.wait()
            except TimeoutError:
                pass

    return run
