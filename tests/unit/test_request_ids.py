"""Request ids from a pool of random bits: RFC 9562 version 4 UUIDs, as AWS's are, and never
the same bits twice, across refills of the pool."""

from __future__ import annotations

import uuid

from secretsd.protocol.asgi import RequestIds, new_request_id


def test_pooled_ids_are_distinct_version_4_uuids_across_refills() -> None:
    ids = RequestIds(pool_ids=8)
    made = [ids.new() for _ in range(8 * 50 + 3)]
    assert len(set(made)) == len(made)
    for text in made:
        parsed = uuid.UUID(text)
        assert str(parsed) == text
        assert parsed.version == 4
        assert parsed.variant == uuid.RFC_4122


def test_the_unpooled_id_has_the_same_shape() -> None:
    parsed = uuid.UUID(new_request_id())
    assert parsed.version == 4 and parsed.variant == uuid.RFC_4122
