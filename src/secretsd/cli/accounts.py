"""`secretsd account create|list` and `secretsd emergency-access`: what has no AWS API.

AWS makes accounts through Organizations and lets the root user back in by email; a self-hosted
deployment needs the operator, with access to the data directory and database, to do both.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import click

from secretsd.bootstrap import NewCredentials, create_account, initialise, root_access_key
from secretsd.cli.options import SettingsFor, as_json, passphrase_file, stacked
from secretsd.cli.root_keys import read_passphrase
from secretsd.clock import SystemClock
from secretsd.crypto import protectors
from secretsd.crypto.protectors import ProtectorMismatch, ProtectorUnavailable
from secretsd.crypto.rootkey import RootKeyring
from secretsd.kms import root_keys
from secretsd.kms.root_keys import NeedsPassphrase, RootKeyError
from secretsd.settings import Settings
from secretsd.store.database import Database
from secretsd.store.repository import Repository


@contextmanager
def _opened(
    settings: Settings, passphrase_file: str | None
) -> Iterator[tuple[Database, RootKeyring]]:
    db = Database(settings.effective_database_url)
    try:
        initialise(settings, db, SystemClock(settings.clock_offset_seconds))
        passphrase = None
        if root_keys.read_state(db).protector == protectors.PASSPHRASE:
            passphrase = read_passphrase(passphrase_file, "Root key passphrase")
        keyring, _ = root_keys.open_keyring(db, settings.root_key_path, passphrase)
        yield db, keyring
    except (NeedsPassphrase, RootKeyError, ProtectorMismatch, ProtectorUnavailable) as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        db.close()


def _show(created: NewCredentials, as_json: bool, what: str) -> None:
    out = {
        "Account": created.account_id,
        "Arn": created.user_arn,
        "AccessKeyId": created.access_key_id,
        "SecretAccessKey": created.secret_access_key,
    }
    if as_json:
        click.echo(json.dumps(out))
        return
    click.echo(
        f"{what}\n"
        f"  account:               {created.account_id}\n"
        f"  principal:             {created.user_arn}\n"
        "Credentials (shown once; store them now):\n"
        "[default]\n"
        f"aws_access_key_id = {created.access_key_id}\n"
        f"aws_secret_access_key = {created.secret_access_key}"
    )


def register(main: click.Group, settings_for: SettingsFor, *options: Callable[..., Any]) -> None:
    """Add the commands to `main`; `options` are the shared --data-dir/--database options."""

    shared = stacked(options)

    @main.group("account")
    def account() -> None:
        """Accounts of this deployment (12-digit ids, each with its own IAM)."""

    @account.command("create")
    @shared
    @click.option(
        "--admin-name",
        default="admin",
        show_default=True,
        help="Name of the account's first IAM user, who gets AdministratorAccess.",
    )
    @click.option(
        "--account-id",
        help="The 12-digit id (the same account in two deployments that replicate between"
        " them); random when not given.",
    )
    @passphrase_file
    @as_json
    def create_cmd(
        data_dir: str | None,
        database_url: str | None,
        admin_name: str,
        account_id: str | None,
        passphrase_file: str | None,
        as_json: bool,
    ) -> None:
        """Create an account and its first administrator; print the administrator's key."""
        settings = settings_for(data_dir=data_dir, database_url=database_url)
        with _opened(settings, passphrase_file) as (db, keyring):
            now = SystemClock(settings.clock_offset_seconds).now_ms()
            try:
                with db.transaction(write=True) as tx:
                    created = create_account(tx, keyring, now, admin_name, account_id)
            except ValueError as exc:
                raise click.UsageError(str(exc)) from exc
        _show(created, as_json, "Created account")

    @account.command("list")
    @shared
    @as_json
    def list_cmd(data_dir: str | None, database_url: str | None, as_json: bool) -> None:
        """List the accounts, oldest first."""
        settings = settings_for(data_dir=data_dir, database_url=database_url)
        db = Database(settings.effective_database_url)
        try:
            db.migrate()
            with db.transaction() as tx:
                rows = Repository(tx).accounts_summary()
        finally:
            db.close()
        if as_json:
            click.echo(json.dumps([r._asdict() for r in rows]))
            return
        click.echo(f"{'ACCOUNT':<14}{'CREATED (UTC)':<22}{'USERS':>6}{'ROLES':>7}{'SECRETS':>9}")
        for r in rows:
            created = datetime.fromtimestamp(r.created_ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
            click.echo(f"{r.account_id:<14}{created:<22}{r.users:>6}{r.roles:>7}{r.secrets:>9}")

    @main.command("emergency-access")
    @shared
    @click.option("--account", "account_id", required=True, help="The 12-digit account id.")
    @click.option("--revoke", is_flag=True, help="Delete the account's root access keys instead.")
    @passphrase_file
    @as_json
    def emergency_cmd(
        data_dir: str | None,
        database_url: str | None,
        account_id: str,
        revoke: bool,
        passphrase_file: str | None,
        as_json: bool,
    ) -> None:
        """Issue an access key for the account's root user, to regain access.

        The root user is not limited by identity policies and may always read, replace or
        delete a secret's resource policy and a KMS key's policy in its account, so it can undo
        any lock-out. Revoke the key with --revoke once access is restored.
        """
        settings = settings_for(data_dir=data_dir, database_url=database_url)
        if revoke:
            db = Database(settings.effective_database_url)
            try:
                db.migrate()
                with db.transaction(write=True) as tx:
                    removed = Repository(tx).delete_root_access_keys(account_id)
            finally:
                db.close()
            click.echo(
                json.dumps({"Account": account_id, "Revoked": removed})
                if as_json
                else f"revoked {removed} root access key(s) of {account_id}"
            )
            return
        with _opened(settings, passphrase_file) as (db, keyring):
            with db.transaction(write=True) as tx:
                if account_id not in Repository(tx).account_ids():
                    raise click.ClickException(f"no account {account_id} in this deployment")
                now = SystemClock(settings.clock_offset_seconds).now_ms()
                created = root_access_key(tx, keyring, account_id, now)
        _show(created, as_json, "Emergency access (root user)")
