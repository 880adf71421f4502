"""How a serving process asks the C allocator to keep its memory.

glibc's malloc gives every new thread an arena of its own, up to eight per core, and memory
freed in one arena is not reused by the others. A PostgreSQL worker runs its handlers in 16
threads (ADR 0007): measured with the realistic benchmark on PostgreSQL, its peak RSS was
147-157 MiB with glibc's default and 119 MiB with two arenas, at the same throughput
(docs/benchmarks.md), against issue 12's budget of 150 MiB per worker.
"""

from __future__ import annotations

import ctypes
import os

# mallopt's parameter number for the arena limit (glibc's malloc.h).
_M_ARENA_MAX = -8
SERVER_ARENAS = 2


def limit_malloc_arenas(arenas: int = SERVER_ARENAS) -> bool:
    """At most `arenas` malloc arenas from now on (threads started later share them). True if
    the limit was set; False where there is no glibc `mallopt`, or when the operator chose a
    limit with MALLOC_ARENA_MAX, which glibc has already applied and which is kept."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_ARENA_MAX, arenas))
