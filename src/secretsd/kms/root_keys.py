"""The root key lifecycle: first set-up, opening, rotation and protector changes.

Root keys are random, versioned and stored only wrapped by the protector (`crypto/protectors`).
Every blob a root key seals names its version (`crypto/rootkey`). Rotation adds a version, makes
it current and re-wraps every sealed blob in short batches while servers keep running; running
processes meet the new version through `RootKeyring`'s loader and seal with it from their next
seal on. Changing the protector re-wraps only the root key rows. See docs/adr/0002-root-keys.md.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from secretsd.clock import Clock
from secretsd.crypto import aead, protectors
from secretsd.crypto.protectors import (
    AwsKmsProtector,
    KeyFileProtector,
    PassphraseProtector,
    Protector,
    ProtectorMismatch,
)
from secretsd.crypto.rootkey import (
    LEGACY_VERSION,
    RootKeyring,
    header,
    load_or_create_root_key,
    read_key_file,
)
from secretsd.kms.keyring import material_aad
from secretsd.store.database import Database
from secretsd.store.repository import Repository
from secretsd.store.root_key_repository import (
    SEALED_COLUMNS,
    RootKeyRepository,
    RootKeyState,
    SealedColumn,
    SealedRow,
)

FIRST_VERSION = 1
CHECK_META_NAME = "root_key_check"


class NeedsPassphrase(Exception):
    """The root keys are protected by a passphrase, which this process does not have yet."""


class RootKeyError(Exception):
    """An operator-facing refusal (the message says what to do)."""


def protector_params(state: RootKeyState) -> dict[str, Any]:
    loaded = json.loads(state.protector_params)
    assert isinstance(loaded, dict)
    return loaded


def protector_for(state: RootKeyState, key_file: Path, passphrase: str | None) -> Protector:
    """The protector the state names, ready to use (reads the key file; derives the key)."""
    if state.protector == protectors.KEY_FILE:
        if not key_file.exists():
            raise RootKeyError(
                f"the root keys are protected by a key file, and {key_file} does not exist"
            )
        return KeyFileProtector(read_key_file(key_file))
    if state.protector == protectors.PASSPHRASE:
        if passphrase is None:
            raise NeedsPassphrase("the root keys are protected by a passphrase")
        return PassphraseProtector.from_params(passphrase, protector_params(state))
    if state.protector == protectors.AWS_KMS:
        return AwsKmsProtector.from_params(protector_params(state))
    raise RootKeyError(f"unknown root key protector {state.protector!r}")


def read_state(db: Database) -> RootKeyState:
    with db.transaction() as tx:
        state = RootKeyRepository(tx).state()
    if state is None:
        raise RootKeyError("the database has no root keys yet: run `secretsd init`")
    return state


def ensure_root_keys(db: Database, key_file: Path, clock: Clock) -> RootKeyState:
    """First start after installation or upgrade: protect a first random root key with the key
    file (created if missing). A database that already held data sealed by the key file's raw
    bytes (before versioned root keys) keeps that legacy key readable until a rotation."""
    with db.transaction() as tx:
        state = RootKeyRepository(tx).state()
    if state is not None:
        return state
    file_key = load_or_create_root_key(key_file)
    protector = KeyFileProtector(file_key)
    root_key = aead.new_key()
    now = clock.now_ms()
    with db.transaction(write=True) as tx:
        repo = RootKeyRepository(tx)
        if repo.state() is None:
            # The check value exists in every database initialised before versioning.
            legacy = Repository(tx).meta(CHECK_META_NAME)
            repo.insert_key_if_absent(FIRST_VERSION, protector.wrap(FIRST_VERSION, root_key), now)
            repo.insert_state_if_absent(
                RootKeyState(protectors.KEY_FILE, "{}", FIRST_VERSION, legacy is not None, now)
            )
        state = repo.state()
    assert state is not None
    return state


@dataclass
class _Source:
    """Loads root key versions for a running process, on a connection of its own (seals happen
    inside callers' transactions, on the main connection)."""

    db: Database
    protector: Protector
    key_file: Path

    def load(self, version: int) -> bytes | None:
        if version == LEGACY_VERSION:
            return None
        with self.db.statement() as tx:
            wrapped = RootKeyRepository(tx).wrapped_key(version)
        if wrapped is None:
            return None
        try:
            return self.protector.unwrap(version, wrapped)
        except ProtectorMismatch:
            # The protector was changed while this process ran: a key file or an external KMS
            # key can be picked up again; a new passphrase cannot (see docs/keys.md).
            with self.db.statement() as tx:
                state = RootKeyRepository(tx).state()
            if state is None or state.protector == protectors.PASSPHRASE:
                return None
            try:
                self.protector = protector_for(state, self.key_file, None)
                return self.protector.unwrap(version, wrapped)
            except (ProtectorMismatch, RootKeyError):
                return None

    def current(self) -> int:
        with self.db.statement() as tx:
            version = RootKeyRepository(tx).current_version()
        if version is None:
            raise RootKeyError("root key state is missing from the database")
        return version


def open_keyring(
    db: Database,
    key_file: Path,
    passphrase: str | None = None,
    *,
    protector: Protector | None = None,
    live_database_url: str | None = None,
) -> tuple[RootKeyring, Protector]:
    """Unwrap every stored root key version with the protector the database names.

    With `live_database_url`, the keyring follows rotations done by other processes (through a
    connection of its own); without it, it is a snapshot (for admin commands).
    Raises NeedsPassphrase, ProtectorMismatch, ProtectorUnavailable or RootKeyError.
    """
    with db.transaction() as tx:
        repo = RootKeyRepository(tx)
        state = repo.state()
        wrapped = repo.wrapped_keys()
    if state is None:
        raise RootKeyError("the database has no root keys yet: run `secretsd init`")
    if protector is None:
        protector = protector_for(state, key_file, passphrase)
    elif protector.kind != state.protector:
        raise ProtectorMismatch(f"the root keys are protected by {state.protector} now")
    keys = {version: protector.unwrap(version, blob) for version, blob in wrapped.items()}
    if state.legacy_active:
        # Only ever with the key file protector: changing it is refused while legacy is active.
        keys[LEGACY_VERSION] = read_key_file(key_file)
    if state.current_version not in keys:
        raise RootKeyError(f"root key version {state.current_version} is missing")
    if live_database_url is None:
        return RootKeyring(keys, state.current_version), protector
    source = _Source(Database(live_database_url), protector, key_file)
    ring = RootKeyring(
        keys,
        state.current_version,
        loader=source.load,
        current_reader=source.current,
        close=source.db.close,
    )
    return ring, protector


# -- rotation ------------------------------------------------------------------------------------

# What each sealed column's blobs are bound to (their additional authenticated data).
_AAD: dict[str, Callable[[SealedRow], bytes]] = {
    "kms_keys": lambda row: material_aad(str(row.context[0]), 1),
    "kms_key_materials": lambda row: material_aad(str(row.context[0]), int(row.keys[1])),
    "access_keys": lambda row: str(row.keys[0]).encode(),
    "sts_sessions": lambda row: str(row.keys[0]).encode(),
    "meta": lambda row: str(row.keys[0]).encode(),
}


@dataclass
class RewrapReport:
    version: int
    rewrapped: dict[str, int] = field(default_factory=dict)
    unreadable: list[str] = field(default_factory=list)
    retired: list[int] = field(default_factory=list)


def _rewrap_column(
    db: Database,
    ring: RootKeyring,
    column: SealedColumn,
    version: int,
    batch: int,
    report: RewrapReport,
) -> None:
    aad_of = _AAD[column.table]
    head = header(version)
    after: tuple[Any, ...] | None = None
    while True:
        with db.transaction(write=True) as tx:
            repo = RootKeyRepository(tx)
            if repo.current_version() != version:
                raise RootKeyError(
                    f"root key version {version} is no longer current: another rotation took over"
                )
            rows = repo.stale_rows(column, head, after, batch)
            for row in rows:
                aad = aad_of(row)
                try:
                    plaintext = ring.open(row.sealed, aad)
                except aead.SealError:
                    label = f"{column.table} {'/'.join(str(k) for k in row.keys)}"
                    if label not in report.unreadable:
                        report.unreadable.append(label)
                    continue
                if repo.replace_sealed(
                    column, row.keys, row.sealed, ring.seal_with(version, plaintext, aad)
                ):
                    report.rewrapped[column.name] = report.rewrapped.get(column.name, 0) + 1
        if len(rows) < batch:
            return
        after = rows[-1].keys


def rotate(
    db: Database,
    ring: RootKeyring,
    protector: Protector,
    clock: Clock,
    *,
    new_version: bool = True,
    grace_seconds: float = 2.0,
    batch: int = 200,
    progress: Callable[[str], None] = lambda _: None,
) -> RewrapReport:
    """Create a new root key version (unless `new_version` is False, to finish an interrupted
    rotation), make it current, re-wrap every blob sealed by another version, then retire the
    others. Online: each batch is one short transaction."""
    if new_version:
        key = aead.new_key()
        with db.transaction() as tx:
            versions = RootKeyRepository(tx).wrapped_keys()
        version = max(versions) + 1
        # Wrapped before the write transaction: an external KMS call must not hold the lock.
        wrapped = protector.wrap(version, key)
        with db.transaction(write=True) as tx:
            repo = RootKeyRepository(tx)
            if repo.wrapped_key(version) is not None:
                raise RootKeyError("another rotation is running")
            repo.insert_key_if_absent(version, wrapped, clock.now_ms())
            repo.set_current(version, clock.now_ms())
        ring.add(version, key, current=True)
        progress(f"root key version {version} created and made current")
        # Processes check the current version before each seal; this covers a seal that read
        # the old current version just before the switch and has not committed yet.
        time.sleep(grace_seconds)
    else:
        with db.transaction() as tx:
            found = RootKeyRepository(tx).current_version()
        if found is None or found not in ring.versions:
            raise RootKeyError("the current root key version cannot be opened")
        version = found
    report = RewrapReport(version)
    for _ in range(3):
        for column in SEALED_COLUMNS:
            _rewrap_column(db, ring, column, version, batch, report)
        if report.unreadable:
            raise RootKeyError(
                "these blobs could not be opened by any root key version, so nothing was"
                " retired: " + ", ".join(report.unreadable[:20])
            )
        with db.transaction(write=True) as tx:
            repo = RootKeyRepository(tx)
            stale = sum(
                repo.count_with_header(c, header(version), equal=False) for c in SEALED_COLUMNS
            )
            if stale == 0 and repo.current_version() == version:
                old = [v for v in repo.wrapped_keys() if v != version]
                for v in old:
                    repo.delete_key(v)
                state = repo.state()
                if state is not None and state.legacy_active:
                    repo.set_legacy_retired(clock.now_ms())
                    old.append(LEGACY_VERSION)
                report.retired = sorted(old)
                break
        progress(f"{stale} blobs were sealed by an older version meanwhile; another pass")
    else:
        raise RootKeyError("blobs kept appearing under an older root key version; run again")
    for v in report.retired:
        ring.forget(v)
    return report


# -- protector changes ---------------------------------------------------------------------------


def change_protector(
    db: Database, current: Protector, new: Protector, clock: Clock
) -> RootKeyState:
    """Re-wrap every root key row with `new` (blobs are untouched: their root keys are not)."""
    with db.transaction() as tx:
        repo = RootKeyRepository(tx)
        state = repo.state()
        before = repo.wrapped_keys()
    if state is None:
        raise RootKeyError("the database has no root keys yet: run `secretsd init`")
    if state.legacy_active:
        raise RootKeyError(
            "blobs sealed by the legacy root key (the key file itself) remain: run"
            " `secretsd root-key rotate` first, then change the protector"
        )
    rewrapped = {v: new.wrap(v, current.unwrap(v, blob)) for v, blob in before.items()}
    # Check that the new protector opens what it wrapped before anything is replaced.
    for v, blob in rewrapped.items():
        if new.unwrap(v, blob) != current.unwrap(v, before[v]):
            raise RootKeyError("the new protector did not round-trip a root key")
    with db.transaction(write=True) as tx:
        repo = RootKeyRepository(tx)
        if repo.wrapped_keys() != before or repo.state() != state:
            raise RootKeyError("the root keys changed meanwhile (a rotation?): run again")
        for v, blob in rewrapped.items():
            repo.update_wrapped(v, blob)
        repo.set_protector(new.kind, json.dumps(new.params(), sort_keys=True), clock.now_ms())
        changed = repo.state()
    assert changed is not None
    return changed


@dataclass(frozen=True)
class Status:
    protector: str
    protector_params: dict[str, Any]
    current_version: int
    versions: list[int]
    legacy_active: bool
    blobs_by_version: dict[int, int]
    blobs_total: int


def status(db: Database) -> Status:
    with db.transaction() as tx:
        repo = RootKeyRepository(tx)
        state = repo.state()
        versions = sorted(repo.wrapped_keys())
        if state is None:
            raise RootKeyError("the database has no root keys yet: run `secretsd init`")
        by_version = {
            v: sum(repo.count_with_header(c, header(v), equal=True) for c in SEALED_COLUMNS)
            for v in versions
        }
        total = sum(repo.count_all(c) for c in SEALED_COLUMNS)
    # Everything not under a stored version is legacy (no header).
    by_version[LEGACY_VERSION] = total - sum(by_version.values())
    return Status(
        state.protector,
        protector_params(state),
        state.current_version,
        versions,
        state.legacy_active,
        by_version,
        total,
    )
