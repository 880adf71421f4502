"""Run wrk with the Lua scripts in bench/lua and read back the JSON their done() prints."""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from bench.signing import SignedRequest

LUA_DIR = Path(__file__).resolve().parent / "lua"
MARKER = "BENCH_JSON "
# A request unanswered for this long counts as a timeout error (wrk's --timeout).
REQUEST_TIMEOUT_S = 10


class WrkMissing(RuntimeError):
    pass


@dataclass
class WrkResult:
    label: str
    connections: int
    threads: int
    requests: int
    duration_s: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    p999_ms: float
    mean_ms: float
    max_ms: float
    errors: dict[str, int]
    # Replayed runs only: answers with status 200, other answers, requests sent.
    ok: int | None = None
    bad: int | None = None
    sent: int | None = None
    first_error: str = ""
    # Replayed runs only: the 99th percentile of the latencies wrk recorded, one per request,
    # before its coordinated-omission correction (see recorded_latencies); p99_ms is after it.
    p99_recorded_ms: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def socket_errors(self) -> int:
        return sum(v for k, v in self.errors.items() if k != "status")

    @property
    def error_count(self) -> int:
        """Failed requests: socket errors plus non-200 answers (status > 399 for fixed runs)."""
        non_ok = self.bad if self.bad is not None else self.errors.get("status", 0)
        return self.socket_errors + non_ok

    @property
    def valid(self) -> bool:
        """A run with any failed request is reported as failed, never as throughput."""
        return self.error_count == 0 and self.requests > 0

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["valid"] = self.valid
        return out


def recorded_latencies(corrected: Iterable[tuple[int, int]], expected_us: int) -> dict[int, int]:
    """The histogram wrk recorded (microseconds -> requests), from the one it reports.

    Before reporting, wrk 4 corrects for coordinated omission (stats_correct in its stats.c):
    taking `expected_us` = run time / (requests / connections) as each connection's interval,
    every recorded latency n >= 2 * expected adds one sample at each of n - expected,
    n - 2 * expected, ... while above expected. That models an open-loop client that would have
    kept sending during a stall; these runs are closed-loop, and the replay's run time includes
    wrk's idle tail. The correction is undone here from the top down: the samples a bin got
    come only from bins above it, which are known by then."""
    reported = dict(corrected)
    if not reported or expected_us <= 0:
        return {v: c for v, c in reported.items() if c}
    recorded: dict[int, int] = {}
    added_by_above: dict[int, int] = {}  # per residue mod expected: recorded samples above
    for value in range(max(reported), 0, -1):
        count = reported.get(value, 0)
        if value > expected_us:
            residue = value % expected_us
            above = added_by_above.get(residue, 0)
            count -= above
            if count:
                added_by_above[residue] = above + count
        if count:
            recorded[value] = count
    return recorded


def percentile_us(histogram: dict[int, int], percent: float) -> int:
    """wrk's own rule (stats_percentile): the first value whose running count reaches
    round(percent / 100 * total + 0.5), with C's round (halves away from zero)."""
    total = sum(histogram.values())
    rank = math.floor(percent / 100 * total + 1.0)
    running = 0
    for value in sorted(histogram):
        running += histogram[value]
        if running >= rank:
            return value
    return 0


