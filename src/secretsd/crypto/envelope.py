"""The stored form of a secret version: a versioned, self-describing envelope.

    v1 = 0x01 | u16 len | key ARN | u16 len | wrapped data key | sealed value

The data key is fresh for every version and wrapped by the KMS-style key; both the wrapped key
and the value are bound to the encryption context (secret ARN and version id), so an envelope
copied onto another secret or version fails to open.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

FORMAT_V1 = 1


class EnvelopeFormatError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Envelope:
    key_arn: str
    wrapped_key: bytes
    sealed_value: bytes

    def to_bytes(self) -> bytes:
        arn = self.key_arn.encode()
        return (
            bytes([FORMAT_V1])
            + struct.pack(">H", len(arn))
            + arn
            + struct.pack(">H", len(self.wrapped_key))
            + self.wrapped_key
            + self.sealed_value
        )

    @classmethod
    def from_bytes(cls, blob: bytes) -> Envelope:
        try:
            if blob[0] != FORMAT_V1:
                raise EnvelopeFormatError(f"unknown envelope format {blob[0]}")
            (arn_len,) = struct.unpack_from(">H", blob, 1)
            pos = 3 + arn_len
            key_arn = blob[3:pos].decode()
            (wrapped_len,) = struct.unpack_from(">H", blob, pos)
            pos += 2
            wrapped = blob[pos : pos + wrapped_len]
            if len(wrapped) != wrapped_len:
                raise EnvelopeFormatError("truncated envelope")
            return cls(key_arn, wrapped, blob[pos + wrapped_len :])
        except (IndexError, struct.error, UnicodeDecodeError) as exc:
            raise EnvelopeFormatError("malformed envelope") from exc
