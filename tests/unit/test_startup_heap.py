"""What a serving worker does to the cyclic garbage collector at startup."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from secretsd.protocol.asgi import FULL_COLLECTION_EVERY, _freeze_startup_heap


@pytest.fixture
def restored_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


def test_startup_objects_are_frozen_and_full_collections_are_rarer(restored_gc: None) -> None:
    young, middle, _ = gc.get_threshold()
    startup_objects = [[i] for i in range(1000)]
    _freeze_startup_heap()
    assert gc.get_freeze_count() >= len(startup_objects)
    assert gc.get_threshold() == (young, middle, FULL_COLLECTION_EVERY)
    assert FULL_COLLECTION_EVERY > 10  # Python's default third threshold
