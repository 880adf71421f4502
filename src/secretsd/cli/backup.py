"""`secretsd backup FILE` and `secretsd restore FILE`.

A backup is a consistent snapshot of the whole database (`store/snapshot.py`), with the audit
trail's own file on SQLite, in the backend-neutral form of `store/snapshot_format.py`, sealed with
a passphrase (`crypto/stream.py`). Everything
secret in the database is sealed already (values under data keys, under KMS key material, under
root keys wrapped by the protector), and the protector is never in the database, so the backup
and its passphrase together still open no secret without the root key file (or root passphrase,
or external KMS key) the source used. See docs/operations.md, "Backup and restore".
"""

from __future__ import annotations

import contextlib
import hmac
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import click

from secretsd.cli.options import SettingsFor, stacked
from secretsd.cli.root_keys import read_passphrase
from secretsd.crypto import protectors
from secretsd.crypto.protectors import Argon2Params, KeyFileProtector, ProtectorMismatch
from secretsd.crypto.rootkey import read_key_file
from secretsd.crypto.stream import SealedWriter, StreamError, WrongPassphrase, open_sealed_stream
from secretsd.settings import Settings
from secretsd.store import snapshot
from secretsd.store.snapshot import AUDIT, MAIN, Manifest, SnapshotError
from secretsd.store.snapshot_format import SnapshotReader, encode

_backup_passphrase = click.option(
    "--passphrase-file",
    type=click.Path(dir_okay=False, allow_dash=True),
    help="The backup's passphrase (not the root key's) from this file ('-': standard input)"
    " instead of a prompt.",
)
_no_progress = click.option(
    "--no-progress", is_flag=True, help="No progress bar on standard error."
)


def _bar(length: int, label: str, hidden: bool) -> Any:
    return click.progressbar(
        length=length, label=label, file=sys.stderr, hidden=hidden, show_pos=True
    )


@contextlib.contextmanager
def _output(target: str, force: bool) -> Iterator[IO[bytes]]:
    """Standard output, or a file that appears (0600, fsync'd) only once complete."""
    if target == "-":
        yield sys.stdout.buffer
        sys.stdout.buffer.flush()
        return
    path = Path(target)
    if path.exists() and not force:
        raise click.ClickException(f"{path} exists: choose another name or give --force")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".partial", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            yield out
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


@dataclass
class _RootKeyRows:
    """The root key rows of a backup, kept while it is verified, to check the key file."""

    state: dict[str, Any] = field(default_factory=dict)
    wrapped: dict[int, bytes] = field(default_factory=dict)

    def take(self, table: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        if table == "root_key_state":
            for row in rows:
                self.state = dict(zip(columns, row, strict=True))
        elif table == "root_keys":
            for row in rows:
                named = dict(zip(columns, row, strict=True))
                self.wrapped[int(named["version"])] = bytes(named["wrapped"])


def _verify(path: Path, passphrase: str, hidden: bool) -> tuple[Manifest, int, _RootKeyRows]:
    """Read the whole backup once, authenticating every chunk, before anything is written."""
    keys = _RootKeyRows()
    with path.open("rb") as source:
        reader = SnapshotReader(open_sealed_stream(source, passphrase))
        manifest = reader.manifest
        with _bar(manifest.total_rows, "verifying ", hidden) as bar:
            for table, batch in reader.batches():
                if table.part == MAIN:
                    keys.take(table.name, table.column_names, batch)
                bar.update(len(batch))
    return manifest, reader.created_ms, keys


def _key_file_for(settings: Settings, given: str | None, rows: _RootKeyRows) -> bytes | None:
    """The key file that opens the backup's root keys (checked), or a refusal. None when the
    root keys are protected otherwise (a passphrase or an external KMS key)."""
    kind = rows.state.get("protector")
    if kind != protectors.KEY_FILE:
        if given is not None:
            raise click.UsageError(
                f"--root-key-file: the backup's root keys are protected by {kind}, not a key file"
            )
        return None
    present = settings.root_key_path
    if given is None and not present.exists():
        raise click.ClickException(
            "the backup's root keys are protected by a key file: give the source's root.key"
            f" with --root-key-file (or place it at {present} yourself)"
        )
    key = _read_key(Path(given) if given is not None else present)
    if given is not None and present.exists():
        if not hmac.compare_digest(_read_key(present), key):
            raise click.ClickException(
                f"{present} exists and is not the key given with --root-key-file"
            )
    protector = KeyFileProtector(key)
    try:
        for version, wrapped in rows.wrapped.items():
            protector.unwrap(version, wrapped)
    except ProtectorMismatch as exc:
        raise click.ClickException(
            "this key file does not open the backup's root keys: restore with the root.key of"
            " the data dir the backup was taken from"
        ) from exc
    return key


def _read_key(path: Path) -> bytes:
    try:
        return read_key_file(path)
    except (OSError, ValueError) as exc:  # PermissionError (mode) is an OSError
        raise click.ClickException(str(exc)) from exc


def _write_key_file(path: Path, key: bytes) -> None:
    if path.exists():
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, key)
        os.fsync(fd)
    finally:
        os.close(fd)


def _load(
    url: str, audit_url: str, path: Path, passphrase: str, manifest: Manifest, hidden: bool
) -> None:
    snapshot.prepare_target(url, manifest.migrations, audit_url)
    loader = snapshot.Restore(url, audit_url, manifest)
    try:
        with path.open("rb") as source:
            reader = SnapshotReader(open_sealed_stream(source, passphrase))
            if reader.manifest != manifest:
                raise SnapshotError("the backup file changed while it was restored")
            with _bar(manifest.total_rows, "restoring ", hidden) as bar:
                for table, batch in reader.batches():
                    loader.insert(table, batch)
                    bar.update(len(batch))
        loader.commit()
    finally:
        loader.close()


