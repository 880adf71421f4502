"""The sealed backup stream and the snapshot lines inside it: round trips, and every change to the
sealed bytes (a flipped bit, a cut, an extension, chunks swapped) is refused."""

from __future__ import annotations

import io
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secretsd.crypto.protectors import Argon2Params
from secretsd.crypto.stream import SealedWriter, StreamError, WrongPassphrase, open_sealed_stream
from secretsd.store.snapshot import KINDS, PARTS, Manifest, SnapshotError, TableShape
from secretsd.store.snapshot_format import SnapshotReader, encode

FAST = Argon2Params(iterations=1, memory_kib=64, lanes=1)
PASSPHRASE = "a passphrase"
# Small chunks so that short inputs still span several of them.
CHUNK = 64


def seal(pieces: list[bytes], chunk: int = CHUNK) -> bytes:
    out = io.BytesIO()
    writer = SealedWriter(out, PASSPHRASE, FAST, chunk_bytes=chunk)
    for piece in pieces:
        writer.write(piece)
    writer.close()
    assert writer.bytes_written == len(out.getvalue())
    return out.getvalue()


def unseal(data: bytes, passphrase: str = PASSPHRASE) -> bytes:
    return b"".join(open_sealed_stream(io.BytesIO(data), passphrase))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=8))
def test_round_trip(pieces: list[bytes]) -> None:
    assert unseal(seal(pieces)) == b"".join(pieces)


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=1, max_size=400), st.data())
def test_any_bit_flipped_is_refused(plaintext: bytes, data: st.DataObject) -> None:
    sealed = bytearray(seal([plaintext]))
    position = data.draw(st.integers(0, len(sealed) - 1))
    sealed[position] ^= 1 << data.draw(st.integers(0, 7))
    with pytest.raises(StreamError):
        unseal(bytes(sealed))


@settings(max_examples=50, deadline=None)
@given(st.binary(max_size=400), st.data())
def test_cut_or_extended_is_refused(plaintext: bytes, data: st.DataObject) -> None:
    sealed = seal([plaintext])
    cut = data.draw(st.integers(0, len(sealed) - 1))
    with pytest.raises(StreamError):
        unseal(sealed[:cut])
    with pytest.raises(StreamError):
        unseal(sealed + data.draw(st.binary(min_size=1, max_size=40)))


def test_chunks_swapped_or_dropped_are_refused() -> None:
    sealed = seal([bytes(range(256))], chunk=64)  # three chunks of 64 bytes, then the final one
    start = 12 + int.from_bytes(sealed[8:12], "big")
    size = 4 + 64 + 16
    chunks = [sealed[start + i * size : start + (i + 1) * size] for i in range(3)]
    final = sealed[start + 3 * size :]
    assert len(final) == size
    head = sealed[:start]
    assert unseal(head + b"".join(chunks) + final) == bytes(range(256))
    for altered in (
        [chunks[1], chunks[0], chunks[2]],
        [chunks[0], chunks[2]],
        [chunks[0], chunks[1], chunks[2], chunks[2]],
    ):
        with pytest.raises(StreamError):
            unseal(head + b"".join(altered) + final)
    with pytest.raises(StreamError):
        unseal(head + b"".join(chunks))  # no final chunk: cut off at a chunk boundary


def test_wrong_passphrase_is_told_apart() -> None:
    with pytest.raises(WrongPassphrase):
        unseal(seal([b"data"]), "another passphrase")


def test_not_a_backup() -> None:
    with pytest.raises(StreamError, match="not a secretsd backup"):
        unseal(b"SQLite format 3\x00" + bytes(100))


VALUES = {
    "text": st.text(max_size=30) | st.none(),
    "int": st.integers(-(2**63), 2**63 - 1) | st.none(),
    "bytes": st.binary(max_size=40) | st.none(),
    # Finite only: snapshot.check_value refuses infinities and NaN (JSON has neither).
    "float": st.floats(allow_nan=False, allow_infinity=False) | st.none(),
    "bool": st.booleans() | st.none(),
}


