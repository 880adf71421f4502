"""The plaintext form of a snapshot: JSON lines, the same whichever backend wrote or reads them.

    {"format": "secretsd-snapshot", "version": 2, "created_ms": ..., "dialect": ...,
     "migrations": [...],
     "tables": [{"name": ..., "columns": [[name, kind], ...], "rows": N, "part": "main"}, ...]}
    [value, ...]          one line per row, tables in the header's order, N lines each
    {"end": total rows}

Bytes values are base64 text; every other kind is its JSON counterpart. Backups seal this stream
(`crypto/stream.py`); it is never written to disk as it is.

Version 2 added each table's "part": "main" (the database) or "audit" (the audit trail's own
SQLite file, after the main part's tables; a table name may then appear once in each part).
Version 1 (no "part": every table is the main database's) is still read.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import orjson

from secretsd.store.snapshot import (
    KINDS,
    MAIN,
    PARTS,
    Manifest,
    Snapshot,
    SnapshotError,
    TableShape,
    check_value,
)

FORMAT = "secretsd-snapshot"
VERSION = 2
READABLE_VERSIONS = (1, 2)
_BATCH = 500
# Rows can be large (a Lambda function's code is up to 50 MB): batches are bounded in bytes too.
_BATCH_BYTES = 4 << 20


def _encode_value(kind: str, value: Any) -> Any:
    if kind == "bytes" and value is not None:
        return base64.b64encode(value).decode()
    return value


def _decode_value(kind: str, value: Any, where: str) -> Any:
    if kind == "bytes" and isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except binascii.Error as exc:
            raise SnapshotError(f"{where}: bad bytes value") from exc
    return check_value(kind, value, where)


def encode(snapshot: Snapshot, created_ms: int, progress: Callable[[int], None]) -> Iterator[bytes]:
    """The snapshot as JSON lines, a few hundred rows per yielded piece; `progress(n)` after
    each piece with the rows it held."""
    manifest = snapshot.manifest
    yield (
        orjson.dumps(
            {
                "format": FORMAT,
                "version": VERSION,
                "created_ms": created_ms,
                "dialect": manifest.dialect,
                "migrations": list(manifest.migrations),
                "tables": [
                    {
                        "name": t.name,
                        "columns": [list(c) for c in t.columns],
                        "rows": t.rows,
                        "part": t.part,
                    }
                    for t in manifest.tables
                ],
            }
        )
        + b"\n"
    )
    total = 0
    for table in manifest.tables:
        kinds = [kind for _, kind in table.columns]
        piece: list[bytes] = []
        size = written = 0
        for row in snapshot.rows(table):
            values = [_encode_value(k, v) for k, v in zip(kinds, row, strict=True)]
            piece.append(orjson.dumps(values))
            size += len(piece[-1])
            if len(piece) == _BATCH or size >= _BATCH_BYTES:
                written += len(piece)
                yield b"\n".join(piece) + b"\n"
                progress(len(piece))
                piece, size = [], 0
        written += len(piece)
        if piece:
            yield b"\n".join(piece) + b"\n"
            progress(len(piece))
        if written != table.rows:
            # Cannot happen inside one read transaction; never write a backup that lies.
            raise SnapshotError(f"table {table.name} changed while it was read")
        total += written
    yield orjson.dumps({"end": total}) + b"\n"


def _lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    # A line may span many chunks: collected in a bytearray, so a long one costs linear time.
    pending = bytearray()
    for chunk in chunks:
        parts = chunk.split(b"\n")
        pending += parts[0]
        if len(parts) > 1:
            yield bytes(pending)
            yield from parts[1:-1]
            pending = bytearray(parts[-1])
    if pending:
        raise SnapshotError("the snapshot does not end with a complete line")


def _parse_manifest(line: bytes) -> tuple[Manifest, int]:
    try:
        head = orjson.loads(line)
        if head.get("format") != FORMAT:
            raise SnapshotError("not a secretsd snapshot")
        version = head.get("version")
        if version not in READABLE_VERSIONS:
            raise SnapshotError(f"unsupported snapshot version {version!r}")
        tables = tuple(
            TableShape(
                str(t["name"]),
                tuple((str(name), str(kind)) for name, kind in t["columns"]),
                int(t["rows"]),
                str(t["part"]) if version >= 2 else MAIN,
            )
            for t in head["tables"]
        )
        manifest = Manifest(str(head["dialect"]), tuple(str(m) for m in head["migrations"]), tables)
        created_ms = int(head["created_ms"])
    except (orjson.JSONDecodeError, AttributeError, KeyError, TypeError, ValueError) as exc:
        raise SnapshotError("the snapshot header is malformed") from exc
    for table in tables:
        if any(kind not in KINDS for _, kind in table.columns):
            raise SnapshotError(f"table {table.name}: unknown column kind")
        if table.part not in PARTS:
            raise SnapshotError(f"table {table.name}: unknown part {table.part!r}")
    if len({t.key for t in tables}) != len(tables):
        raise SnapshotError("the snapshot header names a table twice")
    return manifest, created_ms


class SnapshotReader:
    """Reads what `encode` wrote: the manifest at once, then the rows in batches."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._lines = _lines(chunks)
        first = next(self._lines, None)
        if first is None:
            raise SnapshotError("the snapshot is empty")
        self.manifest, self.created_ms = _parse_manifest(first)

    def batches(self) -> Iterator[tuple[TableShape, list[tuple[Any, ...]]]]:
        """Every table's rows, a batch at a time; then checks the end marker and that nothing
        follows it."""
        for table in self.manifest.tables:
            kinds = [kind for _, kind in table.columns]
            where = f"table {table.name}"
            batch: list[tuple[Any, ...]] = []
            size = 0
            for _ in range(table.rows):
                line = next(self._lines, None)
                if line is None:
                    raise SnapshotError(f"{where}: rows missing")
                try:
                    values = orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    raise SnapshotError(f"{where}: malformed row") from exc
                if not isinstance(values, list) or len(values) != len(kinds):
                    raise SnapshotError(f"{where}: malformed row")
                batch.append(
                    tuple(_decode_value(k, v, where) for k, v in zip(kinds, values, strict=True))
                )
                size += len(line)
                if len(batch) == _BATCH or size >= _BATCH_BYTES:
                    yield table, batch
                    batch, size = [], 0
            if batch:
                yield table, batch
        end = next(self._lines, None)
        try:
            marker = orjson.loads(end) if end is not None else None
        except orjson.JSONDecodeError:
            marker = None
        if not isinstance(marker, dict) or marker.get("end") != self.manifest.total_rows:
            raise SnapshotError("the snapshot's end marker is missing or wrong")
        if next(self._lines, None) is not None:
            raise SnapshotError("the snapshot has rows after its end marker")