def ensure_wrk(install: bool) -> str:
    found = shutil.which("wrk")
    if found:
        return found
    can_install = install and os.geteuid() == 0 and shutil.which("apt-get") is not None
    if not can_install:
        raise WrkMissing(
            "wrk is not installed: run `apt-get install -y wrk` (Debian/Ubuntu) and try again"
        )
    print("bench: installing wrk with apt-get ...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-q"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", "wrk"],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    found = shutil.which("wrk")
    if not found:
        raise WrkMissing("apt-get install wrk did not provide a wrk binary")
    return found


def wrk_version(binary: str) -> str:
    proc = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    return (proc.stdout or proc.stderr).splitlines()[0].strip()


def threads_for(connections: int) -> int:
    # Two cores, shared with the server: one wrk thread per core at most.
    return 1 if connections < 2 else 2


def run_fixed(
    binary: str,
    url: str,
    request: SignedRequest,
    *,
    connections: int,
    duration_s: float,
    label: str,
) -> WrkResult:
    """Replay one request for `duration_s` seconds on `connections` keep-alive connections."""
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        path = Path(tmp) / "request.http"
        path.write_bytes(request.raw())
        return _run(
            binary, url, "fixed.lua", [str(path)], connections, duration_s, label, timeout=30
        )


def run_replay(
    binary: str,
    url: str,
    requests: Iterable[SignedRequest],
    *,
    connections: int,
    max_duration_s: float,
    label: str,
    cpus: str | None = None,
) -> WrkResult:
    """Send each request once, ending when all are answered or after `max_duration_s`.
    `cpus`: run wrk on these CPUs only (taskset list, e.g. "1")."""
    threads = threads_for(connections)
    with tempfile.TemporaryDirectory(prefix="bench-wrk-") as tmp:
        path = Path(tmp) / "requests.bin"
        count = 0
        with path.open("wb") as out:
            for request in requests:
                raw = request.raw()
                if b"\0" in raw:
                    raise ValueError("a request contains a NUL byte, the file's separator")
                out.write(raw + b"\0")
                count += 1
        if count < threads:
            raise ValueError("fewer requests than wrk threads")
        done_file = Path(tmp) / "done"
        done_file.touch()
        return _run(
            binary,
            url,
            "replay.lua",
            [str(path), str(threads), str(done_file)],
            connections,
            max_duration_s,
            label,
            timeout=60,
            done_file=done_file,
            cpus=cpus,
        )


def _execute(
    argv: list[str], timeout: float, threads: int, done_file: Path | None
) -> tuple[str, str, int]:
    """Run wrk; with a done file, interrupt it as soon as every thread has written its line."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        proc = subprocess.Popen(argv, stdout=out, stderr=err, text=True)
        try:
            deadline = time.monotonic() + timeout
            while proc.poll() is None:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"wrk did not finish within {timeout:.0f} s")
                if done_file is not None and _lines(done_file) >= threads:
                    # wrk's SIGINT handler ends the run early and still reports (done() runs).
                    proc.send_signal(signal.SIGINT)
                    proc.wait(timeout=30)
                    break
                time.sleep(0.05)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        out.seek(0)
        err.seek(0)
        return out.read(), err.read(), proc.returncode


def _lines(path: Path) -> int:
    try:
        return path.read_text().count("\n")
    except OSError:
        return 0


def _run(
    binary: str,
    url: str,
    script: str,
    script_args: list[str],
    connections: int,
    duration_s: float,
    label: str,
    *,
    timeout: float,
    done_file: Path | None = None,
    cpus: str | None = None,
) -> WrkResult:
    threads = threads_for(connections)
    argv = [
        *(["taskset", "-c", cpus] if cpus else []),
        binary,
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(duration_s))}s",
        f"--timeout={REQUEST_TIMEOUT_S}s",
        "--latency",
        "-s",
        str(LUA_DIR / script),
        url,
        "--",
        *script_args,
    ]
    stdout, stderr, returncode = _execute(argv, duration_s + timeout, threads, done_file)
    data = None
    for line in stdout.splitlines():
        if line.startswith(MARKER):
            data = json.loads(line[len(MARKER) :])
    if returncode != 0 or data is None:
        raise RuntimeError(f"wrk failed (exit {returncode}): {' '.join(argv)}\n{stdout}\n{stderr}")
    # Replayed runs report their active time: wrk's own duration includes the idle tail.
    duration = (data.get("active_us") or data["duration_us"]) / 1e6
    p99_recorded = None
    if "hist" in data:
        # wrk's interval, computed as it does (C integer division), from its own run time.
        per_connection = data["requests"] // connections
        expected = data["duration_us"] // per_connection if per_connection else 0
        hist = recorded_latencies(((v, c) for v, c in data["hist"]), expected)
        p99_recorded = percentile_us(hist, 99) / 1000
    return WrkResult(
        label=label,
        connections=connections,
        threads=threads,
        requests=data["requests"],
        duration_s=duration,
        rps=data["requests"] / duration if duration > 0 else 0.0,
        p50_ms=data["p50_us"] / 1000,
        p90_ms=data["p90_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        p999_ms=data["p999_us"] / 1000,
        mean_ms=data["mean_us"] / 1000,
        max_ms=data["max_us"] / 1000,
        errors=data["errors"],
        ok=data.get("ok"),
        bad=data.get("bad"),
        sent=data.get("sent"),
        first_error=data.get("first_error", ""),
        p99_recorded_ms=p99_recorded,
    )
