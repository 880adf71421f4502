"""A Zipf-like key distribution: key of rank k (1-based) is drawn with weight 1 / k**s.

Real secret stores are read unevenly: a few secrets (the shared database password, the API key
every service needs) take most reads, and a long tail is read now and then. s ~ 1.1 is the usual
fit for such access logs. Deterministic for a given seed, so a run can be repeated.
"""

from __future__ import annotations

import bisect
import itertools
import random
from collections.abc import Sequence


class ZipfSampler:
    def __init__(self, n: int, s: float = 1.1, seed: int = 12) -> None:
        if n < 1:
            raise ValueError("n must be at least 1")
        if s <= 0:
            raise ValueError("s must be positive")
        self.n = n
        self.s = s
        weights = [1.0 / (k**s) for k in range(1, n + 1)]
        self._cumulative = list(itertools.accumulate(weights))
        self._total = self._cumulative[-1]
        self._rng = random.Random(seed)

    def probability(self, rank: int) -> float:
        """P(rank) for rank in 0..n-1 (0 is the hottest key)."""
        previous = self._cumulative[rank - 1] if rank > 0 else 0.0
        return float((self._cumulative[rank] - previous) / self._total)

    def sample(self) -> int:
        """A key index in 0..n-1; 0 is the hottest."""
        point = self._rng.random() * self._total
        return min(bisect.bisect_right(self._cumulative, point), self.n - 1)

    def samples(self, count: int) -> list[int]:
        return [self.sample() for _ in range(count)]


def mix(reads: int, writes: int, seed: int = 12) -> list[bool]:
    """`reads + writes` slots in a random order, True for a write (e.g. 90/10 read/write)."""
    slots = [False] * reads + [True] * writes
    random.Random(seed).shuffle(slots)
    return slots


def top_share(indices: Sequence[int], top: int) -> float:
    """The share of draws that went to the `top` hottest keys."""
    return sum(1 for i in indices if i < top) / len(indices) if indices else 0.0
