"""First-start initialisation of a data directory: root key, account, administrator key."""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from secretsd.auth.principals import new_access_key_id, new_secret_access_key, seal_secret
from secretsd.clock import Clock
from secretsd.crypto import aead
from secretsd.crypto.rootkey import RootKeyring
from secretsd.kms.root_keys import NeedsPassphrase, ensure_root_keys, open_keyring
from secretsd.settings import Settings
from secretsd.store.database import Database, Tx
from secretsd.store.iam_repository import IamRepository, UserAccessKey, UserRecord
from secretsd.store.repository import Repository


@dataclass(frozen=True)
class InitResult:
    account_id: str
    created: bool
    sealed: bool = False


def new_account_id() -> str:
    # 12 digits, never starting with 0 so it survives being read as a number.
    return str(secrets.randbelow(9 * 10**11) + 10**11)


def write_credentials_file(path: Path, access_key_id: str, secret_access_key: str) -> None:
    text = (
        "[default]\n"
        f"aws_access_key_id = {access_key_id}\n"
        f"aws_secret_access_key = {secret_access_key}\n"
    )
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


class RootKeyMismatch(Exception):
    """The database was initialised with a different root key."""


_CHECK_NAME = "root_key_check"
_CHECK_TEXT = b"secretsd root key check"


def check_root_key(repo: Repository, root_key: RootKeyring) -> None:
    """Fail loudly at start, not at the first read, when a node has the wrong root key."""
    sealed = repo.meta(_CHECK_NAME)
    if sealed is None:
        repo.set_meta_if_absent(_CHECK_NAME, root_key.seal(_CHECK_TEXT, _CHECK_NAME.encode()))
        return
    try:
        root_key.open(sealed, _CHECK_NAME.encode())
    except aead.SealError as exc:
        raise RootKeyMismatch(
            "the root key does not match this database: every node must use the root key the"
            " database was initialised with"
        ) from exc


ADMIN_POLICY_ARN = "arn:aws:iam::aws:policy/AdministratorAccess"


@dataclass(frozen=True)
class NewCredentials:
    account_id: str
    user_arn: str
    access_key_id: str
    secret_access_key: str


def new_user_id() -> str:
    return "AIDA" + new_access_key_id("")[:17].ljust(17, "A")


def create_administrator(
    tx: Tx, root_key: RootKeyring, account_id: str, now_ms: int, name: str = "admin"
) -> NewCredentials:
    """An IAM user with AdministratorAccess and one access key (returned, shown once)."""
    iam = IamRepository(tx)
    if iam.user(account_id, name) is None:
        iam.insert_user(UserRecord(account_id, name, new_user_id(), "/", (), now_ms))
    iam.attach(account_id, "user", name, ADMIN_POLICY_ARN)
    return _new_key(
        iam, root_key, account_id, name, f"arn:aws:iam::{account_id}:user/{name}", now_ms
    )


def root_access_key(tx: Tx, root_key: RootKeyring, account_id: str, now_ms: int) -> NewCredentials:
    """Emergency access: a key for the account's root user, whom identity policies cannot lock out."""
    return _new_key(
        IamRepository(tx), root_key, account_id, None, f"arn:aws:iam::{account_id}:root", now_ms
    )


def _new_key(
    iam: IamRepository,
    root_key: RootKeyring,
    account_id: str,
    user_name: str | None,
    arn: str,
    now_ms: int,
) -> NewCredentials:
    access_key_id = new_access_key_id()
    secret = new_secret_access_key()
    iam.insert_access_key(
        UserAccessKey(
            access_key_id=access_key_id,
            account_id=account_id,
            user_name=user_name,
            principal_arn=arn,
            secret_sealed=seal_secret(root_key, access_key_id, secret),
            status="Active",
            created_ms=now_ms,
        )
    )
    return NewCredentials(account_id, arn, access_key_id, secret)


class AccountExists(ValueError):
    pass


def create_account(
    tx: Tx,
    root_key: RootKeyring,
    now_ms: int,
    admin_name: str = "admin",
    account_id: str | None = None,
) -> NewCredentials:
    """`account_id`: a chosen id (the same account in two deployments that replicate between
    them, docs/replication.md); random when None."""
    if account_id is not None:
        if not (len(account_id) == 12 and account_id.isdigit()):
            raise ValueError(f"an account id is 12 digits, not {account_id!r}")
        if account_id in Repository(tx).account_ids():
            raise AccountExists(f"account {account_id} already exists")
    else:
        account_id = new_account_id()
        while account_id in Repository(tx).account_ids():
            account_id = new_account_id()
    Repository(tx).insert_account(account_id, now_ms)
    return create_administrator(tx, root_key, account_id, now_ms, admin_name)


def initialise(
    settings: Settings, db: Database, clock: Clock, root_key: RootKeyring | None = None
) -> InitResult:
    """Idempotent: creates what is missing, reuses everything that exists. Without a passphrase
    for passphrase-protected root keys, only migrates and reports `sealed`."""
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(settings.data_dir, 0o700)
    db.migrate()
    ensure_root_keys(db, settings.root_key_path, clock)
    if root_key is None:
        try:
            root_key, _ = open_keyring(db, settings.root_key_path)
        except NeedsPassphrase:
            with db.transaction() as tx:
                accounts = Repository(tx).account_ids()
            return InitResult(accounts[0] if accounts else "", created=False, sealed=True)
    with db.transaction(write=True) as tx:
        repo = Repository(tx)
        check_root_key(repo, root_key)
        accounts = repo.account_ids()
        if accounts:
            return InitResult(accounts[0], created=False)
        created = create_account(tx, root_key, clock.now_ms())
        # Written before the commit: if writing fails, the account is not created either.
        write_credentials_file(
            settings.admin_credentials_path, created.access_key_id, created.secret_access_key
        )
    return InitResult(created.account_id, created=True)
