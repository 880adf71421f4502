"""Root key rotation in-process, on SQLite and PostgreSQL: a live keyring (as a server holds)
follows a rotation made elsewhere; an unreadable blob stops the rotation before anything is
retired; `--finish` completes it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from secretsd.bootstrap import initialise
from secretsd.clock import FixedClock
from secretsd.crypto import aead
from secretsd.crypto.rootkey import header, version_of
from secretsd.kms import root_keys
from secretsd.kms.keyring import Keyring
from secretsd.settings import Settings
from secretsd.store.database import Database
from secretsd.store.repository import Repository
from secretsd.store.root_key_repository import SEALED_COLUMNS, RootKeyRepository
from support.factories import new_database


@pytest.fixture
def setup(
    request: pytest.FixtureRequest, backend: str, tmp_path: Path
) -> Iterator[tuple[Settings, Database]]:
    url = new_database(request, backend, "rootkeys") or f"sqlite:///{tmp_path / 'r.db'}"
    settings = replace(Settings(), data_dir=tmp_path / "data", database_url=url)
    db = Database(url)
    initialise(settings, db, FixedClock(0))
    yield settings, db
    db.close()


def _versions(db: Database) -> list[int]:
    with db.transaction() as tx:
        return sorted(RootKeyRepository(tx).wrapped_keys())


def _headers(db: Database) -> set[int]:
    with db.transaction() as tx:
        repo = RootKeyRepository(tx)
        return {
            version_of(row.sealed)
            for column in SEALED_COLUMNS
            for row in repo.stale_rows(column, header(2**32 - 1), None, 10_000)
        }


def test_a_live_keyring_follows_a_rotation_made_elsewhere(
    setup: tuple[Settings, Database],
) -> None:
    settings, db = setup
    clock = FixedClock(0)
    live, _ = root_keys.open_keyring(
        db, settings.root_key_path, live_database_url=settings.effective_database_url
    )
    keyring = Keyring(live, clock)
    with db.transaction(write=True) as tx:
        account = Repository(tx).account_ids()[0]
        key = keyring.default_key(Repository(tx), account, "us-east-1")
    sealed = keyring.seal(key, b"value", {"k": "v"})

    admin, protector = root_keys.open_keyring(db, settings.root_key_path)
    report = root_keys.rotate(db, admin, protector, clock, grace_seconds=0)
    assert report.version == 2 and report.retired == [1]
    assert _versions(db) == [2] and _headers(db) == {2}

    # A process that has never seen version 2 opens the re-wrapped material and seals with it.
    fresh, _ = root_keys.open_keyring(
        db, settings.root_key_path, live_database_url=settings.effective_database_url
    )
    with db.transaction() as tx:
        reread = Repository(tx).key_by_arn(key.arn)
    assert reread is not None
    with db.transaction() as tx:
        assert Keyring(fresh, clock).open(Repository(tx), sealed.envelope, {"k": "v"}) == b"value"
    assert version_of(live.seal(b"x", b"aad")) == 2
    assert live.current_version == 2
    live.close()
    fresh.close()


def test_an_unreadable_blob_stops_retirement_until_fixed(
    setup: tuple[Settings, Database],
) -> None:
    settings, db = setup
    clock = FixedClock(0)
    admin, protector = root_keys.open_keyring(db, settings.root_key_path)
    garbage = header(1) + aead.new_key()
    with db.transaction(write=True) as tx:
        tx.execute("UPDATE meta SET value = ? WHERE name = 'root_key_check'", (garbage,))
    with pytest.raises(root_keys.RootKeyError, match="meta root_key_check"):
        root_keys.rotate(db, admin, protector, clock, grace_seconds=0)
    # Nothing retired; everything else already under version 2.
    assert _versions(db) == [1, 2]
    assert root_keys.status(db).blobs_by_version[1] == 1

    with db.transaction(write=True) as tx:
        tx.execute("DELETE FROM meta WHERE name = 'root_key_check'")
    admin, protector = root_keys.open_keyring(db, settings.root_key_path)
    report = root_keys.rotate(db, admin, protector, clock, new_version=False, grace_seconds=0)
    assert report.version == 2 and report.retired == [1]
    assert _versions(db) == [2] and _headers(db) == {2}
