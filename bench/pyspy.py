"""Sample a live worker with py-spy during a load, and boil the samples down.

py-spy (`pip install py-spy`, an optional bench tool: `.[bench]`) reads the worker's Python
stacks from outside, so the worker runs unmodified. It runs with `--idle`, so time a worker spends
blocked in a system call (waiting for PostgreSQL's answer, say) is sampled too: with a database
call that blocks the event loop, the request handler's own stack shows the wait; with an awaited
one, the loop would sit in its poll and the handler would not be on the stack.

The raw (collapsed) format is one line per distinct stack, `frame;frame;...;frame COUNT`, the
outermost frame first; a frame reads `function (path/to/file.py:LINE)`.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Iterable
from pathlib import Path
from typing import Any

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^():]+)(?::\d+)?\)$")
# A database driver's frames: a synchronous call into the database.
DB_DRIVER_MARKERS = ("psycopg/", "psycopg_pool/", "sqlite3/")
DATABASE_MODULE = "secretsd/store/database.py"
# secretsd's store layer (Database.transaction/statement, repositories).
STORE_MARKER = "secretsd/store/"
# Frames of the thread that runs the event loop (uvicorn.Server.run, in a worker process too).
LOOP_THREAD_MARKER = "uvicorn/server.py"
# The process's entry point, under which the event loop itself runs.
ENTRY_MARKERS = ("secretsd/__main__.py", "secretsd/cli/")
# The loop's own C code (uvloop's poll and callbacks) shows as the Python frame that entered it.
EVENT_LOOP_POLL = ("uvloop", "select", "epoll", "poll", "asyncio/runners.py")


def find_py_spy(python_bin: Path) -> str | None:
    beside = python_bin.parent / "py-spy"
    if beside.exists():
        return str(beside)
    return shutil.which("py-spy")


def start(
    py_spy: str, pid: int, duration_s: int, out: Path, rate: int = 250
) -> subprocess.Popen[bytes]:
    argv = [py_spy, "record", "--pid", str(pid), "--duration", str(duration_s)]
    argv += ["--rate", str(rate), "--idle", "--format", "raw", "--output", str(out)]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def parse(raw: str) -> list[tuple[list[str], int]]:
    stacks = []
    for line in raw.splitlines():
        stack, _, count = line.rstrip().rpartition(" ")
        if stack and count.isdigit():
            stacks.append((stack.split(";"), int(count)))
    return stacks


def _short(frame: str) -> str:
    """`func (…/site-packages/pkg/mod.py:12)` -> `func (pkg/mod.py)`: lines merged, paths cut."""
    match = _FRAME.match(frame)
    if not match:
        return frame
    path = match.group("file")
    for anchor in ("site-packages/", "/src/", "/lib/python3"):
        if anchor in path:
            path = path.split(anchor, 1)[1]
            break
    if path.startswith(".") or "/" not in path:
        path = path.rsplit("/", 1)[-1]
    return f"{match.group('func')} ({path})"


def summarise(stacks: Iterable[tuple[list[str], int]], top: int = 15) -> dict[str, Any]:
    """Over the event-loop thread's samples (other threads, such as the PostgreSQL NOTIFY
    listener, are counted apart): top frames by own and by inclusive time, and the shares of
    samples in a database driver, in secretsd's store layer, and idle in the loop's poll.
    A database wait on this thread is time the event loop cannot serve anything else."""
    self_time: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = handler = in_driver = in_store = idle_loop = other_threads = 0
    for frames, count in stacks:
        if not any(LOOP_THREAD_MARKER in f for f in frames):
            other_threads += count
            continue
        total += count
        short = [_short(f) for f in frames]
        if short:
            self_time[short[-1]] += count
        for name in set(short):
            inclusive[name] += count
        in_handler = any(
            "secretsd/" in f and not any(e in f for e in ENTRY_MARKERS) for f in frames
        )
        handler += count if in_handler else 0
        # sqlite3 is C: a call into it shows as the store's own frame at the top of the stack.
        if any(m in f for f in frames for m in DB_DRIVER_MARKERS) or (
            frames and DATABASE_MODULE in frames[-1]
        ):
            in_driver += count
        if any(STORE_MARKER in f for f in frames):
            in_store += count
        if not in_handler and frames and any(m in frames[-1] for m in EVENT_LOOP_POLL):
            idle_loop += count

    def share(n: int) -> float:
        return n / total if total else 0.0

    return {
        "samples": total,
        "other_thread_samples": other_threads,
        "in_secretsd": share(handler),
        "in_db_driver": share(in_driver),
        "in_store": share(in_store),
        "loop_idle": share(idle_loop),
        "top_self": [(name, share(n)) for name, n in self_time.most_common(top)],
        # The trunk every sample shares (runpy, click, uvicorn.Server.run) says nothing.
        "top_inclusive": [
            (name, share(n)) for name, n in inclusive.most_common() if n < total * 0.98
        ][:top],
    }


def text(summary: dict[str, Any]) -> str:
    lines = [
        f"py-spy: {summary['samples']} samples of the event-loop thread"
        f" ({summary['other_thread_samples']} of other threads left out); secretsd code on the stack"
        f" {summary['in_secretsd']:.0%}, in secretsd/store {summary['in_store']:.0%},"
        f" in a database call {summary['in_db_driver']:.0%}, in the event loop's own C code"
        f" (its poll, mostly) {summary['loop_idle']:.0%}",
        "  top frames by own time:",
    ]
    lines += [f"    {s:6.1%}  {name}" for name, s in summary["top_self"]]
    lines.append("  top frames by inclusive time:")
    lines += [f"    {s:6.1%}  {name}" for name, s in summary["top_inclusive"]]
    return "\n".join(lines)
