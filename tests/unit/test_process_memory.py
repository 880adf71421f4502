"""limit_malloc_arenas: threads started afterwards share two malloc arenas (glibc), where by
default each got one of its own; an operator's MALLOC_ARENA_MAX is left alone. Run in fresh
interpreters, since arenas once made stay for the life of the process."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

PROGRAM = textwrap.dedent(
    """
    import ctypes, os, sys, tempfile, threading
    from secretsd.process_memory import limit_malloc_arenas

    applied = limit_malloc_arenas() if sys.argv[1] == "limit" else None
    ready, done = threading.Barrier(9), threading.Event()

    def work():
        keep = [bytearray(4096) for _ in range(64)]  # malloc in this thread's arena
        ready.wait()
        done.wait()

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    ready.wait()
    libc = ctypes.CDLL(None)
    libc.fopen.restype = ctypes.c_void_p
    libc.fopen.argtypes = (ctypes.c_char_p, ctypes.c_char_p)
    libc.malloc_info.argtypes = (ctypes.c_int, ctypes.c_void_p)
    libc.fclose.argtypes = (ctypes.c_void_p,)
    path = tempfile.mktemp()
    stream = libc.fopen(path.encode(), b"w")
    libc.malloc_info(0, stream)
    libc.fclose(stream)
    done.set()
    for t in threads:
        t.join()
    print(applied, open(path).read().count("<heap nr="))
    os.unlink(path)
    """
)


def arenas(mode: str, **env: str) -> tuple[str, int]:
    environ = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"} | env
    out = subprocess.run(
        [sys.executable, "-c", PROGRAM, mode],
        capture_output=True,
        text=True,
        timeout=60,
        env=environ,
        check=True,
    ).stdout.split()
    return out[0], int(out[1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt only")
def test_threads_share_two_arenas_after_the_limit() -> None:
    applied, heaps = arenas("limit")
    assert applied == "True"
    assert heaps <= 2
    # The control: the same threads without the limit get arenas of their own.
    _, default_heaps = arenas("none")
    assert default_heaps > 2


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt only")
def test_an_operators_choice_is_kept() -> None:
    applied, heaps = arenas("limit", MALLOC_ARENA_MAX="4")
    assert applied == "False"
    assert 2 < heaps <= 4
