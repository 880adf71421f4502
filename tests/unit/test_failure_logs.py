"""The failure-report helper keeps a test's own warnings and their tracebacks, nothing else."""

from __future__ import annotations

from datetime import datetime

from support.failure_logs import notable_lines


def test_keeps_warnings_errors_and_tracebacks_logged_since_the_test_started() -> None:
    since = datetime(2026, 12, 7, 18, 0, 5).timestamp()
    log = "\n".join(
        [
            "2026-12-07 18:00:04,999 ERROR secretsd.x before the test",
            "Traceback: of the earlier error",
            "2026-12-07 18:00:05,000 INFO secretsd.x routine",
            "2026-12-07 18:00:06,100 WARNING secretsd.rotation rotation of a failed",
            "2026-12-07 18:00:06,200 ERROR secretsd.rotation rotation of b failed; will retry",
            "Traceback (most recent call last):",
            '  File "x.py", line 1',
            "2026-12-07 18:00:07,000 INFO secretsd.request status=200",
            "a stdout line",
        ]
    )
    assert notable_lines(log, since) == [
        "2026-12-07 18:00:06,100 WARNING secretsd.rotation rotation of a failed",
        "2026-12-07 18:00:06,200 ERROR secretsd.rotation rotation of b failed; will retry",
        "Traceback (most recent call last):",
        '  File "x.py", line 1',
    ]
