"""PostgreSQL change notifications: a worker learns at once that another one changed something.

`ChangeListener` keeps one connection of its own LISTENing on a channel, in a daemon thread, and
raises a flag on every NOTIFY (writers send it inside their transaction, so it arrives when they
commit). A reader that finds the flag down may trust what it cached; while the listener is not
(yet, or any more) connected, the flag reads as raised, so callers fall back to reading.
"""

from __future__ import annotations

import logging
import threading

import psycopg

log = logging.getLogger("secretsd.notifications")

IAM_CHANNEL = "secretsd_iam"
_RETRY_SECONDS = 1.0


class ChangeListener:
    def __init__(self, url: str, channel: str) -> None:
        self._url = url
        self._channel = channel
        self._changed = threading.Event()
        self._connected = threading.Event()
        self._stop = threading.Event()
        self._changed.set()
        self._thread = threading.Thread(target=self._run, name=f"listen-{channel}", daemon=True)
        self._thread.start()

    def take_change(self) -> bool:
        """True when something may have changed since the last call (or nobody is listening)."""
        if not self._connected.is_set():
            return True
        if self._changed.is_set():
            # Cleared before the caller re-reads: a notification arriving meanwhile raises it
            # again, so the next call reads once more rather than missing it.
            self._changed.clear()
            return True
        return False

    def wait_connected(self, timeout: float) -> bool:
        return self._connected.wait(timeout)

    def close(self) -> None:
        """Stop listening (within a second); a worker's listener simply ends with the process."""
        self._stop.set()
        self._thread.join(timeout=5.0)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._url, autocommit=True) as conn:
                    conn.execute(f"LISTEN {self._channel}")
                    # Anything committed before LISTEN took effect was not notified.
                    self._changed.set()
                    self._connected.set()
                    while not self._stop.is_set():
                        # The timeout only lets the loop see a close(); notifications wake it.
                        for _ in conn.notifies(timeout=_RETRY_SECONDS):
                            self._changed.set()
            except Exception:
                if not self._stop.is_set():
                    log.warning(
                        "change listener on %s lost its connection; retrying", self._channel
                    )
            self._connected.clear()
            self._changed.set()
            self._stop.wait(_RETRY_SECONDS)
