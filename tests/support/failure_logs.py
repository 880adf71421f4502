"""What a failed test's servers logged while it ran, attached to its report.

A flake seen only in CI is otherwise undiagnosable: the servers' data dirs are gone with the
runner. Only warnings, errors and their tracebacks are kept, and only from the test's own time
span, so a session-wide shared server does not drown the report in other tests' lines.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime

from support.server import ServerProcess

_STAMP = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),\d{3} (\w+) ")
_LEVELS = ("WARNING", "ERROR", "CRITICAL")
MAX_LINES = 80


def notable_lines(log: str, since: float) -> list[str]:
    """Warning and error lines (with the untimestamped lines that follow them: tracebacks)
    logged at or after `since` (a Unix time, local clock as the server logs it)."""
    kept: list[str] = []
    keeping = False
    for line in log.splitlines():
        stamp = _STAMP.match(line)
        if stamp is None:
            if keeping:
                kept.append(line)
            continue
        at = datetime.strptime(stamp.group(1), "%Y-%m-%d %H:%M:%S").timestamp()
        keeping = at >= int(since) and stamp.group(2) in _LEVELS
        if keeping:
            kept.append(line)
    return kept[-MAX_LINES:]


def sections(servers: Iterable[ServerProcess], since: float) -> list[tuple[str, str]]:
    """One report section per server that logged something notable."""
    out = []
    for server in servers:
        lines = notable_lines(server.logs(), since)
        if lines:
            out.append((f"server log warnings and errors: {server.data_dir}", "\n".join(lines)))
    return out
