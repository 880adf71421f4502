"""Time as an injected dependency, so tests and the purge scheduler never need to sleep."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now_ms(self) -> int:
        """Milliseconds since the Unix epoch."""
        ...


class SystemClock:
    """The real clock, optionally shifted.

    The offset exists so an operator (or an end-to-end test) can run a server "in the future" to
    see time-driven work such as the deletion purge happen; it is zero in normal operation.
    """

    def __init__(self, offset_seconds: float = 0.0) -> None:
        self._offset_ms = int(offset_seconds * 1000)

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000 + self._offset_ms

    def now_datetime(self) -> datetime:
        return datetime.fromtimestamp(self.now_ms() / 1000, UTC)


class FixedClock:
    """A hand-driven clock for tests."""

    def __init__(self, now_ms: int) -> None:
        self._now_ms = now_ms

    def now_ms(self) -> int:
        return self._now_ms

    def advance(self, seconds: float) -> None:
        self._now_ms += int(seconds * 1000)


DAY_MS = 86_400_000


def day_start_ms(ms: int) -> int:
    """Midnight UTC of the day containing `ms`: AWS reports LastAccessedDate at day granularity."""
    return ms - ms % DAY_MS
