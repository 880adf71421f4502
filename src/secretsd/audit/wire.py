"""What a worker and its node's audit writer process say to each other over their Unix socket.

Frames are a 4-byte big-endian length and a body. A worker sends batches of records in their
stored form (`compact_line`: redacted in the worker, so no secret value ever leaves it) after a
JSON header with each record's chain and time, and the digest signing key when it first
connects or its root key version changes; the writer answers each batch with an ack once the
batch is committed, carrying the record counts it committed or failed since its previous ack
(for the worker's /metrics). Pure functions: the socket handling is in `remote.py` (worker) and
`writer_process.py` (writer).
"""

from __future__ import annotations

import asyncio
import base64
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from secretsd.audit.record import AuditRecord, scrubbed

# A batch of a few thousand records is a few megabytes; anything far beyond is not a frame.
MAX_FRAME = 64 * 1024 * 1024
_LENGTH = struct.Struct(">I")
SEED_BYTES = 32  # an Ed25519 private key


class WireError(ValueError):
    """A frame that is not one this protocol sends: the connection is dropped."""


@dataclass(frozen=True, slots=True)
class Batch:
    batch_id: int
    records: list[AuditRecord]
    # (root key version, Ed25519 seed) when the sender's signing key is new to this connection.
    signer: tuple[int, bytes] | None = None


@dataclass(frozen=True, slots=True)
class Ack:
    batch_id: int
    ok: bool
    written: int = 0
    failed: int = 0


def frame(payload: bytes) -> bytes:
    if len(payload) > MAX_FRAME:
        raise WireError(f"frame of {len(payload)} bytes is over {MAX_FRAME}")
    return _LENGTH.pack(len(payload)) + payload


async def read_frame(reader: asyncio.StreamReader) -> bytes:
    """The next frame's body; IncompleteReadError at the end of the stream."""
    (length,) = _LENGTH.unpack(await reader.readexactly(_LENGTH.size))
    if length > MAX_FRAME:
        raise WireError(f"frame of {length} bytes is over {MAX_FRAME}")
    return await reader.readexactly(length)


def encode_batch(
    batch_id: int, records: Sequence[AuditRecord], signer: tuple[int, bytes] | None = None
) -> bytes:
    """A header line (JSON: the batch id, each record's chain and time, the key) and the
    records' stored lines, one per line (JSON never holds a raw newline)."""
    index: dict[tuple[str, str], int] = {}
    chains: list[tuple[str, str]] = []
    meta: list[tuple[int, int]] = []
    for record in records:
        chain = (record.account_id, record.region)
        at = index.get(chain)
        if at is None:
            at = index[chain] = len(chains)
            chains.append(chain)
        meta.append((at, record.time_ms))
    header: dict[str, Any] = {"id": batch_id, "chains": chains, "meta": meta}
    if signer is not None:
        header["signer"] = [signer[0], base64.b64encode(signer[1]).decode("ascii")]
    try:
        head = orjson.dumps(header)
    except orjson.JSONEncodeError:
        head = orjson.dumps(scrubbed(header))  # an account or region that is not UTF-8
    return b"\n".join([head, *(record.line for record in records)])


def decode_batch(payload: bytes) -> Batch:
    """The records as the worker made them (their event ids stay inside their lines)."""
    head, _, rest = payload.partition(b"\n")
    try:
        header = orjson.loads(head)
        batch_id = header["id"]
        chains = [(str(account), str(region)) for account, region in header["chains"]]
        meta = header["meta"]
        if not isinstance(batch_id, int) or not isinstance(meta, list):
            raise WireError("batch without an id or records")
        lines = rest.split(b"\n") if meta else []
        if len(lines) != len(meta):
            raise WireError(f"{len(meta)} records announced, {len(lines)} sent")
        records = []
        for (at, time_ms), line in zip(meta, lines, strict=True):
            if not isinstance(time_ms, int) or not isinstance(at, int) or at < 0:
                raise WireError("a record's chain or time is not a number")
            account, region = chains[at]
            records.append(AuditRecord(account, region, "", time_ms, line))
        signer = None
        if "signer" in header:
            version, text = header["signer"]
            seed = base64.b64decode(text, validate=True)
            if not isinstance(version, int) or len(seed) != SEED_BYTES:
                raise WireError("not a signing key")
            signer = (version, seed)
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, ValueError) as exc:
        if isinstance(exc, WireError):
            raise
        raise WireError(f"not a batch: {type(exc).__name__}") from None
    return Batch(batch_id, records, signer)


def encode_ack(ack: Ack) -> bytes:
    return orjson.dumps([ack.batch_id, ack.ok, ack.written, ack.failed])


def decode_ack(payload: bytes) -> Ack:
    try:
        batch_id, ok, written, failed = orjson.loads(payload)
    except (orjson.JSONDecodeError, TypeError, ValueError):
        raise WireError("not an ack") from None
    if not (isinstance(batch_id, int) and isinstance(ok, bool)):
        raise WireError("not an ack")
    return Ack(batch_id, ok, int(written), int(failed))
