"""The root key lifecycle against real servers: online rotation, legacy (pre-versioning) blobs,
passphrase sealing, protector changes (key file, passphrase, an external KMS that is a second
secretsd) and what the database alone opens (nothing)."""

from __future__ import annotations

import json
import os
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from botocore.exceptions import ClientError
from click.testing import CliRunner

from secretsd.cli.main import main
from secretsd.crypto import aead
from secretsd.crypto.protectors import KeyFileProtector
from secretsd.crypto.rootkey import RootKeyring, header, version_of
from secretsd.kms.keyring import material_aad
from secretsd.kms.root_keys import open_keyring
from secretsd.store.database import Database
from secretsd.store.root_key_repository import SEALED_COLUMNS, RootKeyRepository, SealedRow
from support.clients import ISOLATED_AWS_ENV
from support.factories import ClientFactory, ServerFactory
from support.server import SCRUBBED_ENV_PREFIXES, ServerProcess, ServerStartError

# Cheap Argon2id and a short rotation grace period: production defaults are much stronger.
FAST = {
    "SECRETSD_KDF_ITERATIONS": "1",
    "SECRETSD_KDF_MEMORY_KIB": "64",
    "SECRETSD_KDF_LANES": "1",
    "SECRETSD_ROOT_KEY_GRACE_SECONDS": "0.3",
}


class Ran(NamedTuple):
    returncode: int
    stdout: str
    stderr: str


def secretsd(args: Sequence[str], env: Mapping[str, str] | None = None) -> Ran:
    """The `secretsd` command line, run in this process (an interpreter start per command
    would cost a second each); the environment is scrubbed like a server's."""
    environ: dict[str, str | None] = {
        name: None for name in os.environ if name.startswith(SCRUBBED_ENV_PREFIXES)
    }
    environ.update({**ISOLATED_AWS_ENV, **FAST, **(env or {})})
    result = CliRunner().invoke(main, list(args), env=environ, catch_exceptions=False)
    return Ran(result.exit_code, result.stdout, result.stderr)


def admin(server: ServerProcess, *args: str, env: Mapping[str, str] | None = None) -> str:
    where = ["--data-dir", str(server.data_dir), "--database", database_url(server)]
    done = secretsd([*args[:2], *where, *args[2:]], env)
    assert done.returncode == 0, done.stderr
    return done.stdout


def database_url(server: ServerProcess) -> str:
    return server.database_url or f"sqlite:///{(server.data_dir / 'secretsd.db').resolve()}"


def status(server: ServerProcess, env: Mapping[str, str] | None = None) -> dict[str, Any]:
    return dict(json.loads(admin(server, "root-key", "status", "--json", env=env)))


def health(server: ServerProcess) -> tuple[int, dict[str, Any]]:
    try:
        url = server.endpoint + "/health"  # always http://127.0.0.1:PORT
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _aad(table: str, row: SealedRow) -> bytes:
    if table == "kms_keys":
        return material_aad(str(row.context[0]), 1)
    if table == "kms_key_materials":
        return material_aad(str(row.context[0]), int(row.keys[1]))
    return str(row.keys[0]).encode()


def sealed_blobs(url: str) -> list[tuple[str, bytes, bytes]]:
    """(table, additional data, blob) for every root-key-sealed blob in the database."""
    db = Database(url)
    try:
        with db.transaction() as tx:
            repo = RootKeyRepository(tx)
            # No blob starts with a header of version 2**32-1: this lists them all.
            return [
                (column.table, _aad(column.table, row), row.sealed)
                for column in SEALED_COLUMNS
                for row in repo.stale_rows(column, header(2**32 - 1), None, 100_000)
            ]
    finally:
        db.close()


def key_file_ring(server: ServerProcess) -> RootKeyring:
    db = Database(database_url(server))
    try:
        return open_keyring(db, server.data_dir / "root.key")[0]
    finally:
        db.close()


