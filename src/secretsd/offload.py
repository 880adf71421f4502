"""Running requests' synchronous work in threads, off the worker's event loop (ADR 0007).

On PostgreSQL every handler waits on network round trips; run on the event loop, each of those
waits stalls every other request of the worker. `Offloader.call` runs a handler in a bounded
thread pool instead (psycopg releases the GIL while it waits, so the round trips of many
requests overlap) while the loop goes on reading and answering.

Code that a handler reaches may need to know two things the event loop used to tell it:
- which call it serves (`current_call`: caches kept "for the rest of this request"), and
- how to get something done on the loop (`on_loop`: start a task, wake a background loop).
Both travel in context variables, set for each offloaded call in a context of its own.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")

_CALL: contextvars.ContextVar[object | None] = contextvars.ContextVar("secretsd_call", default=None)
_LOOP: contextvars.ContextVar[asyncio.AbstractEventLoop | None] = contextvars.ContextVar(
    "secretsd_loop", default=None
)


def current_call() -> object | None:
    """An object standing for the call being served (the same for its whole duration), or None
    outside any call. In a thread: the offloaded call; on the loop: the request's task."""
    call = _CALL.get()
    if call is not None:
        return call
    try:
        return asyncio.current_task()
    except RuntimeError:
        return None


def on_loop(fn: Callable[..., Any], *args: Any) -> None:
    """Run `fn(*args)` on the event loop: now when already there, else as soon as the loop gets
    to it (asyncio's objects, tasks and events, are not thread-safe)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        loop = _LOOP.get()
        if loop is None:
            raise RuntimeError(
                "neither on an event loop nor in a call offloaded from one"
            ) from None
        loop.call_soon_threadsafe(fn, *args)
        return
    fn(*args)


class Offloader:
    """A bounded pool of threads for handlers; at most `threads` run at once, the others queue
    (each thread keeps a database connection of its own, so this also bounds connections)."""

    def __init__(self, threads: int) -> None:
        if threads < 1:
            raise ValueError("at least one thread is needed")
        self.threads = threads
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="secretsd-handler")

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()
        context.run(_CALL.set, object())
        context.run(_LOOP.set, loop)
        return await loop.run_in_executor(self._executor, context.run, fn, *args)

    async def close(self) -> None:
        """At shutdown: calls still running finish in their threads; nothing new starts."""
        self._executor.shutdown(wait=False, cancel_futures=True)


async def off_loop(offload: Offloader | None, fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)` in `offload`'s threads, or right here without any (SQLite): for background
    loops' database work, which would otherwise stall the requests of the loop they run on."""
    if offload is None:
        return fn(*args)
    return await offload.call(fn, *args)
