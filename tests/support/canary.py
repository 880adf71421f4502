"""Helpers for the canary test: recover every data key from a server's database (with its root key,
as an attacker holding both would), and scan files for many byte strings at once.

Nothing here is reachable from the product: the test unwraps keys with the same public functions
the server uses (`secretsd.crypto`, `secretsd.kms.keyring.material_aad`), unwrapping the root key
versions with the key file and reading the sealed material straight from the database.
"""

from __future__ import annotations

import base64
import os
import sqlite3
import sys
from array import array
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from secretsd.crypto import aead
from secretsd.crypto.envelope import Envelope
from secretsd.crypto.rootkey import RootKeyring
from secretsd.kms.keyring import material_aad
from secretsd.kms.root_keys import open_keyring
from secretsd.store.database import Database

CHUNK = 8  # needles are indexed by their 8-byte substrings at offsets 0..7
MIN_NEEDLE = 2 * CHUNK - 1  # so that every occurrence covers one 8-aligned chunk


def query(database_url: str | None, data_dir: Path, sql: str) -> list[tuple[Any, ...]]:
    """Rows of a read-only query against the server's database (SQLite default or PostgreSQL)."""
    if database_url is None or database_url.startswith("sqlite"):
        path = data_dir / "secretsd.db" if database_url is None else Path(database_url[10:])
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as conn:
            return list(conn.execute(sql))
    with psycopg.connect(database_url) as pg:
        return list(pg.execute(sql))  # type: ignore[arg-type]


def key_materials(database_url: str | None, data_dir: Path) -> dict[str, list[bytes]]:
    """Every KMS key's unsealed material versions, by key ARN."""
    root = root_keys(database_url, data_dir)
    out: dict[str, list[bytes]] = {}
    arns: dict[str, str] = {}
    for key_id, arn, sealed in query(
        database_url, data_dir, "SELECT key_id, arn, material_sealed FROM kms_keys"
    ):
        arns[key_id] = arn
        out.setdefault(arn, []).append(root.open(bytes(sealed), material_aad(arn, 1)))
    for key_id, version, sealed in query(
        database_url, data_dir, "SELECT key_id, version, material_sealed FROM kms_key_materials"
    ):
        arn = arns[key_id]
        out[arn].append(root.open(bytes(sealed), material_aad(arn, int(version))))
    return out


def root_keys(database_url: str | None, data_dir: Path) -> RootKeyring:
    """Every root key version in the database, unwrapped with the data dir's key file."""
    db = Database(database_url or f"sqlite:///{(data_dir / 'secretsd.db').resolve()}")
    try:
        ring, _ = open_keyring(db, data_dir / "root.key")
    finally:
        db.close()
    return ring


def data_keys(
    database_url: str | None, data_dir: Path, materials: dict[str, list[bytes]]
) -> set[bytes]:
    """The unwrapped data key of every stored secret version."""
    found: set[bytes] = set()
    rows = query(
        database_url,
        data_dir,
        "SELECT secret_arn, version_id, envelope FROM secret_versions WHERE envelope IS NOT NULL",
    )
    for arn, version_id, blob in rows:
        env = Envelope.from_bytes(bytes(blob))
        aad = aead.canonical_context({"SecretARN": arn, "SecretVersionId": version_id})
        found.add(_unwrap(materials[env.key_arn], env.wrapped_key, aad))
    return found


def _unwrap(materials: list[bytes], wrapped: bytes, aad: bytes) -> bytes:
    for material in materials:
        try:
            return aead.open_sealed(material, wrapped, aad)
        except aead.SealError:
            continue
    raise AssertionError("a stored data key opens with none of its KMS key's materials")


def encodings(raw: bytes) -> Iterator[tuple[str, bytes]]:
    """The forms a leaked byte string would most likely take on disk."""
    yield "raw", raw
    yield "base64", base64.b64encode(raw)
    yield "hex", raw.hex().encode()


@dataclass(frozen=True)
class Hit:
    path: Path
    offset: int
    label: str


@dataclass
class Scanner:
    """Finds many needles (each >= 15 bytes) in one pass per file: every occurrence of a needle
    covers an 8-aligned 8-byte chunk of the file at one of its offsets 0..7, so only the file's
    aligned chunks are looked up (in C, via set intersection) and candidates verified."""

    _needles: dict[bytes, str] = field(default_factory=dict)
    _index: dict[int, list[tuple[bytes, int]]] = field(default_factory=dict)
    bytes_scanned: int = 0
    files_scanned: int = 0

    def add(self, needle: bytes, label: str) -> None:
        assert len(needle) >= MIN_NEEDLE, label
        self._needles[needle] = label
        for off in range(CHUNK):
            chunk = int.from_bytes(needle[off : off + CHUNK], sys.byteorder)
            self._index.setdefault(chunk, []).append((needle, off))

    def __len__(self) -> int:
        return len(self._needles)

    def scan_bytes(self, data: bytes, path: Path) -> list[Hit]:
        words = array("Q")
        words.frombytes(data[: len(data) - len(data) % CHUNK])
        hits: list[Hit] = []
        for chunk in self._index.keys() & words:
            raw = chunk.to_bytes(CHUNK, sys.byteorder)
            pos = data.find(raw)
            while pos >= 0:
                if pos % CHUNK == 0:
                    for needle, off in self._index[chunk]:
                        start = pos - off
                        if start >= 0 and data[start : start + len(needle)] == needle:
                            hits.append(Hit(path, start, self._needles[needle]))
                pos = data.find(raw, pos + 1)
        return hits

    def scan_files(self, paths: Iterable[Path]) -> list[Hit]:
        hits: list[Hit] = []
        for path in paths:
            data = path.read_bytes()
            self.files_scanned += 1
            self.bytes_scanned += len(data)
            hits += self.scan_bytes(data, path)
        return hits


def files_under(root: Path, skip: Iterable[Path] = ()) -> Iterator[Path]:
    skipped = {p.resolve() for p in skip}
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames if (here / d).resolve() not in skipped]
        for name in filenames:
            path = here / name
            if path.is_file() and not path.is_symlink():
                yield path