class Workload:
    """Reads and writes in a loop on another thread, recording every failure."""

    def __init__(self, clients: ClientFactory, server: ServerProcess) -> None:
        self.sm = clients("secretsmanager", server=server)
        self.kms = clients("kms", server=server)
        self.key_id = self.kms.create_key()["KeyMetadata"]["KeyId"]
        self.blob = self.kms.encrypt(KeyId=self.key_id, Plaintext=b"before")["CiphertextBlob"]
        self.kms.rotate_key_on_demand(KeyId=self.key_id)
        self.sm.create_secret(Name="default-key", SecretString="v0")
        self.sm.create_secret(Name="under-cmk", SecretString="c0", KmsKeyId=self.key_id)
        self.errors: list[str] = []
        self.rounds = 0
        self.new_keys: list[tuple[str, bytes]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        for i in range(1, 5000):
            if self._stop.is_set():
                return
            try:
                self.sm.put_secret_value(SecretId="default-key", SecretString=f"v{i}")
                got = self.sm.get_secret_value(SecretId="default-key")["SecretString"]
                assert got == f"v{i}", got
                assert self.kms.decrypt(CiphertextBlob=self.blob)["Plaintext"] == b"before"
                if i % 3 == 0:
                    # New key material is sealed by whichever root key version is current.
                    key = self.kms.create_key()["KeyMetadata"]["KeyId"]
                    blob = self.kms.encrypt(KeyId=key, Plaintext=b"during")["CiphertextBlob"]
                    self.new_keys.append((key, blob))
            except Exception as exc:  # every failure is the finding
                self.errors.append(repr(exc))
            self.rounds = i

    def __enter__(self) -> Workload:
        self._thread.start()
        return self

    def wait_rounds(self, n: int) -> None:
        deadline = time.monotonic() + 60
        target = self.rounds + n
        while self.rounds < target and time.monotonic() < deadline and self._thread.is_alive():
            time.sleep(0.02)
        assert self.rounds >= target, "the workload stalled"

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def check(self, sm: Any, kms: Any) -> None:
        assert self.errors == []
        assert sm.get_secret_value(SecretId="under-cmk")["SecretString"] == "c0"
        assert sm.get_secret_value(SecretId="default-key")["SecretString"] == f"v{self.rounds}"
        assert kms.decrypt(CiphertextBlob=self.blob)["Plaintext"] == b"before"
        for _, blob in self.new_keys:
            assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"during"


def test_rotation_while_serving_retires_the_old_version(
    server_factory: ServerFactory, client_factory: ClientFactory
) -> None:
    # Two worker processes: each meets the new version on its own.
    server = server_factory(extra_args=["--workers", "2"])
    db = Database(database_url(server))
    with db.transaction() as tx:
        wrapped = RootKeyRepository(tx).wrapped_keys()
    db.close()
    assert list(wrapped) == [1]
    # An attacker who once obtained root key version 1.
    version_1 = KeyFileProtector((server.data_dir / "root.key").read_bytes()).unwrap(1, wrapped[1])
    with Workload(client_factory, server) as load:
        load.wait_rounds(3)
        out = admin(server, "root-key", "rotate")
        assert "root key version 2 is current" in out and "retired versions: 1" in out
        load.wait_rounds(6)
    assert load.new_keys, "no key was created during the rotation"
    load.check(
        client_factory("secretsmanager", server=server), client_factory("kms", server=server)
    )

    found = status(server)
    assert found["versions"] == [2] and found["current_version"] == 2
    assert found["blobs_by_version"] == {"0": 0, "2": found["blobs_total"]}
    old = RootKeyring({1: version_1}, 1)
    for table, aad, blob in sealed_blobs(database_url(server)):
        assert version_of(blob) == 2, table
        with pytest.raises(aead.SealError):
            old.open(blob, aad)
    # Neither root key is anywhere in the data dir's files (database, WAL, logs) in the clear.
    db = Database(database_url(server))
    with db.transaction() as tx:
        wrapped = RootKeyRepository(tx).wrapped_keys()
    db.close()
    file_key = (server.data_dir / "root.key").read_bytes()
    version_2 = KeyFileProtector(file_key).unwrap(2, wrapped[2])
    for path in server.data_dir.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for key in (version_1, version_2):
                assert key not in data and key.hex().encode() not in data, path
    # Access keys still authenticate on a restarted server (no cached secrets), and everything
    # still decrypts there.
    server.restart()
    load.check(
        client_factory("secretsmanager", server=server), client_factory("kms", server=server)
    )


def test_legacy_blobs_read_until_a_rotation_retires_the_legacy_key(
    server_factory: ServerFactory, client_factory: ClientFactory
) -> None:
    server = server_factory()
    sm = client_factory("secretsmanager", server=server)
    kms = client_factory("kms", server=server)
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"legacy")["CiphertextBlob"]
    sm.create_secret(Name="old", SecretString="from before versioning", KmsKeyId=key_id)
    sm.create_secret(Name="old-default", SecretString="default key")
    server.stop()
    # Turn the database into what a server older than versioned root keys left behind: every
    # blob sealed by the key file's raw bytes, no root key rows.
    ring = key_file_ring(server)
    file_key = (server.data_dir / "root.key").read_bytes()
    db = Database(database_url(server))
    with db.transaction(write=True) as tx:
        repo = RootKeyRepository(tx)
        for column in SEALED_COLUMNS:
            for row in repo.stale_rows(column, header(2**32 - 1), None, 100_000):
                aad = _aad(column.table, row)
                legacy = aead.seal(file_key, ring.open(row.sealed, aad), aad)
                assert repo.replace_sealed(column, row.keys, row.sealed, legacy)
        tx.execute("DELETE FROM root_keys")
        tx.execute("DELETE FROM root_key_state")
    db.close()

    server.start()
    found = status(server)
    assert found["legacy_active"] is True and found["blobs_by_version"]["0"] >= 4
    sm = client_factory("secretsmanager", server=server)
    kms = client_factory("kms", server=server)
    assert sm.get_secret_value(SecretId="old")["SecretString"] == "from before versioning"
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"legacy"
    # A protector change would lose the legacy key (the key file itself): refused until rotated.
    refused = secretsd(
        ["root-key", "protect", "--data-dir", str(server.data_dir), "--database",
         database_url(server), "--with", "aws-kms", "--kms-key-id", "k", "--kms-region", "x"]
    )  # fmt: skip
    assert refused.returncode != 0 and "rotate" in refused.stderr

    assert "retired versions: legacy, 1" in admin(server, "root-key", "rotate")
    found = status(server)
    assert found["legacy_active"] is False and found["versions"] == [2]
    assert found["blobs_by_version"] == {"0": 0, "2": found["blobs_total"]}
    for table, aad, sealed in sealed_blobs(database_url(server)):
        with pytest.raises(aead.SealError):
            aead.open_sealed(file_key, sealed[9:], aad)
        assert version_of(sealed) == 2, table
    assert sm.get_secret_value(SecretId="old")["SecretString"] == "from before versioning"
    assert sm.get_secret_value(SecretId="old-default")["SecretString"] == "default key"
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"legacy"


