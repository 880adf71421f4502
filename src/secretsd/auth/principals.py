"""Access keys -> the calling principal, with each key's unsealed secret cached briefly.

The cache is per worker process and time-bounded, so a key deactivated or deleted elsewhere (by
another worker or node) stops working within `ttl_seconds`.
"""

from __future__ import annotations

import base64
import secrets
import string
import time
from dataclasses import dataclass

from secretsd.crypto import aead
from secretsd.store.database import Database
from secretsd.store.records import AccessKeyRecord
from secretsd.store.repository import Repository

_KEY_ID_ALPHABET = string.ascii_uppercase + "234567"


@dataclass(frozen=True, slots=True)
class Principal:
    access_key_id: str
    account_id: str
    arn: str
    secret_access_key: str


def new_access_key_id(prefix: str = "AKIA") -> str:
    return prefix + "".join(secrets.choice(_KEY_ID_ALPHABET) for _ in range(16))


def new_secret_access_key() -> str:
    # 30 random bytes -> 40 base64 characters, the length AWS uses.
    return base64.b64encode(secrets.token_bytes(30)).decode()


def seal_secret(root_key: bytes, access_key_id: str, secret_access_key: str) -> bytes:
    return aead.seal(root_key, secret_access_key.encode(), access_key_id.encode())


class PrincipalDirectory:
    def __init__(self, db: Database, root_key: bytes, ttl_seconds: float) -> None:
        self._db = db
        self._root_key = root_key
        self._ttl = ttl_seconds
        self._cache: dict[str, tuple[float, Principal | None]] = {}

    def lookup(self, access_key_id: str) -> Principal | None:
        now = time.monotonic()
        hit = self._cache.get(access_key_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        with self._db.transaction() as tx:
            record = Repository(tx).access_key(access_key_id)
        principal = self._principal(record)
        if len(self._cache) > 10_000:
            self._cache.clear()
        self._cache[access_key_id] = (now + self._ttl, principal)
        return principal

    def _principal(self, record: AccessKeyRecord | None) -> Principal | None:
        if record is None or record.status != "Active":
            return None
        secret = aead.open_sealed(
            self._root_key, record.secret_sealed, record.access_key_id.encode()
        ).decode()
        return Principal(record.access_key_id, record.account_id, record.principal_arn, secret)
