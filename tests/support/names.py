"""Unique secret names, so tests can share one server without colliding."""

from __future__ import annotations

import re
import secrets

_DISALLOWED = re.compile(r"[^A-Za-z0-9_+=.@-]+")
_SLUG_LENGTH = 48


class NameFactory:
    """``factory()`` -> ``<test-name>-<8 hex>``; ``factory("x")`` -> ``<test-name>-x-<8 hex>``.

    Only characters AWS allows in secret names. The random part is 8 characters, not 6, because
    AWS warns that names ending in a hyphen and six characters confuse partial-ARN matching.
    """

    def __init__(self, test_name: str) -> None:
        self.slug = _DISALLOWED.sub("-", test_name).strip("-")[:_SLUG_LENGTH].rstrip("-")

    def __call__(self, suffix: str = "") -> str:
        parts = [self.slug or "test"]
        if suffix:
            parts.append(suffix)
        parts.append(secrets.token_hex(4))
        return "-".join(parts)
