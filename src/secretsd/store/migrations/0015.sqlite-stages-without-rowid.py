"""SQLite only: `version_stages` becomes a WITHOUT ROWID table, and loses
`version_stages_by_version`.

Every PutSecretValue moves labels. With a rowid table SQLite writes each label row to the table
and to two indexes (the primary key's and the by-version one); clustered on its primary key it is
one B-tree, and the foreign key's check on deleting a version finds the version's labels by the
key's `secret_arn` prefix (a secret has a handful). A replay of a write's statements measured 11
WAL frames per commit before and 8.9 after, 12-15 us less per write (docs/benchmarks.md).

PostgreSQL has no such table kind and keeps its schema: its step does nothing.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from yoyo import step

__depends__ = {"0014.version-retention-index"}

_TABLE = """
CREATE TABLE version_stages_rebuilt (
    secret_arn TEXT NOT NULL,
    stage TEXT NOT NULL,
    version_id TEXT NOT NULL,
    PRIMARY KEY (secret_arn, stage),
    FOREIGN KEY (secret_arn, version_id) REFERENCES secret_versions (secret_arn, version_id)
        ON DELETE CASCADE
) WITHOUT ROWID
"""


def apply(conn: Any) -> None:
    if not isinstance(conn, sqlite3.Connection):
        return
    cursor = conn.cursor()
    cursor.execute(_TABLE)
    cursor.execute(
        "INSERT INTO version_stages_rebuilt (secret_arn, stage, version_id)"
        " SELECT secret_arn, stage, version_id FROM version_stages"
    )
    cursor.execute("DROP TABLE version_stages")
    cursor.execute("ALTER TABLE version_stages_rebuilt RENAME TO version_stages")


# Like every migration here, forward only.
steps = [step(apply)]
