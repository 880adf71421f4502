"""Opaque, tamper-proof NextToken values.

A token is the JSON position sealed with AES-GCM under a key derived from the root key, bound to
the operation, account and region: a token cannot be read, altered, or replayed against another
account's data.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from typing import Any

from secretsd.crypto import aead
from secretsd.errors import ServiceError


def invalid_token() -> ServiceError:
    return ServiceError("InvalidNextTokenException", "The NextToken value is invalid.")


class TokenCodec:
    def __init__(self, root_key: bytes) -> None:
        self._key = hmac.digest(root_key, b"secretsd/pagination-token/v1", hashlib.sha256)

    def encode(self, scope: str, position: Any) -> str:
        sealed = aead.seal(self._key, json.dumps(position).encode(), scope.encode())
        return base64.urlsafe_b64encode(sealed).decode()

    def decode(self, scope: str, token: str) -> Any:
        try:
            sealed = base64.urlsafe_b64decode(token.encode())
            return json.loads(aead.open_sealed(self._key, sealed, scope.encode()))
        except (aead.SealError, binascii.Error, ValueError, UnicodeError) as exc:
            raise invalid_token() from exc