class _Snapshot:
    def __init__(self, manifest: Manifest, rows: dict[str, list[tuple[object, ...]]]) -> None:
        self.manifest = manifest
        self._rows = rows

    def rows(self, table: TableShape) -> list[tuple[object, ...]]:
        return self._rows[f"{table.part}.{table.name}"]


@st.composite
def snapshots(draw: st.DrawFn) -> _Snapshot:
    tables = []
    rows: dict[str, list[tuple[object, ...]]] = {}
    for n in range(draw(st.integers(0, 4))):
        kinds = draw(st.lists(st.sampled_from(KINDS), min_size=1, max_size=4))
        columns = tuple((f"c{i}", kind) for i, kind in enumerate(kinds))
        table_rows = draw(st.lists(st.tuples(*(VALUES[k] for k in kinds)), max_size=30))
        # A name may be in both parts (the audit tables of a SQLite backup are).
        part = PARTS[n % 2]
        tables.append(TableShape(f"t{n // 2}", columns, len(table_rows), part))
        rows[f"{part}.t{n // 2}"] = table_rows
    return _Snapshot(Manifest("sqlite", ("0001.initial",), tuple(tables)), rows)


@settings(max_examples=60, deadline=None)
@given(snapshots(), st.lists(st.integers(1, 200), max_size=20))
def test_snapshot_lines_round_trip(snapshot: _Snapshot, cuts: list[int]) -> None:
    counted: list[int] = []
    text = b"".join(encode(snapshot, 1234, counted.append))  # type: ignore[arg-type]
    # Chunk boundaries fall anywhere, as the sealed stream's do.
    pieces, at = [], 0
    for cut in cuts:
        pieces.append(text[at : at + cut])
        at += cut
    pieces.append(text[at:])
    reader = SnapshotReader(pieces)
    assert reader.manifest == snapshot.manifest and reader.created_ms == 1234
    got: dict[tuple[str, str], list[tuple[object, ...]]] = {
        t.key: [] for t in snapshot.manifest.tables
    }
    for table, batch in reader.batches():
        got[table.key] += batch
    assert got == {t.key: snapshot.rows(t) for t in snapshot.manifest.tables}
    assert sum(counted) == snapshot.manifest.total_rows


def test_snapshot_lines_refuse_a_missing_row() -> None:
    table = TableShape("t", (("c", "int"),), 2)
    snapshot = _Snapshot(Manifest("sqlite", ("0001.initial",), (table,)), {"main.t": [(1,), (2,)]})
    text = b"".join(encode(snapshot, 0, lambda n: None)).split(b"\n")  # type: ignore[arg-type]
    del text[2]
    with pytest.raises(SnapshotError):
        list(SnapshotReader([b"\n".join(text)]).batches())


def test_a_large_row_goes_through_sealed_and_in_bounded_batches() -> None:
    big = os.urandom(9 << 20)  # a Lambda function's code may be 50 MB
    table = TableShape("code", (("name", "text"), ("zip", "bytes")), 3)
    rows = [("a", big), ("b", b"small"), ("c", big[:100])]
    snapshot = _Snapshot(Manifest("sqlite", ("0001.initial",), (table,)), {"main.code": rows})
    out = io.BytesIO()
    writer = SealedWriter(out, PASSPHRASE, FAST)
    pieces = list(encode(snapshot, 0, lambda n: None))  # type: ignore[arg-type]
    assert len(pieces) == 4  # header, the big row alone, the other two, the end marker
    for piece in pieces:
        writer.write(piece)
    writer.close()
    reader = SnapshotReader(open_sealed_stream(io.BytesIO(out.getvalue()), PASSPHRASE))
    batches = [batch for _, batch in reader.batches()]
    assert [len(b) for b in batches] == [1, 2]
    assert [row for batch in batches for row in batch] == rows
