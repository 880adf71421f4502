"""bench.processes.group_cpu_seconds: a server's CPU time, summed over its process group."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.processes import group_cpu_seconds  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int, comm: str, pgrp: int, utime: int, stime: int) -> str:
    # Fields 1-15 of /proc/PID/stat as Linux writes them (proc(5)); the rest does not matter.
    return f"{pid} ({comm}) S 1 {pgrp} {pgrp} 0 -1 4194560 100 0 0 0 {utime} {stime} 0 0 20 0 1\n"


def test_sums_user_and_system_time_of_the_group_only(tmp_path: Path) -> None:
    entries = {
        "100": _stat(100, "python3", 100, 50, 10),  # the supervisor
        "101": _stat(101, "python3 -m x (worker)", 100, 200, 40),  # spaces and parentheses
        "102": _stat(102, "wrk", 102, 999, 999),  # another group
    }
    for name, text in entries.items():
        (tmp_path / name).mkdir()
        (tmp_path / name / "stat").write_text(text)
    (tmp_path / "self").mkdir()  # not a pid
    (tmp_path / "103").mkdir()  # ended before its stat could be read
    assert group_cpu_seconds(100, tmp_path) == (50 + 10 + 200 + 40) / TICKS


def test_counts_this_process_burning_cpu() -> None:
    group = os.getpgid(0)
    before = group_cpu_seconds(group)
    deadline = time.process_time() + 0.3
    while time.process_time() < deadline:
        pass
    assert group_cpu_seconds(group) - before >= 0.2
