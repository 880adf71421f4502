"""Warm environments of this worker: reused one invocation at a time, stopped when idle.

Each uvicorn worker has its own pool and runs the invocations it received; nothing is shared
between workers but the database (code, configuration, logs).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import time
from collections.abc import Callable

from secretsd.runtime.environment import (
    Environment,
    FunctionSpec,
    LogSink,
    RoleCredentials,
    RunResult,
)

# Credentials are refreshed by replacing the environment well before they expire.
_CREDENTIAL_MARGIN_MS = 300_000


class EnvironmentPool:
    def __init__(
        self,
        *,
        now_ms: Callable[[], int],
        log_sink: LogSink,
        per_function: int = 4,
        idle_seconds: float = 300.0,
    ) -> None:
        self._now_ms = now_ms
        self._log_sink = log_sink
        self._per_function = per_function
        self._idle_seconds = idle_seconds
        self._idle: dict[str, list[Environment]] = {}
        self._busy: set[Environment] = set()
        self._slots: dict[str, asyncio.Semaphore] = {}
        self._closed = False
        atexit.register(self._kill_all)

    async def invoke(
        self,
        spec: FunctionSpec,
        request_id: str,
        payload: bytes,
        *,
        code: Callable[[], bytes],
        credentials: Callable[[], RoleCredentials],
    ) -> RunResult:
        """Run on a warm environment of this revision, or a new one. `code` and `credentials`
        are only asked for when an environment has to be started."""
        slots = self._slots.setdefault(spec.arn, asyncio.Semaphore(self._per_function))
        async with slots:
            env = self._take(spec)
            if env is None:
                env = Environment(spec, self._now_ms, self._log_sink)
                self._busy.add(env)
                try:
                    await env.start(code(), credentials())
                except BaseException:
                    self._busy.discard(env)
                    await env.stop()
                    raise
            else:
                self._busy.add(env)
            try:
                result = await env.invoke(request_id, payload)
            finally:
                self._busy.discard(env)
                if env.alive and not self._closed:
                    self._idle.setdefault(spec.arn, []).append(env)
                else:
                    await env.stop()
            return result

    def _take(self, spec: FunctionSpec) -> Environment | None:
        idle = self._idle.get(spec.arn, [])
        now_ms = self._now_ms()
        while idle:
            env = idle.pop()
            if env.alive and env.spec == spec and env.expires_ms - _CREDENTIAL_MARGIN_MS > now_ms:
                return env
            asyncio.get_running_loop().create_task(env.stop())
        return None

    def environments(self) -> list[Environment]:
        return [*self._busy, *(env for envs in self._idle.values() for env in envs)]

    async def retire(self, arn: str) -> None:
        """Stop the idle environments of a function (deleted or changed)."""
        for env in self._idle.pop(arn, []):
            await env.stop()

    async def reap_loop(self, interval: float = 30.0) -> None:
        try:
            while True:
                await asyncio.sleep(interval)
                await self.reap()
        finally:
            await self.close()

    async def reap(self) -> None:
        cutoff = time.monotonic() - self._idle_seconds
        for arn, envs in list(self._idle.items()):
            keep = [env for env in envs if env.alive and env.last_used >= cutoff]
            for env in envs:
                if env not in keep:
                    await env.stop()
            self._idle[arn] = keep

    async def close(self) -> None:
        self._closed = True
        for env in self.environments():
            with contextlib.suppress(Exception):
                await asyncio.shield(env.stop())
        self._idle.clear()

    def _kill_all(self) -> None:
        for env in self.environments():
            env.kill_now()
