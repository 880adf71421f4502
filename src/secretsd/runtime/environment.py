"""One execution environment: a function's process running AWS's runtime interface client
against its own Runtime API, and the log of each invocation it runs."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from secretsd.runtime import sandbox
from secretsd.runtime.runtime_api import PendingInvocation, RuntimeApi

# AWS gives a function's initialisation 10 seconds of its own.
INIT_SECONDS = 10.0
LOG_TAIL_BYTES = 4096
# Output written just before the runtime posts its answer may still be in the pipe.
_DRAIN_SECONDS = 0.002


# Variables Lambda sets that a function's configuration may not ("Defined runtime environment
# variables", AWS Lambda Developer Guide).
RESERVED_VARIABLES = frozenset(
    {
        "_HANDLER",
        "_X_AMZN_TRACE_ID",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_ACCESS_KEY",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_LAMBDA_RUNTIME_API",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
    }
)


@dataclass(frozen=True, slots=True)
class RoleCredentials:
    access_key_id: str
    secret_access_key: str
    session_token: str
    expires_ms: int


@dataclass(frozen=True, slots=True)
class FunctionSpec:
    """What an environment runs: one revision of one function's code and configuration."""

    arn: str
    name: str
    account_id: str
    region: str
    revision: str
    handler: str
    runtime: str
    timeout: int
    memory_mb: int
    variables: Mapping[str, str]
    endpoint: str

    @property
    def log_group(self) -> str:
        return f"/aws/lambda/{self.name}"


@dataclass(frozen=True, slots=True)
class RunResult:
    payload: bytes
    function_error: str | None
    # The invocation's log (START to REPORT) as written to CloudWatch Logs.
    log: str

    @property
    def log_tail(self) -> str:
        data = self.log.encode()[-LOG_TAIL_BYTES:]
        return data.decode("utf-8", "ignore")

    @property
    def log_result(self) -> str:
        return base64.b64encode(self.log.encode()[-LOG_TAIL_BYTES:]).decode()


# (function, log stream, [(timestamp ms, message)]): stores an invocation's log lines.
LogSink = Callable[[FunctionSpec, str, list[tuple[int, str]]], None]


def stream_name(now: datetime) -> str:
    """AWS's stream names: `YYYY/MM/DD/[$LATEST]` and 32 hex digits."""
    return f"{now:%Y/%m/%d}/[$LATEST]{os.urandom(16).hex()}"


def _timestamp(ms: int) -> str:
    return (
        datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"
    )


