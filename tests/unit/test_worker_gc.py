"""A serving worker's garbage collector after start-up: the start-up heap frozen, full
collections rare, young ones as Python's defaults have them."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from secretsd.protocol import asgi


@pytest.fixture
def restored_gc() -> Iterator[None]:
    before = gc.get_threshold()
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()


@pytest.mark.usefixtures("restored_gc")
def test_startup_freezes_the_heap_and_makes_full_collections_rare() -> None:
    young, middle, _ = gc.get_threshold()
    long_lived = [object(), {"built": "at start-up"}]
    asgi._freeze_startup_heap()
    assert gc.get_freeze_count() > 0
    assert not any(o is long_lived for o in gc.get_objects())  # out of the collector's reach
    assert gc.get_threshold() == (young, middle, asgi.FULL_COLLECTION_AFTER)
