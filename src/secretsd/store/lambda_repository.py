"""Queries over Lambda's and CloudWatch Logs' tables (migration 0007)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from secretsd.store.database import Row, Tx


@dataclass(frozen=True, slots=True)
class FunctionRecord:
    account_id: str
    region: str
    name: str
    config_json: str
    code_sha256: str
    code_size: int
    policy_json: str | None
    revision_id: str
    last_modified_ms: int


_COLUMNS = (
    "account_id, region, name, config_json, code_sha256, code_size, policy_json, revision_id,"
    " last_modified_ms"
)


def _function(row: Row) -> FunctionRecord:
    return FunctionRecord(
        row["account_id"],
        row["region"],
        row["name"],
        row["config_json"],
        row["code_sha256"],
        int(row["code_size"]),
        row["policy_json"],
        row["revision_id"],
        int(row["last_modified_ms"]),
    )


class FunctionRepository:
    def __init__(self, tx: Tx) -> None:
        self._tx = tx

    def get(self, account_id: str, region: str, name: str) -> FunctionRecord | None:
        row = self._tx.one(
            f"SELECT {_COLUMNS} FROM lambda_functions WHERE account_id = ? AND region = ?"
            " AND name = ?",
            (account_id, region, name),
        )
        return None if row is None else _function(row)

    def code(self, account_id: str, region: str, name: str) -> bytes | None:
        row = self._tx.one(
            "SELECT code_zip FROM lambda_functions WHERE account_id = ? AND region = ? AND name = ?",
            (account_id, region, name),
        )
        return None if row is None else bytes(row["code_zip"])

    def list(self, account_id: str, region: str, after: str, limit: int) -> list[FunctionRecord]:
        rows = self._tx.all(
            f"SELECT {_COLUMNS} FROM lambda_functions WHERE account_id = ? AND region = ?"
            " AND name > ? ORDER BY name LIMIT ?",
            (account_id, region, after, limit),
        )
        return [_function(row) for row in rows]

    def insert(self, record: FunctionRecord, code: bytes) -> None:
        self._tx.execute(
            f"INSERT INTO lambda_functions ({_COLUMNS}, code_zip)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                record.account_id,
                record.region,
                record.name,
                record.config_json,
                record.code_sha256,
                record.code_size,
                record.policy_json,
                record.revision_id,
                record.last_modified_ms,
                code,
            ),
        )

    def update(self, record: FunctionRecord, code: bytes | None = None) -> None:
        self._tx.execute(
            "UPDATE lambda_functions SET config_json = ?, code_sha256 = ?, code_size = ?,"
            " policy_json = ?, revision_id = ?, last_modified_ms = ?"
            " WHERE account_id = ? AND region = ? AND name = ?",
            (
                record.config_json,
                record.code_sha256,
                record.code_size,
                record.policy_json,
                record.revision_id,
                record.last_modified_ms,
                record.account_id,
                record.region,
                record.name,
            ),
        )
        if code is not None:
            self._tx.execute(
                "UPDATE lambda_functions SET code_zip = ?"
                " WHERE account_id = ? AND region = ? AND name = ?",
                (code, record.account_id, record.region, record.name),
            )

    def delete(self, account_id: str, region: str, name: str) -> bool:
        return (
            self._tx.rowcount(
                "DELETE FROM lambda_functions WHERE account_id = ? AND region = ? AND name = ?",
                (account_id, region, name),
            )
            > 0
        )


@dataclass(frozen=True, slots=True)
class LogGroupRecord:
    name: str
    created_ms: int
    stored_bytes: int


@dataclass(frozen=True, slots=True)
class LogStreamRecord:
    group_name: str
    name: str
    created_ms: int
    first_event_ms: int | None
    last_event_ms: int | None
    last_ingestion_ms: int | None
    stored_bytes: int


@dataclass(frozen=True, slots=True)
class LogEventRecord:
    event_id: str
    stream_name: str
    timestamp_ms: int
    ingestion_ms: int
    message: str


def new_event_id(timestamp_ms: int, ingestion_ms: int, sequence: int) -> str:
    """56 digits, as AWS's event ids, sorting as the events were written: by timestamp, then
    ingestion time, then position in their batch (random digits keep ids unique)."""
    tail = f"{int.from_bytes(os.urandom(8), 'big'):014d}"[-14:]
    return f"{timestamp_ms:020d}{ingestion_ms:016d}{sequence:06d}{tail}"


class LogRepository:
    def __init__(self, tx: Tx) -> None:
        self._tx = tx

    def ensure_group(self, account_id: str, region: str, name: str, now_ms: int) -> None:
        if self._tx.one(
            "SELECT 1 AS x FROM log_groups WHERE account_id = ? AND region = ? AND name = ?",
            (account_id, region, name),
        ):
            return
        self._tx.execute(
            "INSERT INTO log_groups (account_id, region, name, created_ms) VALUES (?, ?, ?, ?)"
            " ON CONFLICT DO NOTHING",
            (account_id, region, name, now_ms),
        )

    def append(
        self,
        account_id: str,
        region: str,
        group: str,
        stream: str,
        events: list[tuple[int, str]],
        now_ms: int,
    ) -> None:
        if not events:
            return
        self.ensure_group(account_id, region, group, now_ms)
        first = min(ts for ts, _ in events)
        last = max(ts for ts, _ in events)
        size = sum(len(message.encode()) for _, message in events)
        updated = self._tx.rowcount(
            "UPDATE log_streams SET first_event_ms = COALESCE(first_event_ms, ?),"
            " last_event_ms = ?, last_ingestion_ms = ?, stored_bytes = stored_bytes + ?"
            " WHERE account_id = ? AND region = ? AND group_name = ? AND name = ?",
            (first, last, now_ms, size, account_id, region, group, stream),
        )
        if not updated:
            self._tx.execute(
                "INSERT INTO log_streams (account_id, region, group_name, name, created_ms,"
                " first_event_ms, last_event_ms, last_ingestion_ms, stored_bytes)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (account_id, region, group, stream, first, first, last, now_ms, size),
            )
        previous = 0
        for sequence, (stamp, message) in enumerate(events):
            # Lines of one invocation keep their order even if the clock stepped back.
            timestamp = max(stamp, previous)
            previous = timestamp
            self._tx.execute(
                "INSERT INTO log_events (event_id, account_id, region, group_name, stream_name,"
                " timestamp_ms, ingestion_ms, message) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    new_event_id(timestamp, now_ms, sequence),
                    account_id,
                    region,
                    group,
                    stream,
                    timestamp,
                    now_ms,
                    message,
                ),
            )

    def groups(
        self, account_id: str, region: str, prefix: str, after: str, limit: int
    ) -> list[LogGroupRecord]:
        rows = self._tx.all(
            "SELECT g.name, g.created_ms, COALESCE((SELECT SUM(s.stored_bytes) FROM log_streams s"
            " WHERE s.account_id = g.account_id AND s.region = g.region AND s.group_name = g.name),"
            " 0) AS stored FROM log_groups g WHERE g.account_id = ? AND g.region = ?"
            " AND g.name > ? AND substr(g.name, 1, ?) = ? ORDER BY g.name LIMIT ?",
            (account_id, region, after, len(prefix), prefix, limit),
        )
        return [LogGroupRecord(r["name"], int(r["created_ms"]), int(r["stored"])) for r in rows]

    def group_exists(self, account_id: str, region: str, name: str) -> bool:
        return (
            self._tx.one(
                "SELECT 1 AS x FROM log_groups WHERE account_id = ? AND region = ? AND name = ?",
                (account_id, region, name),
            )
            is not None
        )

    def streams(
        self, account_id: str, region: str, group: str, prefix: str
    ) -> list[LogStreamRecord]:
        rows = self._tx.all(
            "SELECT group_name, name, created_ms, first_event_ms, last_event_ms,"
            " last_ingestion_ms, stored_bytes FROM log_streams WHERE account_id = ?"
            " AND region = ? AND group_name = ? AND substr(name, 1, ?) = ?",
            (account_id, region, group, len(prefix), prefix),
        )
        return [
            LogStreamRecord(
                r["group_name"],
                r["name"],
                int(r["created_ms"]),
                _int(r["first_event_ms"]),
                _int(r["last_event_ms"]),
                _int(r["last_ingestion_ms"]),
                int(r["stored_bytes"]),
            )
            for r in rows
        ]

    def events(
        self,
        account_id: str,
        region: str,
        group: str,
        *,
        streams: list[str] | None,
        start_ms: int | None,
        end_ms: int | None,
        after: str,
        before: str | None,
        descending: bool,
        limit: int,
    ) -> list[LogEventRecord]:
        sql = (
            "SELECT event_id, stream_name, timestamp_ms, ingestion_ms, message FROM log_events"
            " WHERE account_id = ? AND region = ? AND group_name = ? AND event_id > ?"
        )
        params: list[object] = [account_id, region, group, after]
        if before is not None:
            sql += " AND event_id < ?"
            params.append(before)
        if streams is not None:
            sql += f" AND stream_name IN ({', '.join('?' for _ in streams)})"
            params.extend(streams)
        if start_ms is not None:
            sql += " AND timestamp_ms >= ?"
            params.append(start_ms)
        if end_ms is not None:
            sql += " AND timestamp_ms < ?"
            params.append(end_ms)
        sql += f" ORDER BY event_id {'DESC' if descending else 'ASC'} LIMIT ?"
        params.append(limit)
        return [
            LogEventRecord(
                r["event_id"],
                r["stream_name"],
                int(r["timestamp_ms"]),
                int(r["ingestion_ms"]),
                r["message"],
            )
            for r in self._tx.all(sql, params)
        ]


def _int(value: object) -> int | None:
    return None if value is None else int(value)  # type: ignore[call-overload]
