"""`secretsd audit verify|public-key`: check the audit trail's chains and signed digests."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from secretsd.audit import verify as verifier
from secretsd.audit.chain import RootKeySigners
from secretsd.cli.accounts import _opened
from secretsd.cli.options import SettingsFor, as_json, passphrase_file, stacked
from secretsd.crypto.rootkey import RootKeyring
from secretsd.settings import Settings
from secretsd.store.audit_repository import open_audit_database
from secretsd.store.database import Database


def _audit_db(settings: Settings) -> Database:
    return open_audit_database(settings.audit_database_url, settings.effective_database_url)


def _key_versions(db: Database, ring: RootKeyring) -> list[int]:
    with db.transaction() as tx:
        rows = tx.all("SELECT DISTINCT key_version FROM audit_digests ORDER BY key_version")
    return sorted({int(r["key_version"]) for r in rows} | {ring.current_version})


def register(main: click.Group, settings_for: SettingsFor, *options: Callable[..., Any]) -> None:
    shared = stacked(options)

    @main.group("audit")
    def audit() -> None:
        """The audit trail: verify its integrity, export the digest public keys."""

    @audit.command("public-key")
    @shared
    @passphrase_file
    def public_key_cmd(
        data_dir: str | None, database_url: str | None, passphrase_file: str | None
    ) -> None:
        """Print the digest-signing public keys (JSON), for `verify --public-keys` elsewhere."""
        settings = settings_for(data_dir=data_dir, database_url=database_url)
        with _opened(settings, passphrase_file) as (_, ring):
            signers = RootKeySigners(ring)
            db = _audit_db(settings)
            try:
                versions = _key_versions(db, ring)
            finally:
                db.close()
            keys = [
                {"rootKeyVersion": v, "publicKey": key}
                for v in versions
                if (key := signers.public_key(v)) is not None
            ]
        click.echo(json.dumps({"algorithm": "Ed25519", "keys": keys}, indent=1))

    @audit.command("verify")
    @shared
    @click.option("--account", help="Only this account's chains.")
    @click.option("--region", help="Only this region's chains.")
    @click.option(
        "--public-keys",
        type=click.Path(dir_okay=False, exists=True),
        help="Trust these keys (from `audit public-key`) instead of the root key.",
    )
    @passphrase_file
    @as_json
    def verify_cmd(
        data_dir: str | None,
        database_url: str | None,
        account: str | None,
        region: str | None,
        public_keys: str | None,
        passphrase_file: str | None,
        as_json: bool,
    ) -> None:
        """Check every record's hash chain and every signed digest; exit 1 on any problem."""
        settings = settings_for(data_dir=data_dir, database_url=database_url)
        if public_keys is not None:
            listed = json.loads(Path(public_keys).read_text())
            known = {int(k["rootKeyVersion"]): str(k["publicKey"]) for k in listed["keys"]}
            db = _audit_db(settings)
            try:
                reports = _verify(db, account, region, known.get)
            finally:
                db.close()
        else:
            with _opened(settings, passphrase_file) as (_, ring):
                db = _audit_db(settings)
                try:
                    reports = _verify(db, account, region, RootKeySigners(ring).public_key)
                finally:
                    db.close()
        _show(reports, as_json)
        if not all(r.ok for r in reports):
            raise SystemExit(1)


def _verify(
    db: Database, account: str | None, region: str | None, trusted: verifier.TrustedKeys
) -> list[verifier.ChainReport]:
    return [
        verifier.verify_chain(db, a, r, trusted)
        for a, r in verifier.chains(db)
        if (account is None or a == account) and (region is None or r == region)
    ]


def _show(reports: list[verifier.ChainReport], as_json: bool) -> None:
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "accountId": r.account_id,
                        "region": r.region,
                        "ok": r.ok,
                        "records": r.records,
                        "digests": r.digests,
                        "unsignedRecords": r.unsigned_tail,
                        "problems": r.problems,
                    }
                    for r in reports
                ],
                indent=1,
            )
        )
        return
    if not reports:
        click.echo("no audit chains to verify")
    for r in reports:
        state = "OK" if r.ok else "FAILED"
        click.echo(
            f"{r.account_id} {r.region}: {state} ({r.records} records, {r.digests} digests,"
            f" {r.unsigned_tail} after the last digest)"
        )
        for problem in r.problems:
            click.echo(f"  - {problem}")
