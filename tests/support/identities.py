"""Identities for tests that build audit facts without a server."""

from __future__ import annotations

from secretsd.auth.identity import Identity

ALICE = Identity(
    "111122223333",
    "arn:aws:iam::111122223333:user/alice",
    "arn:aws:iam::111122223333:user/alice",
    "User",
    "AIDAALICE",
    "user",
    "alice",
    "AKIAALICE",
)
