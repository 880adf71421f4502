"""Intent-named queries for KMS keys, aliases and key material versions."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from secretsd.store.database import Row, Tx

_COLUMNS = (
    "key_id, arn, account_id, region, manager, description, key_state, material_sealed,"
    " created_ms, material_version, deletion_ms, policy, rotation_period_days,"
    " next_rotation_ms, tags_json"
)


@dataclass(frozen=True, slots=True)
class KmsKey:
    key_id: str
    arn: str
    account_id: str
    region: str
    manager: str
    description: str
    key_state: str
    material_sealed: bytes
    created_ms: int
    material_version: int
    deletion_ms: int | None
    policy: str | None
    rotation_period_days: int | None
    next_rotation_ms: int | None
    tags: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class AliasRecord:
    alias_name: str
    key_id: str
    created_ms: int
    updated_ms: int | None


def _key(row: Row) -> KmsKey:
    tags = json.loads(row["tags_json"]) if row["tags_json"] else []
    return KmsKey(
        key_id=row["key_id"],
        arn=row["arn"],
        account_id=row["account_id"],
        region=row["region"],
        manager=row["manager"],
        description=row["description"],
        key_state=row["key_state"],
        material_sealed=bytes(row["material_sealed"]),
        created_ms=row["created_ms"],
        material_version=row["material_version"],
        deletion_ms=row["deletion_ms"],
        policy=row["policy"],
        rotation_period_days=row["rotation_period_days"],
        next_rotation_ms=row["next_rotation_ms"],
        tags=tuple((k, v) for k, v in tags),
    )


class KmsRepository:
    def __init__(self, tx: Tx) -> None:
        self.tx = tx

    def key(self, account_id: str, region: str, key_id: str) -> KmsKey | None:
        row = self.tx.one(
            f"SELECT {_COLUMNS} FROM kms_keys WHERE key_id = ? AND account_id = ? AND region = ?",
            (key_id, account_id, region),
        )
        return None if row is None else _key(row)

    def key_by_alias(self, account_id: str, region: str, alias_name: str) -> KmsKey | None:
        row = self.tx.one(
            "SELECT key_id FROM kms_aliases WHERE account_id = ? AND region = ? AND alias_name = ?",
            (account_id, region, alias_name),
        )
        return None if row is None else self.key(account_id, region, row["key_id"])

    def keys(self, account_id: str, region: str, after: str, limit: int) -> list[KmsKey]:
        rows = self.tx.all(
            f"SELECT {_COLUMNS} FROM kms_keys WHERE account_id = ? AND region = ? AND key_id > ?"
            " ORDER BY key_id LIMIT ?",
            (account_id, region, after, limit),
        )
        return [_key(r) for r in rows]

    def insert_key(self, key: KmsKey) -> None:
        self.tx.execute(
            f"INSERT INTO kms_keys ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                key.key_id,
                key.arn,
                key.account_id,
                key.region,
                key.manager,
                key.description,
                key.key_state,
                key.material_sealed,
                key.created_ms,
                key.material_version,
                key.deletion_ms,
                key.policy,
                key.rotation_period_days,
                key.next_rotation_ms,
                json.dumps([list(t) for t in key.tags]) if key.tags else None,
            ),
        )

    def update_key(self, key_id: str, **changes: Any) -> None:
        if "tags" in changes:
            tags = changes.pop("tags")
            changes["tags_json"] = json.dumps([list(t) for t in tags]) if tags else None
        sets = ", ".join(f"{name} = ?" for name in changes)
        self.tx.execute(f"UPDATE kms_keys SET {sets} WHERE key_id = ?", (*changes.values(), key_id))

    def material(self, key_id: str, version: int) -> bytes | None:
        row = self.tx.one(
            "SELECT material_sealed FROM kms_key_materials WHERE key_id = ? AND version = ?",
            (key_id, version),
        )
        return None if row is None else bytes(row["material_sealed"])

    def insert_material(self, key_id: str, version: int, sealed: bytes, now_ms: int) -> None:
        self.tx.execute(
            "INSERT INTO kms_key_materials (key_id, version, material_sealed, created_ms)"
            " VALUES (?, ?, ?, ?)",
            (key_id, version, sealed, now_ms),
        )

    # -- aliases -----------------------------------------------------------------------------
    def alias(self, account_id: str, region: str, alias_name: str) -> AliasRecord | None:
        row = self.tx.one(
            "SELECT alias_name, key_id, created_ms, updated_ms FROM kms_aliases"
            " WHERE account_id = ? AND region = ? AND alias_name = ?",
            (account_id, region, alias_name),
        )
        return None if row is None else _alias(row)

    def aliases(
        self, account_id: str, region: str, key_id: str | None, after: str, limit: int
    ) -> list[AliasRecord]:
        sql = (
            "SELECT alias_name, key_id, created_ms, updated_ms FROM kms_aliases"
            " WHERE account_id = ? AND region = ? AND alias_name > ?"
        )
        params: list[Any] = [account_id, region, after]
        if key_id is not None:
            sql += " AND key_id = ?"
            params.append(key_id)
        params.append(limit)
        return [_alias(r) for r in self.tx.all(sql + " ORDER BY alias_name LIMIT ?", params)]

    def insert_alias(
        self, account_id: str, region: str, alias_name: str, key_id: str, now_ms: int
    ) -> None:
        self.tx.execute(
            "INSERT INTO kms_aliases (account_id, region, alias_name, key_id, created_ms,"
            " updated_ms) VALUES (?, ?, ?, ?, ?, ?)",
            (account_id, region, alias_name, key_id, now_ms, now_ms),
        )

    def retarget_alias(
        self, account_id: str, region: str, alias_name: str, key_id: str, now_ms: int
    ) -> None:
        self.tx.execute(
            "UPDATE kms_aliases SET key_id = ?, updated_ms = ?"
            " WHERE account_id = ? AND region = ? AND alias_name = ?",
            (key_id, now_ms, account_id, region, alias_name),
        )

    def delete_alias(self, account_id: str, region: str, alias_name: str) -> None:
        self.tx.execute(
            "DELETE FROM kms_aliases WHERE account_id = ? AND region = ? AND alias_name = ?",
            (account_id, region, alias_name),
        )

    # -- deletion ----------------------------------------------------------------------------
    def expired_key_ids(self, now_ms: int, limit: int) -> list[str]:
        rows = self.tx.all(
            "SELECT key_id FROM kms_keys WHERE deletion_ms IS NOT NULL AND deletion_ms <= ?"
            " LIMIT ?",
            (now_ms, limit),
        )
        return [r["key_id"] for r in rows]

    def rotation_due(self, now_ms: int, limit: int) -> list[str]:
        """Enabled keys whose automatic rotation date has come."""
        rows = self.tx.all(
            "SELECT key_id FROM kms_keys WHERE next_rotation_ms IS NOT NULL"
            " AND next_rotation_ms <= ? AND key_state = 'Enabled' LIMIT ?",
            (now_ms, limit),
        )
        return [r["key_id"] for r in rows]

    def key_by_id(self, key_id: str) -> KmsKey | None:
        row = self.tx.one(f"SELECT {_COLUMNS} FROM kms_keys WHERE key_id = ?", (key_id,))
        return None if row is None else _key(row)

    def delete_key(self, key_id: str) -> None:
        # Children first: SQLite only cascades when foreign keys are switched on.
        for sql in (
            "DELETE FROM kms_aliases WHERE key_id = ?",
            "DELETE FROM kms_key_materials WHERE key_id = ?",
            "DELETE FROM kms_keys WHERE key_id = ?",
        ):
            self.tx.execute(sql, (key_id,))


def _alias(row: Row) -> AliasRecord:
    return AliasRecord(row["alias_name"], row["key_id"], row["created_ms"], row["updated_ms"])