def _passphrase_file(tmp: Path, name: str, value: str) -> str:
    path = tmp / name
    path.write_text(value + "\n")
    path.chmod(0o600)
    return str(path)


def unseal(server: ServerProcess, passphrase_file: str) -> Ran:
    return secretsd(["unseal", "--endpoint", server.endpoint, "--passphrase-file", passphrase_file])


def test_passphrase_server_starts_sealed(
    server_factory: ServerFactory, client_factory: ClientFactory, tmp_path: Path
) -> None:
    server = server_factory()
    client_factory("secretsmanager", server=server).create_secret(Name="kept", SecretString="v")
    server.stop()
    right = _passphrase_file(tmp_path, "right", "correct horse battery staple")
    wrong = _passphrase_file(tmp_path, "wrong", "incorrect horse")
    admin(server, "root-key", "protect", "--with", "passphrase", "--passphrase-file", right)
    assert not (server.data_dir / "root.key").exists()

    server.start()
    code, body = health(server)
    assert code == 503 and body["status"] == "sealed"
    sm = client_factory("secretsmanager", server=server)
    with pytest.raises(ClientError) as exc:
        sm.get_secret_value(SecretId="kept")
    error = exc.value.response
    assert error["Error"]["Code"] == "ServiceUnavailableException"
    assert error["ResponseMetadata"]["HTTPStatusCode"] == 503
    assert error["Error"]["Message"].startswith("secretsd is sealed: ")
    refused = unseal(server, wrong)
    assert refused.returncode != 0 and "does not unseal" in refused.stderr
    assert health(server)[0] == 503
    done = unseal(server, right)
    assert done.returncode == 0, done.stderr
    assert health(server)[0] == 200
    assert sm.get_secret_value(SecretId="kept")["SecretString"] == "v"
    sm.create_secret(Name="after-unseal", SecretString="w")

    # Restarted: sealed again. With several workers the unseal reaches all of them.
    server.stop()
    workers = server_factory(
        database_url=database_url(server), data_dir=server.data_dir, extra_args=["--workers", "2"]
    )
    assert health(workers)[0] == 503
    done = unseal(workers, right)
    assert done.returncode == 0, done.stderr
    for _ in range(20):
        client = client_factory("secretsmanager", server=workers)
        assert client.get_secret_value(SecretId="after-unseal")["SecretString"] == "w"


