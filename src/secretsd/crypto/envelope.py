"""The stored form of a secret version: a versioned, self-describing envelope.

    v1 = 0x01 | u16 len | key ARN | u16 len | wrapped data key | sealed value
    v2 = 0x02 | u16 len | key ARN | u32 material version | u16 len | wrapped data key | sealed value

The data key is fresh for every version and wrapped by the KMS-style key; both the wrapped key
and the value are bound to the encryption context (secret ARN and version id), so an envelope
copied onto another secret or version fails to open. v2 names the key material version that
wrapped the data key, so secrets written after a key rotation use the new material while older
envelopes keep opening with theirs; v1 (written before rotation existed) always means version 1.
A tampered version number only selects other material, which then fails to unwrap.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

FORMAT_V1 = 1
FORMAT_V2 = 2


class EnvelopeFormatError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Envelope:
    key_arn: str
    wrapped_key: bytes
    sealed_value: bytes
    material_version: int = 1

    def to_bytes(self) -> bytes:
        arn = self.key_arn.encode()
        return (
            bytes([FORMAT_V2])
            + struct.pack(">H", len(arn))
            + arn
            + struct.pack(">IH", self.material_version, len(self.wrapped_key))
            + self.wrapped_key
            + self.sealed_value
        )

    @classmethod
    def from_bytes(cls, blob: bytes) -> Envelope:
        try:
            form = blob[0]
            if form not in (FORMAT_V1, FORMAT_V2):
                raise EnvelopeFormatError(f"unknown envelope format {form}")
            (arn_len,) = struct.unpack_from(">H", blob, 1)
            pos = 3 + arn_len
            key_arn = blob[3:pos].decode()
            material_version = 1
            if form == FORMAT_V2:
                (material_version,) = struct.unpack_from(">I", blob, pos)
                pos += 4
            (wrapped_len,) = struct.unpack_from(">H", blob, pos)
            pos += 2
            wrapped = blob[pos : pos + wrapped_len]
            if len(wrapped) != wrapped_len:
                raise EnvelopeFormatError("truncated envelope")
            return cls(key_arn, wrapped, blob[pos + wrapped_len :], material_version)
        except (IndexError, struct.error, UnicodeDecodeError) as exc:
            raise EnvelopeFormatError("malformed envelope") from exc
