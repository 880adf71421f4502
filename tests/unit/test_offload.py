"""secretsd.offload: calls run in the pool's threads, each knows which call it is, and can get
work done on the event loop (ADR 0007)."""

from __future__ import annotations

import asyncio
import threading

import pytest

from secretsd.offload import Offloader, current_call, off_loop, on_loop


def test_calls_run_in_pool_threads_concurrently_and_return_their_answer() -> None:
    async def main() -> None:
        offload = Offloader(4)
        loop_thread = threading.get_ident()
        barrier = threading.Barrier(4)

        def work(i: int) -> tuple[int, int]:
            # Four at once, or the barrier times out: the calls overlap.
            barrier.wait(timeout=5)
            return i * i, threading.get_ident()

        results = await asyncio.gather(*(offload.call(work, i) for i in range(4)))
        assert [r[0] for r in results] == [0, 1, 4, 9]
        assert loop_thread not in {r[1] for r in results}
        assert len({r[1] for r in results}) == 4
        await offload.close()

    asyncio.run(main())


def test_current_call_is_one_per_call_and_the_task_on_the_loop() -> None:
    async def main() -> None:
        offload = Offloader(2)

        def twice() -> tuple[object, object]:
            return current_call(), current_call()

        (a1, a2), (b1, b2) = await asyncio.gather(offload.call(twice), offload.call(twice))
        assert a1 is a2 and b1 is b2
        assert a1 is not None and b1 is not None and a1 is not b1
        # The same thread, a later call: another object (nothing leaks between calls).
        again = await offload.call(current_call)
        assert again not in (a1, b1)
        assert current_call() is asyncio.current_task()
        await offload.close()

    asyncio.run(main())
    assert current_call() is None


def test_on_loop_from_a_call_runs_on_the_loop_thread() -> None:
    async def main() -> None:
        offload = Offloader(1)
        loop_thread = threading.get_ident()
        ran: asyncio.Future[int] = asyncio.get_running_loop().create_future()

        def from_thread() -> int:
            on_loop(lambda: ran.set_result(threading.get_ident()))
            return threading.get_ident()

        caller = await offload.call(from_thread)
        assert caller != loop_thread
        assert await asyncio.wait_for(ran, 5) == loop_thread
        # On the loop itself: at once.
        done: list[int] = []
        on_loop(done.append, 1)
        assert done == [1]
        await offload.close()

    asyncio.run(main())


def test_on_loop_outside_any_loop_or_call_refuses() -> None:
    with pytest.raises(RuntimeError):
        on_loop(print)


def test_off_loop_without_an_offloader_runs_inline() -> None:
    async def main() -> None:
        assert await off_loop(None, threading.get_ident) == threading.get_ident()
        offload = Offloader(1)
        assert await off_loop(offload, threading.get_ident) != threading.get_ident()
        await offload.close()

    asyncio.run(main())


def test_at_least_one_thread() -> None:
    with pytest.raises(ValueError):
        Offloader(0)
