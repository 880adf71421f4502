"""Opaque, tamper-proof NextToken values.

A token is the JSON position sealed with AES-GCM under a key derived from a root key version
(named in the token's header, as in every root-key-sealed blob), bound to the operation, account
and region: a token cannot be read, altered, or replayed against another account's data. Tokens
made with a root key version that rotation has since retired are refused as invalid.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from secretsd.crypto import aead, rootkey
from secretsd.crypto.rootkey import RootKeyring
from secretsd.errors import ServiceError


def invalid_token() -> ServiceError:
    return ServiceError("InvalidNextTokenException", "The NextToken value is invalid.")


_LABEL = b"secretsd/pagination-token/v1"


class TokenCodec:
    def __init__(self, root_keys: RootKeyring) -> None:
        self._root_keys = root_keys
        self._ciphers: dict[int, AESGCM] = {}

    def _cipher(self, version: int) -> AESGCM | None:
        found = self._ciphers.get(version)
        if found is None:
            key = self._root_keys.derived_key(version, _LABEL)
            if key is None:
                return None
            found = self._ciphers[version] = aead.cipher(key)
        return found

    def encode(self, scope: str, position: Any) -> str:
        try:
            # After a rotation, a token made with a retired version would not open in a worker
            # started since: follow the database's current version.
            version = self._root_keys.refresh_current()
        except aead.SealError:
            version = self._root_keys.current_version
        cipher = self._cipher(version)
        assert cipher is not None
        head = rootkey.header(version)
        sealed = aead.seal_with(cipher, json.dumps(position).encode(), head + scope.encode())
        return base64.urlsafe_b64encode(head + sealed).decode()

    def decode(self, scope: str, token: str) -> Any:
        try:
            raw = base64.urlsafe_b64decode(token.encode())
            version = rootkey.version_of(raw)
            head = raw[: rootkey.HEADER_BYTES]
            cipher = self._cipher(version)
            if cipher is None or version == rootkey.LEGACY_VERSION:
                raise invalid_token()
            sealed = raw[rootkey.HEADER_BYTES :]
            return json.loads(aead.open_with(cipher, sealed, head + scope.encode()))
        except (aead.SealError, binascii.Error, ValueError, UnicodeError) as exc:
            raise invalid_token() from exc
