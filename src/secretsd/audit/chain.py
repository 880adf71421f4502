"""The hash chain and its signed digests, as pure functions (no database, no clock).

Each record's hash covers its sequence number, the previous record's hash and the record's
bytes, so changing, removing or reordering any record breaks every hash after it. A digest signs
a chain head (account, region, sequence number, hash) together with the previous digest's
signature, in the manner of CloudTrail's log file integrity validation: someone who can rewrite
the database can recompute the hashes, but cannot sign a new head without the root key.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from secretsd.crypto.rootkey import RootKeyring

GENESIS = "0" * 64
SIGNING_LABEL = b"secretsd audit digest signing key v1"


def record_bytes(record: dict[str, Any]) -> bytes:
    """The canonical form a record is stored and hashed in (sorted keys, no spaces)."""
    return orjson.dumps(record, option=orjson.OPT_SORT_KEYS)


def record_hash(seq: int, prev_hash: str, record: bytes) -> str:
    h = hashlib.sha256()
    h.update(b"secretsd-audit-record-v1\n%d\n%s\n" % (seq, prev_hash.encode("ascii")))
    h.update(record)
    return h.hexdigest()


@dataclass(frozen=True, slots=True)
class DigestHead:
    account_id: str
    region: str
    seq: int
    head_hash: str
    created_ms: int
    previous_signature: str

    def payload(self) -> bytes:
        return orjson.dumps(
            {
                "accountId": self.account_id,
                "awsRegion": self.region,
                "digestEndSequence": self.seq,
                "digestEndHash": self.head_hash,
                "digestEndTime": self.created_ms,
                "previousDigestSignature": self.previous_signature,
                "version": "secretsd-audit-digest-v1",
            },
            option=orjson.OPT_SORT_KEYS,
        )


class DigestSigner:
    """An Ed25519 key for one root key version: its seed is derived from that root key, so it
    is never stored; the public key can be exported and verified against without the root key."""

    def __init__(self, key_version: int, seed: bytes) -> None:
        self.key_version = key_version
        self._key = Ed25519PrivateKey.from_private_bytes(seed[:32])
        self.public_key = public_key_text(self._key.public_key())

    def seed(self) -> bytes:
        """The private key, for the node's audit writer process (which never sees the root key)."""
        return self._key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())

    def sign(self, head: DigestHead) -> str:
        return base64.b64encode(self._key.sign(head.payload())).decode("ascii")


def public_key_text(key: Ed25519PublicKey) -> str:
    return base64.b64encode(key.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode("ascii")


def load_public_key(text: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(base64.b64decode(text.strip()))


def signature_valid(public_key: Ed25519PublicKey, head: DigestHead, signature: str) -> bool:
    try:
        public_key.verify(base64.b64decode(signature), head.payload())
    except (InvalidSignature, ValueError):
        return False
    return True


class RootKeySigners:
    """Digest signers derived from the root key versions (one per version, made on first use)."""

    def __init__(self, ring: RootKeyring) -> None:
        self._ring = ring
        self._signers: dict[int, DigestSigner] = {}

    def signer(self, version: int) -> DigestSigner | None:
        found = self._signers.get(version)
        if found is None:
            seed = self._ring.derived_key(version, SIGNING_LABEL)
            if seed is None:
                return None
            found = self._signers[version] = DigestSigner(version, seed)
        return found

    def current(self) -> DigestSigner:
        found = self.signer(self._ring.current_version)
        assert found is not None
        return found

    def public_key(self, version: int) -> str | None:
        found = self.signer(version)
        return found.public_key if found is not None else None
