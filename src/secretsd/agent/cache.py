"""The Agent's cache: entries per (secretId, versionId, versionStage) as asked, least recently
used evicted beyond `size`, each fresh for `ttl` seconds. When an entry has expired the Agent
asks DescribeSecret whether the cached version still holds the label (or still exists, for a
version asked by id) and, if so, serves it again for another TTL without fetching the value."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

Key = tuple[str, str | None, str | None]
CURRENT = "AWSCURRENT"


@dataclass(slots=True)
class Entry:
    value: dict[str, Any]
    expires: float


@dataclass
class AgentCache:
    ttl: float
    size: int
    clock: Callable[[], float] = time.monotonic
    _entries: OrderedDict[Key, Entry] = field(default_factory=OrderedDict)

    def lookup(self, key: Key) -> tuple[dict[str, Any] | None, bool]:
        """(cached value or None, whether it is still fresh)."""
        entry = self._entries.get(key)
        if entry is None:
            return None, False
        self._entries.move_to_end(key)
        return entry.value, self.clock() < entry.expires

    def store(self, key: Key, value: dict[str, Any]) -> None:
        if self.ttl <= 0:
            return  # ttl_seconds = 0: caching off
        self._entries[key] = Entry(value, self.clock() + self.ttl)
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)


def still_current(
    key: Key, cached: Mapping[str, Any], versions_to_stages: Mapping[str, Sequence[str]] | None
) -> bool:
    """Whether DescribeSecret's VersionIdsToStages says the cached answer to `key` still holds."""
    if not versions_to_stages:
        return False
    _, version_id, version_stage = key
    if version_id is not None and version_stage is None:
        return version_id in versions_to_stages
    wanted = version_id if version_id is not None else str(cached.get("VersionId"))
    stage = version_stage if version_stage is not None else CURRENT
    return stage in versions_to_stages.get(wanted, ())
