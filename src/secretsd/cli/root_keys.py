"""`secretsd root-key status|rotate|protect` and `secretsd unseal`.

The root-key commands work on the data directory and database directly, while servers run:
rotation re-wraps in short transactions, and running servers pick new versions up by themselves.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from secretsd.bootstrap import initialise
from secretsd.cli.options import SettingsFor, as_json, passphrase_file, stacked
from secretsd.clock import SystemClock
from secretsd.crypto import protectors
from secretsd.crypto.protectors import (
    Argon2Params,
    AwsKmsProtector,
    KeyFileProtector,
    PassphraseProtector,
    Protector,
    ProtectorMismatch,
    ProtectorUnavailable,
)
from secretsd.crypto.rootkey import RootKeyring, load_or_create_root_key
from secretsd.kms import root_keys
from secretsd.kms.root_keys import NeedsPassphrase, RootKeyError
from secretsd.settings import Settings
from secretsd.store.database import Database


def read_passphrase(source: str | None, prompt: str, confirm: bool = False) -> str:
    if source is None:
        value = click.prompt(prompt, hide_input=True, confirmation_prompt=confirm)
    elif source == "-":
        value = sys.stdin.readline()
    else:
        value = Path(source).read_text()
    value = value.rstrip("\r\n")
    if not value:
        raise click.ClickException("the passphrase must not be empty")
    return str(value)


def _failure(exc: Exception) -> click.ClickException:
    return click.ClickException(str(exc))


class _Admin:
    """The data directory and database an admin command works on."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.clock = SystemClock(settings.clock_offset_seconds)
        self.db = Database(settings.effective_database_url)

    def __enter__(self) -> _Admin:
        try:
            initialise(self.settings, self.db, self.clock)
        except (RootKeyError, ProtectorMismatch, ProtectorUnavailable) as exc:
            self.db.close()
            raise _failure(exc) from exc
        return self

    def __exit__(self, *exc: object) -> None:
        self.db.close()

    def open(self, passphrase_file: str | None) -> tuple[RootKeyring, Protector]:
        state = root_keys.read_state(self.db)
        passphrase = None
        if state.protector == protectors.PASSPHRASE:
            passphrase = read_passphrase(passphrase_file, "Current passphrase")
        try:
            return root_keys.open_keyring(self.db, self.settings.root_key_path, passphrase)
        except ProtectorMismatch as exc:
            raise click.ClickException(
                "the passphrase does not open the root keys"
                if state.protector == protectors.PASSPHRASE
                else str(exc)
            ) from exc
        except (NeedsPassphrase, RootKeyError, ProtectorUnavailable) as exc:
            raise _failure(exc) from exc


