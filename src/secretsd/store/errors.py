"""What the store raises to its callers, whichever database is behind it."""

from __future__ import annotations


class StoreUnavailable(Exception):
    """The database could not be reached or refused the transaction."""


class StoreConflict(Exception):
    """A uniqueness constraint refused a write (another node or worker got there first)."""
