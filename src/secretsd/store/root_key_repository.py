"""Root key rows, the protector state, and the columns that hold blobs sealed by a root key.

A sealed blob starts with a 9-byte header naming its root key version (`crypto/rootkey.py`);
`substr(column, 1, 9)` reads it in SQL on both SQLite (BLOB) and PostgreSQL (bytea), so
rotation finds what still needs re-wrapping without reading every blob.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from secretsd.store.database import Tx

STATE_ID = 1
_HEADER_SQL_LEN = 9


@dataclass(frozen=True, slots=True)
class RootKeyState:
    protector: str
    protector_params: str
    current_version: int
    legacy_active: bool
    changed_ms: int


@dataclass(frozen=True, slots=True)
class SealedColumn:
    """One column of root-key-sealed blobs: `select` yields key columns, then context columns
    (what the blob's additional data is made from), then the blob, in key order."""

    name: str
    table: str
    column: str
    keys: tuple[str, ...]
    select: str
    context_columns: int


SEALED_COLUMNS: tuple[SealedColumn, ...] = (
    SealedColumn(
        "kms key material (version 1)",
        "kms_keys",
        "material_sealed",
        ("key_id",),
        "SELECT key_id, arn, material_sealed AS sealed FROM kms_keys",
        1,
    ),
    SealedColumn(
        "kms key material (later versions)",
        "kms_key_materials",
        "material_sealed",
        ("key_id", "version"),
        "SELECT m.key_id, m.version, k.arn, m.material_sealed AS sealed"
        " FROM kms_key_materials m JOIN kms_keys k ON k.key_id = m.key_id",
        1,
    ),
    SealedColumn(
        "access key secrets",
        "access_keys",
        "secret_sealed",
        ("access_key_id",),
        "SELECT access_key_id, secret_sealed AS sealed FROM access_keys",
        0,
    ),
    SealedColumn(
        "sts session secrets",
        "sts_sessions",
        "secret_sealed",
        ("access_key_id",),
        "SELECT access_key_id, secret_sealed AS sealed FROM sts_sessions",
        0,
    ),
    SealedColumn(
        "root key check value",
        "meta",
        "value",
        ("name",),
        "SELECT name, value AS sealed FROM meta WHERE name = 'root_key_check'",
        0,
    ),
)


@dataclass(frozen=True, slots=True)
class SealedRow:
    keys: tuple[Any, ...]
    context: tuple[Any, ...]
    sealed: bytes


def _qualified(column: SealedColumn, name: str) -> str:
    # The joined select names the first table `m`.
    return f"m.{name}" if " m JOIN " in column.select else name


class RootKeyRepository:
    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    # -- state ------------------------------------------------------------------------------------
    def state(self) -> RootKeyState | None:
        row = self.tx.one(
            "SELECT protector, protector_params, current_version, legacy_active, changed_ms"
            " FROM root_key_state WHERE id = ?",
            (STATE_ID,),
        )
        if row is None:
            return None
        return RootKeyState(
            row["protector"],
            row["protector_params"],
            int(row["current_version"]),
            bool(row["legacy_active"]),
            int(row["changed_ms"]),
        )

    def current_version(self) -> int | None:
        row = self.tx.one("SELECT current_version FROM root_key_state WHERE id = ?", (STATE_ID,))
        return None if row is None else int(row["current_version"])

    def insert_state_if_absent(self, state: RootKeyState) -> None:
        self.tx.execute(
            "INSERT INTO root_key_state (id, protector, protector_params, current_version,"
            " legacy_active, changed_ms) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            (
                STATE_ID,
                state.protector,
                state.protector_params,
                state.current_version,
                int(state.legacy_active),
                state.changed_ms,
            ),
        )

    def set_current(self, version: int, now_ms: int) -> None:
        self.tx.execute(
            "UPDATE root_key_state SET current_version = ?, changed_ms = ? WHERE id = ?",
            (version, now_ms, STATE_ID),
        )

    def set_legacy_retired(self, now_ms: int) -> None:
        self.tx.execute(
            "UPDATE root_key_state SET legacy_active = 0, changed_ms = ? WHERE id = ?",
            (now_ms, STATE_ID),
        )

    def set_protector(self, kind: str, params: str, now_ms: int) -> None:
        self.tx.execute(
            "UPDATE root_key_state SET protector = ?, protector_params = ?, changed_ms = ?"
            " WHERE id = ?",
            (kind, params, now_ms, STATE_ID),
        )

    # -- root keys --------------------------------------------------------------------------------
    def wrapped_keys(self) -> dict[int, bytes]:
        rows = self.tx.all("SELECT version, wrapped FROM root_keys ORDER BY version")
        return {int(r["version"]): bytes(r["wrapped"]) for r in rows}

    def wrapped_key(self, version: int) -> bytes | None:
        row = self.tx.one("SELECT wrapped FROM root_keys WHERE version = ?", (version,))
        return None if row is None else bytes(row["wrapped"])

    def insert_key_if_absent(self, version: int, wrapped: bytes, now_ms: int) -> None:
        self.tx.execute(
            "INSERT INTO root_keys (version, wrapped, created_ms) VALUES (?, ?, ?)"
            " ON CONFLICT DO NOTHING",
            (version, wrapped, now_ms),
        )

    def update_wrapped(self, version: int, wrapped: bytes) -> None:
        self.tx.execute("UPDATE root_keys SET wrapped = ? WHERE version = ?", (wrapped, version))

    def delete_key(self, version: int) -> None:
        self.tx.execute("DELETE FROM root_keys WHERE version = ?", (version,))

    # -- sealed blobs -----------------------------------------------------------------------------
    def stale_rows(
        self, column: SealedColumn, current_header: bytes, after: tuple[Any, ...] | None, limit: int
    ) -> list[SealedRow]:
        """Blobs of `column` not sealed by the current version, in key order after `after`."""
        keys = ", ".join(_qualified(column, k) for k in column.keys)
        joiner = " AND " if " WHERE " in column.select else " WHERE "
        sql = f"{column.select}{joiner}substr({_qualified(column, column.column)}, 1, ?) <> ?"
        params: list[Any] = [_HEADER_SQL_LEN, current_header]
        if after is not None:
            marks = ", ".join("?" for _ in after)
            sql += f" AND ({keys}) > ({marks})"
            params += list(after)
        sql += f" ORDER BY {keys} LIMIT ?"
        params.append(limit)
        out = []
        n_keys = len(column.keys)
        for row in self.tx.all(sql, params):
            values = tuple(row.values()) if isinstance(row, dict) else tuple(row)
            out.append(
                SealedRow(
                    values[:n_keys],
                    values[n_keys : n_keys + column.context_columns],
                    bytes(values[-1]),
                )
            )
        return out

    def replace_sealed(
        self, column: SealedColumn, keys: tuple[Any, ...], old: bytes, new: bytes
    ) -> bool:
        """Compare-and-set: a row changed or deleted meanwhile is left alone."""
        where = " AND ".join(f"{k} = ?" for k in column.keys)
        return (
            self.tx.rowcount(
                f"UPDATE {column.table} SET {column.column} = ? WHERE {where}"
                f" AND {column.column} = ?",
                (new, *keys, old),
            )
            == 1
        )

    def count_with_header(self, column: SealedColumn, header: bytes, equal: bool) -> int:
        op = "=" if equal else "<>"
        where = f"substr({column.column}, 1, ?) {op} ?"
        if column.table == "meta":
            where += " AND name = 'root_key_check'"
        row = self.tx.one(
            f"SELECT COUNT(*) AS n FROM {column.table} WHERE {where}",
            (_HEADER_SQL_LEN, header),
        )
        return 0 if row is None else int(row["n"])

    def count_all(self, column: SealedColumn) -> int:
        where = " WHERE name = 'root_key_check'" if column.table == "meta" else ""
        row = self.tx.one(f"SELECT COUNT(*) AS n FROM {column.table}{where}")
        return 0 if row is None else int(row["n"])