def register(main: click.Group, settings_for: SettingsFor, *options: Callable[..., Any]) -> None:
    """Add the commands to `main`; `options` are the shared --data-dir/--database options."""

    shared = stacked(options)

    @main.group("root-key")
    def root_key() -> None:
        """Root key status, rotation and protection."""

    @root_key.command("status")
    @shared
    @as_json
    def status_cmd(data_dir: str | None, database_url: str | None, as_json: bool) -> None:
        """Show the protector, the root key versions and how many blobs each one seals."""
        settings = settings_for(data_dir=data_dir, database_url=database_url)
        with _Admin(settings) as admin:
            found = root_keys.status(admin.db)
        out = {
            "protector": found.protector,
            "protector_params": {k: v for k, v in found.protector_params.items() if k != "salt"},
            "current_version": found.current_version,
            "versions": found.versions,
            "legacy_active": found.legacy_active,
            "blobs_by_version": {str(k): v for k, v in sorted(found.blobs_by_version.items())},
            "blobs_total": found.blobs_total,
        }
        if as_json:
            click.echo(json.dumps(out, sort_keys=True))
            return
        click.echo(f"protector: {found.protector} {json.dumps(out['protector_params'])}")
        click.echo(f"current version: {found.current_version}")
        click.echo(f"stored versions: {', '.join(str(v) for v in found.versions)}")
        if found.legacy_active:
            click.echo("legacy root key (the key file itself): still active; rotate to retire it")
        for version, count in sorted(found.blobs_by_version.items()):
            if count or version != 0:
                name = "legacy" if version == 0 else f"version {version}"
                click.echo(f"blobs sealed by {name}: {count}")

    @root_key.command("rotate")
    @shared
    @passphrase_file
    @click.option(
        "--finish",
        is_flag=True,
        help="Do not create a new version: finish re-wrapping to the current one (after an"
        " interrupted rotation).",
    )
    @click.option("--batch", type=click.IntRange(1, 10_000), default=200, show_default=True)
    def rotate_cmd(
        data_dir: str | None,
        database_url: str | None,
        passphrase_file: str | None,
        finish: bool,
        batch: int,
    ) -> None:
        """Create a new root key version and re-wrap everything sealed by older ones (online)."""
        settings = settings_for(data_dir=data_dir, database_url=database_url)
        with _Admin(settings) as admin:
            ring, protector = admin.open(passphrase_file)
            try:
                report = root_keys.rotate(
                    admin.db,
                    ring,
                    protector,
                    admin.clock,
                    new_version=not finish,
                    grace_seconds=settings.root_key_grace_seconds,
                    batch=batch,
                    progress=lambda line: click.echo(f"secretsd: {line}", err=True),
                )
            except (RootKeyError, ProtectorUnavailable) as exc:
                raise _failure(exc) from exc
        rewrapped = sum(report.rewrapped.values())
        retired = ", ".join("legacy" if v == 0 else str(v) for v in report.retired) or "none"
        click.echo(
            f"root key version {report.version} is current; {rewrapped} blobs re-wrapped;"
            f" retired versions: {retired}"
        )

    @root_key.command("protect")
    @shared
    @click.option(
        "--with",
        "kind",
        type=click.Choice(protectors.KINDS),
        required=True,
        help="What protects the root keys from now on.",
    )
    @click.option(
        "--passphrase-file",
        "new_passphrase_file",
        type=click.Path(dir_okay=False, allow_dash=True),
        help="The new passphrase (--with passphrase), from a file or '-' for standard input.",
    )
    @click.option(
        "--current-passphrase-file",
        type=click.Path(dir_okay=False, allow_dash=True),
        help="The current passphrase, when a passphrase protects the root keys now.",
    )
    @click.option("--kms-key-id", help="External KMS key id, ARN or alias (--with aws-kms).")
    @click.option("--kms-region", help="The external KMS key's region (--with aws-kms).")
    @click.option("--kms-endpoint", help="The external KMS endpoint URL, if not AWS's own.")
    def protect_cmd(
        data_dir: str | None,
        database_url: str | None,
        kind: str,
        new_passphrase_file: str | None,
        current_passphrase_file: str | None,
        kms_key_id: str | None,
        kms_region: str | None,
        kms_endpoint: str | None,
    ) -> None:
        """Change what protects the root keys (only the root key rows are re-wrapped)."""
        settings = settings_for(data_dir=data_dir, database_url=database_url)
        with _Admin(settings) as admin:
            state = root_keys.read_state(admin.db)
            if kind == state.protector and kind == protectors.KEY_FILE:
                raise click.ClickException("the root keys are protected by the key file already")
            _, current = admin.open(current_passphrase_file)
            new: Protector
            if kind == protectors.PASSPHRASE:
                passphrase = read_passphrase(new_passphrase_file, "New passphrase", confirm=True)
                new = PassphraseProtector.new(
                    passphrase,
                    Argon2Params(
                        settings.kdf_iterations, settings.kdf_memory_kib, settings.kdf_lanes
                    ),
                )
            elif kind == protectors.AWS_KMS:
                if not kms_key_id or not kms_region:
                    raise click.UsageError("--with aws-kms needs --kms-key-id and --kms-region")
                new = AwsKmsProtector(kms_key_id, kms_region, kms_endpoint)
            else:
                new = KeyFileProtector(load_or_create_root_key(settings.root_key_path))
            try:
                root_keys.change_protector(admin.db, current, new, admin.clock)
            except (RootKeyError, ProtectorMismatch, ProtectorUnavailable) as exc:
                raise _failure(exc) from exc
        if kind != protectors.KEY_FILE and settings.root_key_path.exists():
            # It no longer opens anything in the database; leaving it would only leave a key.
            settings.root_key_path.unlink()
            click.echo(f"secretsd: removed {settings.root_key_path}", err=True)
        click.echo(f"root keys are now protected by {kind}")
        if kind == protectors.PASSPHRASE:
            click.echo(
                "servers started from now on start sealed: unseal them with `secretsd unseal`",
                err=True,
            )

    @main.command("unseal")
    @click.option("--endpoint", help="The server's URL. [http://HOST:PORT from the settings]")
    @passphrase_file
    @click.option(
        "--wait",
        type=float,
        default=30.0,
        show_default=True,
        help="Seconds to wait for the server (and its workers) to report healthy.",
    )
    def unseal_cmd(endpoint: str | None, passphrase_file: str | None, wait: float) -> None:
        """Unseal a running server whose root keys are protected by a passphrase."""
        settings = settings_for()
        url = (endpoint or f"http://{settings.host}:{settings.port}").rstrip("/")
        passphrase = read_passphrase(passphrase_file, "Passphrase")
        status, body = _call(url + "/unseal", json.dumps({"passphrase": passphrase}).encode())
        if status != 200:
            message = body.get("Message") or f"HTTP {status}"
            raise click.ClickException(f"unseal refused: {message}")
        # With several workers the supervisor unseals, then starts them: wait until they serve.
        deadline = time.monotonic() + wait
        while True:
            status, body = _call(url + "/health", None)
            if status == 200:
                click.echo("secretsd: unsealed")
                return
            if time.monotonic() > deadline:
                raise click.ClickException(f"the server did not report healthy within {wait:g} s")
            time.sleep(0.2)


def _call(url: str, data: bytes | None) -> tuple[int, dict[str, Any]]:
    if not url.startswith(("http://", "https://")):
        raise click.UsageError("--endpoint must be an http:// or https:// URL")
    request = urllib.request.Request(  # noqa: S310 (scheme checked above)
        url,
        data=data,
        method="POST" if data is not None else "GET",
        headers={"content-type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    except (urllib.error.URLError, OSError) as exc:
        # The supervisor is between its sealed phase and its workers: the socket stays bound,
        # so this is rare; treat it as "not healthy yet".
        return 0, {"Message": str(exc)}
    try:
        parsed = json.loads(raw)
    except ValueError:
        parsed = {}
    return status, parsed if isinstance(parsed, dict) else {}
