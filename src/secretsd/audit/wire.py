"""What a worker and its node's audit writer process say to each other over their Unix socket.

Frames are a 4-byte big-endian length and a JSON body (orjson). A worker sends batches of call
summaries (`CallSummary`, already redacted: no secret value ever leaves the worker), each caller's
userIdentity once per batch, and the digest signing key when it first connects or its root key
version changes; the writer answers each batch with an ack once the batch is committed, carrying
the record counts it committed or failed since its previous ack (for the worker's /metrics).
Pure functions: the socket handling is in `remote.py` (worker) and `service.py` (writer).
"""

from __future__ import annotations

import asyncio
import base64
import struct
from dataclasses import dataclass
from typing import Any

import orjson

from secretsd.audit.record import CallSummary, scrubbed

# A batch of a few thousand records is a few megabytes; anything far beyond is not a frame.
MAX_FRAME = 64 * 1024 * 1024
_LENGTH = struct.Struct(">I")
SEED_BYTES = 32  # an Ed25519 private key
_FIELDS = len(CallSummary._fields)


class WireError(ValueError):
    """A frame that is not one this protocol sends: the connection is dropped."""


@dataclass(frozen=True, slots=True)
class Batch:
    batch_id: int
    calls: list[CallSummary]
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
    batch_id: int, calls: list[CallSummary], signer: tuple[int, bytes] | None = None
) -> bytes:
    # Callers share userIdentity dicts (RecordCache.who): each is sent once per batch.
    index: dict[int, int] = {}
    whos: list[dict[str, Any]] = []
    rows: list[list[Any]] = []
    for call in calls:
        who = call.who
        at = index.get(id(who))
        if at is None:
            at = index[id(who)] = len(whos)
            whos.append(who)
        row = list(call)
        row[1] = at
        rows.append(row)
    body: dict[str, Any] = {"id": batch_id, "who": whos, "calls": rows}
    if signer is not None:
        body["signer"] = [signer[0], base64.b64encode(signer[1]).decode("ascii")]
    try:
        return orjson.dumps(body)
    except orjson.JSONEncodeError:
        # A parameter with a lone surrogate is not UTF-8: sent with "?" in its place, as
        # make_record would store it.
        return orjson.dumps(scrubbed(body))


def decode_batch(payload: bytes) -> Batch:
    try:
        body = orjson.loads(payload)
        batch_id = body["id"]
        whos = body["who"]
        rows = body["calls"]
        if not isinstance(batch_id, int) or not isinstance(whos, list):
            raise WireError("batch without an id or identities")
        calls = []
        for row in rows:
            if not isinstance(row, list) or len(row) != _FIELDS:
                raise WireError("a call summary of the wrong shape")
            row[1] = whos[row[1]]
            calls.append(CallSummary(*row))
        signer = None
        if "signer" in body:
            version, text = body["signer"]
            seed = base64.b64decode(text, validate=True)
            if not isinstance(version, int) or len(seed) != SEED_BYTES:
                raise WireError("not a signing key")
            signer = (version, seed)
    except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, ValueError) as exc:
        if isinstance(exc, WireError):
            raise
        raise WireError(f"not a batch: {type(exc).__name__}") from None
    return Batch(batch_id, calls, signer)


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
