"""Group commit for SQLite: commits return without an fsync, one thread makes them durable.

A write transaction on SQLite commits with `synchronous=NORMAL` (WAL mode): its frames are in
the `-wal` file, in the OS page cache, so they already survive kill -9 of the process, but not a
power cut. Every commit takes the next sequence number. A flusher thread of the `Database`
fsyncs the `-wal` file (os.fsync releases the GIL, so the event loop keeps serving); an fsync
covers every commit numbered before it started, so all the commits made while one fsync runs
share the next one. A request that committed is answered only once its commits are covered
(`wait_for_own_commits`, awaited by the HTTP layer before it audits and answers); commits that
nobody waits for (background tasks) are covered within `IDLE_SYNC_SECONDS`.

WAL checkpoints are moved off the event loop too: the committing connection runs none
(`wal_autocheckpoint=0`); a checkpointer thread with a connection of its own runs a PASSIVE
checkpoint once enough commits have gathered (SQLite syncs the WAL before it copies frames into
the database file, and the database file after, whatever `synchronous` says).

A failed fsync is not retried: after a write-back error Linux may have dropped the dirty pages,
and a second fsync could succeed without them (PostgreSQL's "fsyncgate"). Every commit not yet
covered, and every later one, fails with StoreUnavailable: nothing more is acknowledged until
the worker is restarted, and SQLite recovers from what is on disk.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from secretsd.store.errors import StoreUnavailable

log = logging.getLogger("secretsd.store")

# Commits nobody waits for (a background task's) are fsync'd within this long.
IDLE_SYNC_SECONDS = 0.05
# How often the flusher checks that its fd is still the `-wal` file's.
INODE_CHECK_SECONDS = 1.0
# A PASSIVE checkpoint after this many commits: about 4 MiB of WAL at ~10 pages of 4 KiB each
# (the size at which other connections checkpoint, see database.py).
CHECKPOINT_EVERY_COMMITS = 100


class FsyncFailed(StoreUnavailable):
    """The WAL could not be made durable: no commit after the last good fsync is."""


# The commits made by the current asyncio task (a request), per GroupCommit: the highest
# sequence number of each. Set where the commit happens, read by the HTTP layer before it
# answers. A tuple (immutable): a task created from a request copies it harmlessly.
_own_commits: ContextVar[tuple[tuple[GroupCommit, int], ...]] = ContextVar(
    "secretsd_own_commits", default=()
)


async def wait_for_own_commits() -> None:
    """Return once every commit the current task made is durable (at once if it made none).
    Raises FsyncFailed when one cannot be."""
    own = _own_commits.get()
    if not own:
        return
    _own_commits.set(())
    for group, seq in own:
        await group.wait(seq)


@contextmanager
def unawaited_commits() -> Iterator[None]:
    """Commits made inside are not waited for by the current task: for writes whose loss in a
    power cut is acceptable (LastAccessedDate), which then cost a read no fsync. They become
    durable with the next fsync all the same (within IDLE_SYNC_SECONDS)."""
    own = _own_commits.get()
    try:
        yield
    finally:
        _own_commits.set(own)


class GroupCommit:
    """The commit sequencer and flusher of one SQLite database file (one per `Database`)."""

    def __init__(
        self,
        wal_path: str,
        *,
        checkpoint: Callable[[], None] | None = None,
        fsync: Callable[[int], None] = os.fsync,
        idle_sync_seconds: float = IDLE_SYNC_SECONDS,
        checkpoint_every: int = CHECKPOINT_EVERY_COMMITS,
    ) -> None:
        self._wal_path = wal_path
        self._checkpoint = checkpoint
        self._fsync = fsync
        self._idle_sync = idle_sync_seconds
        self._checkpoint_every = checkpoint_every
        self._cond = threading.Condition(threading.Lock())
        self._committed = 0  # the last sequence number handed out
        self._synced = 0  # every commit up to this one is durable
        self._pending_since: float | None = None  # when the oldest unsynced commit was made
        self._waiters: list[tuple[int, asyncio.Future[None], asyncio.AbstractEventLoop]] = []
        self._wanted = 0  # the highest sequence number someone waits for
        self._idle = False  # the flusher waits on the condition (not fsyncing)
        self._kick_scheduled = False  # a wake-up of the flusher is due on the loop
        self._failed: BaseException | None = None
        self._stopped = False
        self._thread: threading.Thread | None = None
        self._fd: int | None = None
        self._inode_checked = 0.0
        self._since_checkpoint = 0
        self._checkpoint_due = threading.Event()
        self._checkpointer: threading.Thread | None = None
        self.fsyncs = 0  # how many fsyncs ran (for tests and metrics)

    # --- called by whoever commits (the event loop's thread) ---

    def committed(self) -> int:
        """Count one commit, just made; its sequence number is remembered for the current task
        (see wait_for_own_commits)."""
        with self._cond:
            self._committed += 1
            seq = self._committed
            if self._pending_since is None:
                # No wake-up: a request's commit is followed by its wait(), which wakes the
                # flusher; one nobody waits for is found by the flusher's poll. Each wake-up is
                # a hand-over of the GIL (a context switch when the worker is pinned to a core).
                self._pending_since = time.monotonic()
        if self._thread is None:
            self._start()
        own = _own_commits.get()
        if own and own[-1][0] is self:
            _own_commits.set((*own[:-1], (self, seq)))
        else:
            _own_commits.set((*own, (self, seq)))
        return seq

    async def wait(self, seq: int) -> None:
        """Return once commit `seq` is durable; FsyncFailed if it cannot be."""
        if seq <= self._synced:
            return
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        with self._cond:
            if self._failed is not None:
                raise FsyncFailed(str(self._failed)) from self._failed
            if seq <= self._synced:
                return
            self._waiters.append((seq, future, loop))
            if seq > self._wanted:
                self._wanted = seq
                if self._idle and not self._kick_scheduled:
                    # One wake-up for all the waits of this turn of the loop, after them (a busy
                    # flusher looks for waiters after its fsync by itself).
                    self._kick_scheduled = True
                    loop.call_soon(self._kick)
        await future

    def _kick(self) -> None:
        with self._cond:
            self._kick_scheduled = False
            self._cond.notify()

    @property
    def committed_seq(self) -> int:
        return self._committed

    @property
    def synced_seq(self) -> int:
        return self._synced

    def close(self) -> None:
        """Stop the threads after a last fsync of whatever is pending."""
        with self._cond:
            self._stopped = True
            self._cond.notify()
        self._checkpoint_due.set()
        for thread in (self._thread, self._checkpointer):
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout=10)
        self._thread = self._checkpointer = None
        with self._cond:
            self._stopped = False  # used again (the connection reopens lazily): threads restart
        self._checkpoint_due.clear()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    # --- the flusher thread ---

    def _start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="sqlite-flusher", daemon=True)
        self._thread.start()
        if self._checkpoint is not None:
            self._checkpointer = threading.Thread(
                target=self._run_checkpoints, name="sqlite-checkpointer", daemon=True
            )
            self._checkpointer.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                while True:
                    if self._failed is not None:
                        return
                    pending = self._committed > self._synced
                    if self._stopped:
                        if not pending:
                            return
                        break
                    if pending and self._wanted > self._synced:
                        break
                    if pending and self._pending_since is not None:
                        remaining = self._pending_since + self._idle_sync - time.monotonic()
                        if remaining <= 0:
                            break
                        self._idle = True
                        self._cond.wait(remaining)
                    else:
                        # Idle: a poll every IDLE_SYNC_SECONDS (a few microseconds each).
                        self._idle = True
                        self._cond.wait(self._idle_sync)
                    self._idle = False
                # Every commit counted so far is in the WAL already (counted after COMMIT).
                target = self._committed
            self._flush(target)

    def _flush(self, target: int) -> None:
        try:
            self._fsync(self._wal_fd())
        except Exception as exc:
            log.critical(
                "fsync of %s failed: %s; writes are refused until this worker restarts",
                self._wal_path,
                exc,
            )
            self._fail(exc)
            return
        self.fsyncs += 1
        with self._cond:
            if target <= self._synced:
                return
            checkpoint_now = False
            self._since_checkpoint += target - self._synced
            if self._since_checkpoint >= self._checkpoint_every:
                self._since_checkpoint = 0
                checkpoint_now = True
            self._synced = target
            self._pending_since = time.monotonic() if self._committed > self._synced else None
            ready = [w for w in self._waiters if w[0] <= target]
            self._waiters = [w for w in self._waiters if w[0] > target]
        if checkpoint_now:
            self._checkpoint_due.set()
        _resolve(ready, None)

    def _fail(self, exc: BaseException) -> None:
        with self._cond:
            self._failed = exc
            ready, self._waiters = self._waiters, []
        _resolve(ready, exc)

    def _wal_fd(self) -> int:
        """An fd of the `-wal` file SQLite writes now. SQLite truncates it in place
        (journal_size_limit, a TRUNCATE checkpoint: same inode) and deletes it only when the
        last connection closes or the journal mode changes, which cannot happen while the
        committing connection is open in WAL mode. Still, the inode is compared with the path's
        (two stats) at most once per INODE_CHECK_SECONDS, and the file reopened if it changed:
        every syscall here hands the GIL back to the event loop and waits to get it again, so
        not on every fsync. A deleted WAL was checkpointed, and the database file synced, by
        SQLite first."""
        now = time.monotonic()
        if self._fd is not None and now < self._inode_checked + INODE_CHECK_SECONDS:
            return self._fd
        self._inode_checked = now
        try:
            current = os.stat(self._wal_path)
        except FileNotFoundError:
            current = None
        if self._fd is not None:
            if current is not None and os.fstat(self._fd).st_ino == current.st_ino:
                return self._fd
            os.close(self._fd)
            self._fd = None
        self._fd = os.open(self._wal_path, os.O_RDONLY | os.O_CREAT, 0o600)
        return self._fd

    # --- the checkpointer thread ---

    def _run_checkpoints(self) -> None:
        assert self._checkpoint is not None
        while True:
            self._checkpoint_due.wait()
            self._checkpoint_due.clear()
            if self._stopped or self._failed is not None:
                return
            try:
                self._checkpoint()
            except sqlite3.Error as exc:
                # A busy database or the like: the next one will do, the WAL only grows meanwhile.
                log.warning("WAL checkpoint failed: %s", exc)


def _resolve(
    waiters: list[tuple[int, asyncio.Future[None], asyncio.AbstractEventLoop]],
    exc: BaseException | None,
) -> None:
    by_loop: dict[asyncio.AbstractEventLoop, list[asyncio.Future[None]]] = {}
    for _, future, loop in waiters:
        by_loop.setdefault(loop, []).append(future)
    for loop, futures in by_loop.items():
        try:
            loop.call_soon_threadsafe(_settle, futures, exc)
        except RuntimeError:
            pass  # the loop is closed: nobody waits any more


def _settle(futures: list[asyncio.Future[None]], exc: BaseException | None) -> None:
    for future in futures:
        if future.done():
            continue  # cancelled (the client went away)
        if exc is None:
            future.set_result(None)
        else:
            future.set_exception(FsyncFailed(str(exc)))