def _audit_note(manifest: Manifest) -> str:
    audit = manifest.part(AUDIT)
    if not audit:
        return ""
    return f"; the audit trail's file: {sum(t.rows for t in audit)} rows"


def register(main: click.Group, settings_for: SettingsFor, *options: Any) -> None:
    """Add the commands to `main`; `options` are the shared --data-dir/--database options."""

    shared = stacked(options)

    @main.command("backup")
    @click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
    @shared
    @_backup_passphrase
    @click.option("--force", is_flag=True, help="Replace FILE if it exists.")
    @_no_progress
    def backup_cmd(
        file: str,
        data_dir: str | None,
        database_url: str | None,
        passphrase_file: str | None,
        force: bool,
        no_progress: bool,
    ) -> None:
        """Write a consistent, encrypted snapshot of the database (with the audit trail's own
        file on SQLite) to FILE ('-': standard output), while servers keep serving."""
        settings = settings_for(data_dir=data_dir, database_url=database_url)
        passphrase = read_passphrase(passphrase_file, "Backup passphrase", confirm=True)
        kdf = Argon2Params(settings.kdf_iterations, settings.kdf_memory_kib, settings.kdf_lanes)
        started = time.monotonic()
        try:
            with _output(file, force) as out:
                # The key is derived before the snapshot starts: the read transaction stays short.
                writer = SealedWriter(out, passphrase, kdf)
                with snapshot.take(
                    settings.effective_database_url, settings.audit_database_url
                ) as snap:
                    manifest = snap.manifest
                    with _bar(manifest.total_rows, "backing up", no_progress) as bar:
                        for piece in encode(snap, int(time.time() * 1000), bar.update):
                            writer.write(piece)
                writer.close()
        except SnapshotError as exc:
            raise click.ClickException(f"backup failed: {exc}") from exc
        click.echo(
            f"secretsd: backed up {manifest.total_rows} rows of {len(manifest.tables)} tables"
            f" ({manifest.dialect}, {len(manifest.migrations)} schema migrations"
            f"{_audit_note(manifest)}) to {file}:"
            f" {writer.bytes_written} bytes in {time.monotonic() - started:.1f} s",
            err=True,
        )

    @main.command("restore")
    @click.argument("file", type=click.Path(dir_okay=False, exists=True))
    @shared
    @_backup_passphrase
    @click.option(
        "--root-key-file",
        type=click.Path(dir_okay=False, exists=True),
        help="The source data dir's root.key (when a key file protects the root keys): checked"
        " against the backup, then copied into the data dir.",
    )
    @click.option(
        "--force",
        is_flag=True,
        help="Replace a database that is not empty (everything in it is lost).",
    )
    @_no_progress
    def restore_cmd(
        file: str,
        data_dir: str | None,
        database_url: str | None,
        passphrase_file: str | None,
        root_key_file: str | None,
        force: bool,
        no_progress: bool,
    ) -> None:
        """Restore a backup into a new data dir and database (SQLite or PostgreSQL, from a
        backup of either). Stop servers using the target first."""
        settings = settings_for(data_dir=data_dir, database_url=database_url)
        url = settings.effective_database_url
        audit_url = settings.audit_database_url
        path = Path(file)
        passphrase = read_passphrase(passphrase_file, "Backup passphrase")
        try:
            manifest, created_ms, rows = _verify(path, passphrase, no_progress)
            snapshot.check_migrations(manifest.migrations)
        except WrongPassphrase as exc:
            raise click.ClickException(str(exc)) from exc
        except (StreamError, SnapshotError) as exc:
            raise click.ClickException(f"backup refused: {exc}") from exc
        key = _key_file_for(settings, root_key_file, rows)
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(settings.data_dir, 0o700)
        try:
            if not snapshot.target_is_empty(url, audit_url):
                if not force:
                    raise click.ClickException(
                        "the target database is not empty: restore into a new one, or give"
                        " --force to replace everything in it"
                    )
                snapshot.clear_target(url, audit_url)
            try:
                _load(url, audit_url, path, passphrase, manifest, no_progress)
            except BaseException:
                # The target was empty: leave it so, never half restored.
                snapshot.clear_target(url, audit_url)
                raise
            snapshot.migrate_target(url)
        except (StreamError, SnapshotError) as exc:
            raise click.ClickException(f"restore failed: {exc}") from exc
        if key is not None:
            _write_key_file(settings.root_key_path, key)
        taken = datetime.fromtimestamp(created_ms / 1000, UTC).isoformat(timespec="seconds")
        placed = snapshot.place(manifest)
        rows_in = sum(t.rows for t in placed.main)
        audit_rows = sum(t.rows for t in placed.audit)
        click.echo(
            f"secretsd: restored {rows_in} rows of {len(placed.main)} tables and the audit"
            f" trail's {audit_rows} rows from a {manifest.dialect} backup taken {taken}",
            err=True,
        )
        protector = rows.state.get("protector")
        if protector == protectors.PASSPHRASE:
            click.echo(
                "secretsd: the root keys are protected by a passphrase: servers start sealed;"
                " unseal them with the source's root key passphrase",
                err=True,
            )
        elif protector == protectors.AWS_KMS:
            click.echo(
                "secretsd: the root keys are protected by an external KMS key: servers need"
                " access to it, as the source's did",
                err=True,
            )