class Environment:
    def __init__(self, spec: FunctionSpec, now_ms: Callable[[], int], log_sink: LogSink) -> None:
        self.spec = spec
        self._now_ms = now_ms
        self._log_sink = log_sink
        self.stream = stream_name(datetime.fromtimestamp(now_ms() / 1000, UTC))
        self._api = RuntimeApi(self._pid, self._mark_start)
        # Output read before the current invocation was handed out (initialisation).
        self._before_start: list[tuple[int, str]] = []
        self._start_ms = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._root: Path | None = None
        self._lines: list[tuple[int, str]] = []
        self._reader: asyncio.Task[None] | None = None
        self._exited: asyncio.Future[int] | None = None
        self._started = 0.0
        self._init_ms: float | None = None
        self.created = time.monotonic()
        self.last_used = self.created
        self.expires_ms = 0
        self.alive = False

    def _pid(self) -> int | None:
        return None if self._proc is None else self._proc.pid

    @property
    def pid(self) -> int | None:
        return self._pid()

    async def start(self, code: bytes, credentials: RoleCredentials) -> None:
        spec = self.spec
        self._root = Path(tempfile.mkdtemp(prefix="secretsd-lambda-"))
        self._root.chmod(0o755)
        task_root = self._root / "task"
        tmp = self._root / "tmp"
        task_root.mkdir()
        tmp.mkdir(mode=0o700)
        user = sandbox.process_user()
        if user is not None:
            os.chown(tmp, user.uid, user.gid)
        await asyncio.to_thread(sandbox.unpack, code, task_root)
        address = await self._api.start()
        env = self._environment(address, str(task_root), str(tmp), credentials)
        self.expires_ms = credentials.expires_ms
        self._started = time.perf_counter()
        self._proc = subprocess.Popen(
            [sandbox.interpreter(user), "-m", sandbox.runtime_module(), spec.handler],
            cwd=task_root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            close_fds=True,
            user=None if user is None else user.uid,
            group=None if user is None else user.gid,
            extra_groups=None if user is None else [],
            preexec_fn=sandbox.preexec(spec.memory_mb),
        )
        self.alive = True
        loop = asyncio.get_running_loop()
        self._exited = loop.create_future()
        assert self._proc.stdout is not None
        reader = asyncio.StreamReader(limit=1024 * 1024)
        await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), self._proc.stdout
        )
        self._reader = asyncio.create_task(self._read_output(reader))

    def _environment(
        self, address: str, task_root: str, tmp: str, credentials: RoleCredentials
    ) -> dict[str, str]:
        spec = self.spec
        runtime_version = spec.runtime.removeprefix("python")
        defaults = {
            # What AWS sets but lets a function's variables override.
            "AWS_ENDPOINT_URL": spec.endpoint,
            "SECRETS_MANAGER_ENDPOINT": spec.endpoint,
            "TZ": ":UTC",
            "LANG": "en_US.UTF-8",
            "PATH": "/usr/local/bin:/usr/bin/:/bin",
            "PYTHONPATH": f"{task_root}:{sandbox.library_path()}",
            "PYTHONUNBUFFERED": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "TMPDIR": tmp,
            "HOME": tmp,
            # Fewer malloc arenas: less address space reserved under the memory limit.
            "MALLOC_ARENA_MAX": "2",
        }
        reserved = {
            "AWS_REGION": spec.region,
            "AWS_DEFAULT_REGION": spec.region,
            "AWS_LAMBDA_FUNCTION_NAME": spec.name,
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_mb),
            "AWS_LAMBDA_LOG_GROUP_NAME": spec.log_group,
            "AWS_LAMBDA_LOG_STREAM_NAME": self.stream,
            "AWS_LAMBDA_INITIALIZATION_TYPE": "on-demand",
            "AWS_EXECUTION_ENV": f"AWS_Lambda_python{runtime_version}",
            "AWS_LAMBDA_RUNTIME_API": address,
            "LAMBDA_TASK_ROOT": task_root,
            "LAMBDA_RUNTIME_DIR": sandbox.library_path(),
            "_HANDLER": spec.handler,
            "AWS_ACCESS_KEY_ID": credentials.access_key_id,
            "AWS_SECRET_ACCESS_KEY": credentials.secret_access_key,
            "AWS_SESSION_TOKEN": credentials.session_token,
        }
        assert set(reserved) <= RESERVED_VARIABLES
        env = {**defaults, **spec.variables, **reserved}
        return {k: v for k, v in env.items() if v != ""}

    async def _read_output(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                try:
                    line = await reader.readline()
                except ValueError:
                    line = await reader.read(1024 * 1024)
                if not line:
                    break
                text = line.decode("utf-8", "replace")
                self._lines.append((self._now_ms(), text if text.endswith("\n") else text + "\n"))
        finally:
            status = await asyncio.to_thread(self._wait)
            self.alive = False
            if self._exited is not None and not self._exited.done():
                self._exited.set_result(status)

    def _wait(self) -> int:
        assert self._proc is not None
        return self._proc.wait()

    def _mark_start(self) -> None:
        self._before_start, self._lines = self._lines, []
        self._start_ms = self._now_ms()

    def _log(self, message: str) -> None:
        self._lines.append((self._now_ms(), message + "\n"))

    async def invoke(self, request_id: str, payload: bytes) -> RunResult:
        """Run one invocation. The environment is dead afterwards if the function timed out,
        failed to initialise or its process exited."""
        spec = self.spec
        assert self._exited is not None
        self.last_used = time.monotonic()
        cold = self._init_ms is None
        # Output before this invocation: the initialisation's, or late lines of the last one.
        written = self._lines
        self._lines = []
        started_ms = self._now_ms()
        if cold:
            written.insert(0, (started_ms, f"INIT_START Runtime Version: {spec.runtime}\n"))
        invocation = PendingInvocation(request_id, payload, spec.timeout * 1000, spec.arn)
        self._api.submit(invocation)
        outcome = await self._await_start(invocation)
        begun = time.perf_counter()
        # What the function printed while initialising comes before START, as in AWS's logs.
        if self._api.ready.is_set() and outcome is None:
            written += self._before_start
            self._before_start = []
            start_ms = self._start_ms
        else:
            start_ms = self._now_ms()
        written.append((start_ms, f"START RequestId: {request_id} Version: $LATEST\n"))
        if cold:
            self._init_ms = (begun - self._started) * 1000
        if outcome is None:
            outcome = await self._await_result(invocation, request_id)
        duration_ms = (time.perf_counter() - begun) * 1000
        await asyncio.sleep(_DRAIN_SECONDS)
        body, error = outcome
        self._log(f"END RequestId: {request_id}")
        report = (
            f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
            f"Billed Duration: {max(1, int(duration_ms + 0.999))} ms\t"
            f"Memory Size: {spec.memory_mb} MB\tMax Memory Used: {self._max_memory_mb()} MB\t"
        )
        if cold and self._init_ms is not None:
            report += f"Init Duration: {self._init_ms:.2f} ms\t"
        self._log(report)
        written += self._lines
        self._lines = []
        self._log_sink(spec, self.stream, written)
        self.last_used = time.monotonic()
        return RunResult(body, error, "".join(message for _, message in written))

    async def _await_start(self, invocation: PendingInvocation) -> tuple[bytes, str | None] | None:
        """Until the runtime takes the invocation; an outcome if it never does."""
        assert self._exited is not None
        waits: list[asyncio.Future[Any]] = [
            asyncio.ensure_future(self._api.ready.wait()),
            asyncio.ensure_future(self._api.init_failed.wait()),
        ]
        try:
            await asyncio.wait(
                [*waits, self._exited],
                timeout=None if self._api.ready.is_set() else INIT_SECONDS,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            for wait in waits:
                wait.cancel()
        if self._api.ready.is_set():
            return None
        request_id = invocation.request_id
        if self._api.init_failed.is_set():
            await self.stop()
            error = self._api.init_error or b"{}"
            with contextlib.suppress(orjson.JSONDecodeError, TypeError, KeyError):
                parsed = orjson.loads(error)
                self._log(
                    f"[ERROR] {parsed.get('errorType', 'Runtime.Unknown')}: "
                    f"{parsed.get('errorMessage', '')}"
                )
            return error, "Unhandled"
        if self._exited.done():
            return self._exit_error(request_id, self._exited.result())
        await self.stop()
        return self._timeout_error(request_id, INIT_SECONDS)

    async def _await_result(
        self, invocation: PendingInvocation, request_id: str
    ) -> tuple[bytes, str | None]:
        assert self._exited is not None
        pending: list[asyncio.Future[Any]] = [invocation.result, self._exited]
        await asyncio.wait(
            pending,
            timeout=self.spec.timeout,
            return_when=asyncio.FIRST_COMPLETED,
        )
        if invocation.result.done():
            return invocation.result.result()
        self._api.abandon()
        if self._exited.done():
            return self._exit_error(request_id, self._exited.result())
        await self.stop()
        return self._timeout_error(request_id, float(self.spec.timeout))

    def _timeout_error(self, request_id: str, seconds: float) -> tuple[bytes, str]:
        # AWS's words: "<time> <request id> Task timed out after 3.00 seconds" in the log, and
        # the same (with "RequestId: ... Error:") in the payload.
        self._log(
            f"{_timestamp(self._now_ms())} {request_id} Task timed out after {seconds:.2f} seconds"
        )
        body = {
            "errorType": "Sandbox.Timedout",
            "errorMessage": f"RequestId: {request_id} Error: Task timed out after {seconds:.2f} seconds",
        }
        return orjson.dumps(body), "Unhandled"

    def _exit_error(self, request_id: str, status: int) -> tuple[bytes, str]:
        reason = (
            f"signal: {signal.Signals(-status).name.lower().removeprefix('sig')}"
            if status < 0
            else f"exit status {status}"
        )
        if status == -signal.SIGKILL:
            reason = "signal: killed"
        message = f"RequestId: {request_id} Error: Runtime exited with error: {reason}"
        self._log(message)
        self._log("Runtime.ExitError")
        return orjson.dumps(
            {"errorType": "Runtime.ExitError", "errorMessage": message}
        ), "Unhandled"

    def _max_memory_mb(self) -> int:
        pid = self._pid()
        if pid is None:
            return 0
        try:
            with open(f"/proc/{pid}/status", encoding="ascii") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1]) // 1024
        except OSError:
            pass
        return 0

    async def stop(self) -> None:
        self.alive = False
        proc = self._proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        if self._reader is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._reader), 2.0)
        await self._api.close()
        if self._root is not None:
            await asyncio.to_thread(shutil.rmtree, self._root, True)
            self._root = None

    def kill_now(self) -> None:
        """Synchronous last resort (interpreter exit): no process is left behind."""
        proc = self._proc
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        if self._root is not None:
            shutil.rmtree(self._root, True)