def test_protector_changes_keep_data_readable_and_the_database_alone_opens_nothing(
    server_factory: ServerFactory, client_factory: ClientFactory, tmp_path: Path
) -> None:
    external = server_factory()  # plays the external KMS (an HSM's or AWS's KMS API)
    external_key = client_factory("kms", server=external).create_key()["KeyMetadata"]["Arn"]
    creds = external.credentials
    kms_env = {
        "AWS_ACCESS_KEY_ID": creds.access_key_id,
        "AWS_SECRET_ACCESS_KEY": creds.secret_access_key,
        "AWS_CONFIG_FILE": "/dev/null",
        "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
        "AWS_EC2_METADATA_DISABLED": "true",
    }

    server = server_factory()
    kms = client_factory("kms", server=server)
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key_id, Plaintext=b"payload")["CiphertextBlob"]
    client_factory("secretsmanager", server=server).create_secret(Name="s", SecretString="1")

    def readable(target: ServerProcess) -> None:
        sm = client_factory("secretsmanager", server=target)
        assert sm.get_secret_value(SecretId="s")["SecretString"] == "1"
        kms = client_factory("kms", server=target)
        assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"payload"

    # The database alone opens nothing: not without a key file, not with another one.
    stranger = ServerProcess(tmp_path / "stranger", database_url(server))
    with pytest.raises(ServerStartError, match=r"root\.key does not exist"):
        stranger.start()
    other_key = tmp_path / "stranger" / "root.key"
    other_key.write_bytes(aead.new_key())
    other_key.chmod(0o600)
    with pytest.raises(ServerStartError, match="does not open the root keys"):
        stranger.start()

    server.stop()
    passphrase = _passphrase_file(tmp_path, "p", "first passphrase")
    admin(server, "root-key", "protect", "--with", "passphrase", "--passphrase-file", passphrase)
    server.start()
    assert unseal(server, passphrase).returncode == 0
    readable(server)

    # Passphrase -> external KMS, while the server runs.
    admin(
        server, "root-key", "protect", "--with", "aws-kms", "--kms-key-id", external_key,
        "--kms-region", "us-east-1", "--kms-endpoint", external.endpoint,
        "--current-passphrase-file", passphrase, env=kms_env,
    )  # fmt: skip
    assert status(server, kms_env)["protector"] == "aws-kms"
    readable(server)
    server.stop()
    server.env.update(kms_env)
    server.start()  # auto-unsealed by the external KMS
    readable(server)
    assert "retired versions: 1" in admin(server, "root-key", "rotate", env=kms_env)
    readable(server)
    server.stop()
    # Without the external KMS's credentials the database opens nothing.
    server.env.clear()
    server.env.update({k: v for k, v in kms_env.items() if not k.startswith("AWS_SECRET")})
    server.env.pop("AWS_ACCESS_KEY_ID")
    with pytest.raises(ServerStartError, match="external KMS"):
        server.start()

    admin(server, "root-key", "protect", "--with", "key-file", env=kms_env)
    assert (server.data_dir / "root.key").stat().st_mode & 0o777 == 0o600
    server.start()
    readable(server)
    found = status(server)
    assert found["protector"] == "key-file" and found["versions"] == [2]
    # The key file protects the rows only; it seals no blob itself.
    file_key = (server.data_dir / "root.key").read_bytes()
    for _, aad, sealed in sealed_blobs(database_url(server)):
        with pytest.raises(aead.SealError):
            aead.open_sealed(file_key, sealed[9:], aad)
        assert version_of(sealed) == 2
