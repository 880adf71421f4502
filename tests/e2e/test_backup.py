"""`secretsd backup` / `secretsd restore` against real servers, on SQLite and PostgreSQL.

The main test, once per backend: secrets (half under a customer managed key) and an IAM user are
written through boto3; then writer threads keep calling PutSecretValue while `secretsd backup`
runs (taken again until at least one write was acknowledged during it, so the overlap is shown,
not hoped for). The backup is restored into a new database of the same backend AND of the other
one, a server started on each, and every secret checked through the API:

- every write acknowledged before the backup began is there, byte-exact;
- every version there is one that was written, byte-exact;
- the restored data is a consistent cut: each writer thread writes sequentially, so the versions
  present are a prefix of each thread's writes, AWSCURRENT/AWSPREVIOUS sit on the newest two
  versions present, and the IAM user and the key policy are there too.

The audit trail comes along (on SQLite it has a file of its own, the backup's "audit" part):
on every restored server `secretsd audit verify` passes (chains and signed digests), LookupEvents
(boto3 and `aws cloudtrail lookup-events`) shows the calls made before the backup with their
original event ids, new calls continue the same chains (the first new block follows the restored
head's sequence number and hash, and verify still passes), the restored trail holds no secret
value (its files or rows scanned, with a positive control), and a record edited in the restored
store makes verify fail.

Then the backup file is scanned, as tests/e2e/test_canary.py scans a data dir, for every value
written, every data key and KMS key material version, every root key version, the key file and
the admin's secret access key (raw, base64, hex): none is found, nor any value in the decrypted
snapshot. A positive control shows the scan would have found the envelopes in the decrypted
snapshot, and not in the file.

The refusal test (SQLite): a changed byte, a cut-off file, a wrong passphrase, a missing or wrong
root key file, a non-empty target; each leaves the target empty. A backup in the snapshot format
of before the audit part (version 1) still restores and serves.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import shutil
import sqlite3
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import boto3
import orjson
import psycopg
import pytest
from botocore.config import Config
from click.testing import CliRunner

from secretsd.cli.main import main
from secretsd.crypto.protectors import Argon2Params, KeyFileProtector
from secretsd.crypto.rootkey import read_key_file
from secretsd.crypto.stream import SealedWriter, open_sealed_stream
from secretsd.store.snapshot import AUDIT, MAIN, audit_table_names, target_is_empty
from secretsd.store.snapshot_format import SnapshotReader
from support import canary
from support.clients import ISOLATED_AWS_ENV, make_client
from support.factories import AwsCli, ClientFactory, ServerFactory
from support.postgres import PostgresServer
from support.server import SCRUBBED_ENV_PREFIXES, ServerProcess

FAST_KDF = {
    "SECRETSD_KDF_ITERATIONS": "1",
    "SECRETSD_KDF_MEMORY_KIB": "64",
    "SECRETSD_KDF_LANES": "1",
}
THREADS = 4
SECRETS_PER_THREAD = 10
FIRST_ROUNDS = 2  # PutSecretValue rounds over every secret before the backup
BACKUP_ATTEMPTS = 5
WRITER_CONFIG = Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 0})
# Chain heads signed often, so the backup holds digests that verify checks after the restore.
AUDIT_ENV = {"SECRETSD_AUDIT_DIGEST_SECONDS": "0.5"}
PASSPHRASE = "correct horse battery staple"


class Ran(NamedTuple):
    returncode: int
    stdout: str
    stderr: str


def secretsd(args: Sequence[str], env: Mapping[str, str] | None = None) -> Ran:
    """The command line in this process (an interpreter start would cost a second)."""
    environ: dict[str, str | None] = {
        name: None for name in os.environ if name.startswith(SCRUBBED_ENV_PREFIXES)
    }
    environ.update({**ISOLATED_AWS_ENV, **FAST_KDF, **(env or {})})
    result = CliRunner().invoke(main, list(args), env=environ, catch_exceptions=False)
    return Ran(result.exit_code, result.stdout, result.stderr)


def where(data_dir: Path, database_url: str | None) -> list[str]:
    return ["--data-dir", str(data_dir)] + (
        ["--database", database_url] if database_url is not None else []
    )


@dataclass(frozen=True)
class Write:
    secret: str
    token: str
    value: str | bytes
    thread: int
    seq: int  # position in its thread's sequence of writes

    @classmethod
    def new(cls, secret: str, thread: int, seq: int) -> Write:
        marker = secrets.token_hex(18)  # the needle the scan looks for
        filler = secrets.token_bytes(secrets.randbelow(1500))
        value: str | bytes = (
            marker.encode() + filler
            if seq % 3 == 0
            else marker + base64.urlsafe_b64encode(filler).decode()
        )
        return cls(secret, str(uuid.uuid4()), value, thread, seq)

    @property
    def marker(self) -> bytes:
        raw = self.value if isinstance(self.value, bytes) else self.value.encode()
        return raw[:36]

    def send(self, sm: Any, create: bool = False, kms_key: str | None = None) -> None:
        body = (
            {"SecretString": self.value}
            if isinstance(self.value, str)
            else {"SecretBinary": self.value}
        )
        if create:
            extra = {"KmsKeyId": kms_key} if kms_key else {}
            sm.create_secret(Name=self.secret, ClientRequestToken=self.token, **body, **extra)
        else:
            sm.put_secret_value(SecretId=self.secret, ClientRequestToken=self.token, **body)


@dataclass
class Writers:
    """THREADS threads, each writing its own secrets in turn, one write at a time."""

    server: ServerProcess
    clients: ClientFactory
    names: list[list[str]]
    acked: dict[str, tuple[Write, float]] = field(default_factory=dict)
    failed: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    next_seq: list[int] = field(default_factory=lambda: [0] * THREADS)
    stop: threading.Event = field(default_factory=threading.Event)

    def write(self, sm: Any, thread: int, **create: Any) -> None:
        seq = self.next_seq[thread]
        secret = self.names[thread][seq % SECRETS_PER_THREAD]
        item = Write.new(secret, thread, seq)
        self.next_seq[thread] = seq + 1
        item.send(sm, **create)
        with self.lock:
            self.acked[item.token] = (item, time.monotonic())

    def sm(self) -> Any:
        return self.clients("secretsmanager", server=self.server, config=WRITER_CONFIG)

    def first_rounds(self, kms_key: str) -> None:
        def run(thread: int) -> None:
            sm = self.sm()
            for n in range(SECRETS_PER_THREAD * (1 + FIRST_ROUNDS)):
                create = {"create": True, "kms_key": kms_key if n % 2 else None}
                self.write(sm, thread, **(create if n < SECRETS_PER_THREAD else {}))

        with ThreadPoolExecutor(THREADS) as pool:
            list(pool.map(run, range(THREADS)))

    def run_until_stopped(self) -> list[threading.Thread]:
        def run(thread: int) -> None:
            sm = self.sm()
            while not self.stop.is_set():
                try:
                    self.write(sm, thread)
                except Exception as exc:  # every failure is a finding
                    self.failed.append(repr(exc))
                    return

        threads = [threading.Thread(target=run, args=(t,)) for t in range(THREADS)]
        for thread in threads:
            thread.start()
        return threads


def _value(got: Mapping[str, Any]) -> str | bytes:
    return got["SecretString"] if "SecretString" in got else bytes(got["SecretBinary"])


def check_restored(
    server: ServerProcess, clients: ClientFactory, writers: Writers, before: float
) -> int:
    """Every check of the module docstring on a server started on a restored target; returns
    how many versions it holds."""
    sm = clients("secretsmanager", server=server)
    present: dict[int, set[int]] = {t: set() for t in range(THREADS)}
    versions = 0
    for thread_names in writers.names:
        for name in thread_names:
            listed = sm.list_secret_version_ids(SecretId=name, IncludeDeprecated=True)
            by_seq: dict[int, list[str]] = {}
            for version in listed["Versions"]:
                item, _ = writers.acked[version["VersionId"]]  # only written versions
                assert item.secret == name
                got = sm.get_secret_value(SecretId=name, VersionId=item.token)
                assert _value(got) == item.value, (name, item.token)
                present[item.thread].add(item.seq)
                by_seq[item.seq] = sorted(version.get("VersionStages", []))
                versions += 1
            newest = sorted(by_seq, reverse=True)
            assert by_seq[newest[0]] == ["AWSCURRENT"], (name, by_seq)
            assert by_seq[newest[1]] == ["AWSPREVIOUS"], (name, by_seq)
            assert all(by_seq[s] == [] for s in newest[2:]), (name, by_seq)
    for thread, seqs in present.items():
        # A prefix of the thread's writes: nothing after a gap, nothing acknowledged earlier lost.
        assert seqs == set(range(len(seqs))), (thread, sorted(seqs))
        acked_before = [w for w, at in writers.acked.values() if w.thread == thread and at < before]
        assert len(seqs) >= len(acked_before)
    iam = clients("iam", server=server)
    assert iam.get_user(UserName="backup-reader")["User"]["UserName"] == "backup-reader"
    policy = iam.get_user_policy(UserName="backup-reader", PolicyName="read")
    assert policy["PolicyDocument"]["Statement"][0]["Action"] == "secretsmanager:GetSecretValue"
    kms = clients("kms", server=server)
    assert kms.describe_key(KeyId="alias/backup-test")["KeyMetadata"]["Enabled"] is True
    return versions


def take_backup(
    source: ServerProcess, writers: Writers, out: Path, passphrase: Path
) -> tuple[float, int, str]:
    """Backups until one overlapped an acknowledged write; (start, overlapping writes, stderr)."""
    for _ in range(BACKUP_ATTEMPTS):
        start = time.monotonic()
        ran = secretsd(
            [
                "backup",
                str(out),
                *where(source.data_dir, source.database_url),
                "--passphrase-file",
                str(passphrase),
                "--force",
            ]
        )
        end = time.monotonic()
        assert ran.returncode == 0, ran.stderr
        with writers.lock:
            during = sum(1 for _, at in writers.acked.values() if start < at < end)
        if during:
            return start, during, ran.stderr
    pytest.fail(f"no write was acknowledged during any of {BACKUP_ATTEMPTS} backups")


def restore_and_serve(
    backup: Path,
    passphrase: Path,
    source: ServerProcess,
    data_dir: Path,
    database_url: str | None,
) -> ServerProcess:
    ran = secretsd(
        [
            "restore",
            str(backup),
            *where(data_dir, database_url),
            "--passphrase-file",
            str(passphrase),
            "--root-key-file",
            str(source.data_dir / "root.key"),
        ]
    )
    assert ran.returncode == 0, ran.stderr
    assert "restored" in ran.stderr
    assert (data_dir / "root.key").stat().st_mode & 0o777 == 0o600
    # Credentials are not part of a backup (their secrets are, sealed): the operator keeps
    # admin.credentials, as the source's data dir had it.
    shutil.copy(source.credentials_path, data_dir / "admin.credentials")
    return ServerProcess(data_dir, database_url, env=AUDIT_ENV).start()


def scan_backup(
    backup: Path, passphrase: Path, source: ServerProcess, writers: Writers
) -> canary.Scanner:
    url, data_dir = source.database_url, source.data_dir
    scanner = canary.Scanner()
    for item, _ in writers.acked.values():
        for form, raw in canary.encodings(item.marker):
            scanner.add(raw, f"value marker ({form}) of {item.secret}")
    materials = canary.key_materials(url, data_dir)
    for key in canary.data_keys(url, data_dir, materials):
        for form, raw in canary.encodings(key):
            scanner.add(raw, f"data key ({form})")
    file_key = read_key_file(data_dir / "root.key")
    protector = KeyFileProtector(file_key)
    root_versions = [
        protector.unwrap(int(v), bytes(w))
        for v, w in canary.query(url, data_dir, "SELECT version, wrapped FROM root_keys")
    ]
    secret_keys = [source.credentials.secret_access_key.encode()]
    for label, raws in {
        "KMS key material": [m for ms in materials.values() for m in ms],
        "root key": [*root_versions, file_key],
        "secret access key": secret_keys,
    }.items():
        for raw in raws:
            for form, encoded in canary.encodings(raw):
                scanner.add(encoded, f"{label} ({form})")
    return scanner


# -- the audit trail ---------------------------------------------------------------------------


def audit_query(server: ServerProcess, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Rows from the server's audit store: its own file on SQLite, the database otherwise."""
    if server.database_url is None:
        with sqlite3.connect(server.data_dir / "secretsd-audit.db") as conn:
            return conn.execute(sql, params).fetchall()
    with psycopg.connect(server.database_url) as pg:
        return pg.execute(sql.replace("?", "%s"), params).fetchall()  # type: ignore[arg-type]


def audit_verify(server: ServerProcess) -> tuple[int, list[dict[str, Any]]]:
    ran = secretsd(["audit", "verify", "--json", *where(server.data_dir, server.database_url)])
    chains: list[dict[str, Any]] = json.loads(ran.stdout)
    return ran.returncode, chains


def heads(server: ServerProcess) -> dict[tuple[str, str], tuple[int, str]]:
    found = audit_query(server, "SELECT account_id, region, seq, head_hash FROM audit_chains")
    return {(a, r): (int(seq), str(head)) for a, r, seq, head in found}


def lookup(clients: ClientFactory, server: ServerProcess, event_name: str) -> dict[str, Any]:
    """Every event of that name LookupEvents returns, by event id."""
    trail = clients("cloudtrail", server=server)
    found: dict[str, Any] = {}
    attributes = [{"AttributeKey": "EventName", "AttributeValue": event_name}]
    for page in trail.get_paginator("lookup_events").paginate(LookupAttributes=attributes):
        found.update({e["EventId"]: e for e in page["Events"]})
    return found


@dataclass(frozen=True)
class TrailBefore:
    """What the source's trail showed before the backup."""

    created: set[str]  # CreateSecret event ids
    alias_event: str  # the CreateAlias event id


def trail_before(clients: ClientFactory, source: ServerProcess) -> TrailBefore:
    deadline = time.monotonic() + 10
    wanted = THREADS * SECRETS_PER_THREAD
    while len(created := lookup(clients, source, "CreateSecret")) < wanted:
        assert time.monotonic() < deadline, len(created)  # records are committed in batches
        time.sleep(0.1)
    (alias,) = lookup(clients, source, "CreateAlias")
    return TrailBefore(set(created), alias)


def check_restored_trail(
    server: ServerProcess, clients: ClientFactory, aws_cli: AwsCli, before: TrailBefore
) -> None:
    """The restored trail verifies, shows the calls made before the backup, and new calls
    continue its chains."""
    code, chains = audit_verify(server)
    assert code == 0 and chains and all(c["ok"] for c in chains), chains
    assert sum(c["digests"] for c in chains) > 0  # signed digests came along and verify
    assert before.created <= set(lookup(clients, server, "CreateSecret"))
    cli = aws_cli(
        "cloudtrail",
        "lookup-events",
        "--lookup-attributes",
        "AttributeKey=EventName,AttributeValue=CreateAlias",
        server=server,
    )
    assert cli.returncode == 0, cli.stderr
    assert [e["EventId"] for e in cli.output["Events"]] == [before.alias_event]
    record = json.loads(cli.output["Events"][0]["CloudTrailEvent"])
    assert record["requestParameters"]["aliasName"] == "alias/backup-test"

    restored_heads = heads(server)
    sm = clients("secretsmanager", server=server)
    account = clients("sts", server=server).get_caller_identity()["Account"]
    chain = (account, "us-east-1")
    sm.list_secrets(MaxResults=1)
    deadline = time.monotonic() + 10
    while heads(server)[chain][0] == restored_heads[chain][0]:
        assert time.monotonic() < deadline, "no new audit record after the restore"
        time.sleep(0.05)
    seq, head_hash = restored_heads[chain]
    first_new = audit_query(
        server,
        "SELECT first_seq, prev_hash FROM audit_blocks WHERE account_id = ? AND region = ?"
        " AND first_seq > ? ORDER BY first_seq LIMIT 1",
        *chain,
        seq,
    )
    assert first_new == [(seq + 1, head_hash)]  # the same chain, continued
    code, after = audit_verify(server)
    assert code == 0 and all(c["ok"] for c in after), after
    by_chain = {(c["accountId"], c["region"]): c["records"] for c in after}
    assert by_chain[chain] > restored_heads[chain][0] == seq


def scan_restored_trail(server: ServerProcess, writers: Writers) -> None:
    """No value written is in the restored audit store (its files on SQLite, its rows either
    way); the secrets' names are (positive control)."""
    values, names = canary.Scanner(), canary.Scanner()
    for item, _ in writers.acked.values():
        for form, raw in canary.encodings(item.marker):
            values.add(raw, f"value marker ({form}) of {item.secret}")
    for thread_names in writers.names:
        for name in thread_names:
            names.add(name.encode(), name)
    stored = b"\n".join(
        "\t".join(str(v) for v in row).encode()
        for table in sorted(audit_table_names())
        for row in audit_query(server, f"SELECT * FROM {table}")  # noqa: S608 (fixed names)
    )
    where_ = server.data_dir / "audit-rows"
    assert values.scan_bytes(stored, where_) == []
    assert len({h.label for h in names.scan_bytes(stored, where_)}) == len(names)
    if server.database_url is None:
        files = sorted(server.data_dir.glob("secretsd-audit.db*"))
        assert files and values.scan_files(files) == []


def tampered_record_fails_verify(server: ServerProcess) -> None:
    """A record from before the backup, edited in the restored store: verify fails."""
    account, region, first_seq, text = audit_query(
        server,
        "SELECT account_id, region, first_seq, records FROM audit_blocks ORDER BY first_seq"
        " LIMIT 1",
    )[0]
    lines = str(text).split("\n")
    assert f'"{region}"' in lines[0]
    lines[0] = lines[0].replace(f'"{region}"', '"xx-nowhere-1"', 1)
    statement = (
        "UPDATE audit_blocks SET records = ? WHERE account_id = ? AND region = ? AND first_seq = ?"
    )
    params = ("\n".join(lines), account, region, first_seq)
    if server.database_url is None:
        with sqlite3.connect(server.data_dir / "secretsd-audit.db") as conn:
            conn.execute(statement, params)
    else:
        with psycopg.connect(server.database_url) as pg:
            pg.execute(statement.replace("?", "%s"), params)
    code, chains = audit_verify(server)
    assert code == 1
    problems = [p for c in chains for p in c["problems"]]
    assert any("hash mismatch" in p for p in problems), problems


@pytest.fixture
def workload(
    server_factory: ServerFactory, client_factory: ClientFactory
) -> tuple[ServerProcess, Writers]:
    fresh_server = server_factory(env=AUDIT_ENV)
    kms = client_factory("kms", server=fresh_server)
    key_id = kms.create_key(Description="backup test")["KeyMetadata"]["KeyId"]
    kms.create_alias(AliasName="alias/backup-test", TargetKeyId=key_id)
    iam = client_factory("iam", server=fresh_server)
    iam.create_user(UserName="backup-reader")
    iam.put_user_policy(
        UserName="backup-reader",
        PolicyName="read",
        PolicyDocument='{"Version": "2012-10-17", "Statement": [{"Effect": "Allow",'
        ' "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]}',
    )
    names = [
        [f"backup/{t}/{n}-{secrets.token_hex(3)}" for n in range(SECRETS_PER_THREAD)]
        for t in range(THREADS)
    ]
    writers = Writers(fresh_server, client_factory, names)
    writers.first_rounds("alias/backup-test")
    return fresh_server, writers


def test_backup_under_writes_restores_a_consistent_cut_on_both_backends(
    backend: str,
    request: pytest.FixtureRequest,
    workload: tuple[ServerProcess, Writers],
    client_factory: ClientFactory,
    aws_cli: AwsCli,
    tmp_path: Path,
) -> None:
    started = time.monotonic()
    source, writers = workload
    before_trail = trail_before(client_factory, source)
    passphrase = tmp_path / "passphrase"
    passphrase.write_text(PASSPHRASE + "\n")
    backup = tmp_path / "secretsd.backup"

    threads = writers.run_until_stopped()
    try:
        time.sleep(0.2)  # the writers are in full swing
        began, during, stderr = take_backup(source, writers, backup, passphrase)
    finally:
        writers.stop.set()
        for thread in threads:
            thread.join(30)
    assert writers.failed == []
    assert "backing up" in stderr  # the progress bar's label (the bar itself needs a terminal)
    assert backup.stat().st_mode & 0o777 == 0o600

    pg: PostgresServer = request.getfixturevalue("pg_server")
    targets = {
        "sqlite": (tmp_path / "restored-sqlite", None),
        "postgres": (tmp_path / "restored-postgres", pg.create_database("restored")),
    }
    counts = {}
    for target, (data_dir, url) in targets.items():
        restored = restore_and_serve(backup, passphrase, source, data_dir, url)
        if url is not None:
            # The restore analyzed what it loaded: the planner has statistics from the start.
            ((tuples,),) = canary.query(
                url, data_dir, "SELECT reltuples FROM pg_class WHERE relname = 'secrets'"
            )
            assert tuples > 0
        try:
            counts[target] = check_restored(restored, client_factory, writers, began)
            # The restored server takes writes as any other.
            sm = client_factory("secretsmanager", server=restored)
            sm.put_secret_value(SecretId=writers.names[0][0], SecretString="after restore")
            check_restored_trail(restored, client_factory, aws_cli, before_trail)
        finally:
            restored.stop()
        scan_restored_trail(restored, writers)
        tampered_record_fails_verify(restored)
    assert counts["sqlite"] == counts["postgres"]

    scanner = scan_backup(backup, passphrase, source, writers)
    hits = scanner.scan_files([backup])
    assert hits == [], [f"{h.offset}: {h.label}" for h in hits]
    # Positive control: stored envelopes are in the decrypted snapshot (base64), not in the file.
    control = canary.Scanner()
    early = sorted(str(uuid.UUID(w.token)) for w, at in writers.acked.values() if at < began)[:20]
    listed = ", ".join(f"'{token}'" for token in early)  # UUIDs, checked by uuid.UUID above
    for n, (blob,) in enumerate(
        canary.query(
            source.database_url,
            source.data_dir,
            f"SELECT envelope FROM secret_versions WHERE version_id IN ({listed})",  # noqa: S608
        )
    ):
        control.add(base64.b64encode(bytes(blob)), f"envelope {n}")
    with backup.open("rb") as sealed:
        plaintext = b"".join(open_sealed_stream(sealed, PASSPHRASE))
    assert len(control.scan_bytes(plaintext, backup)) == 20
    assert control.scan_files([backup]) == []
    # Decrypted, the snapshot holds no secret either (the audit trail's records included).
    hits = scanner.scan_bytes(plaintext, backup)
    assert hits == [], [f"{h.offset}: {h.label}" for h in hits]
    # On SQLite the trail is the backup's audit part; on PostgreSQL in the main part.
    manifest = SnapshotReader([plaintext]).manifest
    trail = {t.part: t.rows for t in manifest.tables if t.name == "audit_blocks"}
    if backend == "sqlite":
        assert trail[AUDIT] > 0 and trail[MAIN] == 0, trail
    else:
        assert AUDIT not in trail and trail[MAIN] > 0, trail
    print(
        f"{backend}: backup of {backup.stat().st_size} bytes, {len(writers.acked)} writes"
        f" ({during} acknowledged during the backup), {counts['sqlite']} versions restored,"
        f" {len(scanner)} needles, {time.monotonic() - started:.1f} s"
    )


def test_restore_refuses_damaged_backups_wrong_keys_and_busy_targets(
    boto_session: boto3.session.Session, tmp_path: Path
) -> None:
    """SQLite only: what is checked is the file and the key, not the backend."""
    source = ServerProcess(tmp_path / "source").start()
    busy = ServerProcess(tmp_path / "busy")
    try:
        _refusals(boto_session, source, busy, tmp_path)
    finally:
        busy.stop()
        source.stop()


def _sm(session: boto3.session.Session, server: ServerProcess) -> Any:
    return make_client(session, "secretsmanager", server.endpoint, server.credentials)


def _refusals(
    session: boto3.session.Session, source: ServerProcess, busy: ServerProcess, tmp_path: Path
) -> None:
    sm = _sm(session, source)
    for n in range(30):
        sm.create_secret(Name=f"refuse-{n}", SecretString=secrets.token_hex(3000))
    passphrase = tmp_path / "passphrase"
    passphrase.write_text("right passphrase")
    backup = tmp_path / "good.backup"
    ran = secretsd(
        ["backup", str(backup), *where(source.data_dir, None), "--passphrase-file", str(passphrase)]
    )
    assert ran.returncode == 0, ran.stderr
    data = backup.read_bytes()
    assert len(data) > 3 * 65536  # several chunks
    source_key = str(source.data_dir / "root.key")

    def restore(path: Path, target: Path, phrase: Path = passphrase, *extra: str) -> Ran:
        return secretsd(
            ["restore", str(path), *where(target, None), "--passphrase-file", str(phrase), *extra]
        )

    def refused(ran: Ran, words: str, target: Path) -> None:
        assert ran.returncode == 1, ran.stderr
        assert words in ran.stderr, ran.stderr
        assert target_is_empty(f"sqlite:///{target / 'secretsd.db'}")
        assert not (target / "root.key").exists()

    middle = len(data) // 2
    start = 12 + int.from_bytes(data[8:12], "big")  # chunk 0: after magic, length, preamble
    size = 4 + 65536 + 16  # a full chunk: length word, sealed bytes, tag
    damaged = {
        "a byte in the middle": data[:middle] + bytes([data[middle] ^ 1]) + data[middle + 1 :],
        "the last byte": data[:-1] + bytes([data[-1] ^ 0x80]),
        "a chunk's final flag": data[:start] + bytes([data[start] ^ 0x80]) + data[start + 1 :],
        "cut off": data[:-100],
        "cut after a chunk": data[: start + size],
        "extended": data + b"\x00",
        "chunks swapped": data[:start]
        + data[start + size : start + 2 * size]
        + data[start : start + size]
        + data[start + 2 * size :],
    }
    path = tmp_path / "damaged.backup"
    for label, content in damaged.items():
        path.write_bytes(content)
        ran = restore(path, tmp_path / "t-damaged", passphrase, "--root-key-file", source_key)
        assert ran.returncode == 1, (label, ran.stderr)
        refused(ran, "backup refused", tmp_path / "t-damaged")
    # The header (KDF parameters, salt, check value) is authenticated too: changed, it opens
    # nothing (a changed salt or check value reads as a wrong passphrase).
    header = bytearray(data)
    header[40] ^= 1
    path.write_bytes(bytes(header))
    refused(
        restore(path, tmp_path / "t-damaged", passphrase, "--root-key-file", source_key),
        "Error",
        tmp_path / "t-damaged",
    )

    wrong = tmp_path / "wrong"
    wrong.write_text("wrong passphrase")
    refused(
        restore(backup, tmp_path / "t-wrong", wrong, "--root-key-file", source_key),
        "passphrase does not open",
        tmp_path / "t-wrong",
    )

    other_key = tmp_path / "other.key"
    other_key.write_bytes(os.urandom(32))
    os.chmod(other_key, 0o600)
    refused(
        restore(backup, tmp_path / "t-key", passphrase, "--root-key-file", str(other_key)),
        "does not open the backup's root keys",
        tmp_path / "t-key",
    )
    refused(restore(backup, tmp_path / "t-nokey"), "--root-key-file", tmp_path / "t-nokey")

    # A target with data is refused without --force; with it, replaced by the backup.
    busy.start()
    _sm(session, busy).create_secret(Name="only-here", SecretString="x")
    busy.stop()
    (busy.data_dir / "root.key").unlink()
    ran = restore(backup, busy.data_dir, passphrase, "--root-key-file", source_key)
    assert ran.returncode == 1 and "not empty" in ran.stderr, ran.stderr
    ran = restore(backup, busy.data_dir, passphrase, "--root-key-file", source_key, "--force")
    assert ran.returncode == 0, ran.stderr
    shutil.copy(source.credentials_path, busy.data_dir / "admin.credentials")
    busy.start()
    listed = _sm(session, busy).list_secrets(MaxResults=100)["SecretList"]
    assert {s["Name"] for s in listed} == {f"refuse-{n}" for n in range(30)}
    value = _sm(session, busy).get_secret_value(SecretId="refuse-7")["SecretString"]
    assert value == sm.get_secret_value(SecretId="refuse-7")["SecretString"]

    busy.stop()
    _older_format_restores(session, source, backup, passphrase, tmp_path)


def _as_version_1(plaintext: bytes) -> bytes:
    """The snapshot as a secretsd before the audit part wrote it: no "part", main tables only."""
    lines = plaintext.split(b"\n")
    head = orjson.loads(lines[0])
    kept, rows, at = [], [], 1
    for table in head["tables"]:
        if table.pop("part") == MAIN:
            kept.append(table)
            rows += lines[at : at + table["rows"]]
        at += table["rows"]
    head.update(version=1, tables=kept)
    end = orjson.dumps({"end": sum(t["rows"] for t in kept)})
    return b"\n".join([orjson.dumps(head), *rows, end]) + b"\n"


def _older_format_restores(
    session: boto3.session.Session,
    source: ServerProcess,
    backup: Path,
    passphrase: Path,
    tmp_path: Path,
) -> None:
    """A version 1 backup (before the audit part) restores; the restored server starts a trail
    of its own, which verifies."""
    with backup.open("rb") as sealed:
        plaintext = b"".join(open_sealed_stream(sealed, passphrase.read_text()))
    assert SnapshotReader([plaintext]).manifest.part(AUDIT)  # the current format has one
    older = tmp_path / "version-1.backup"
    with older.open("wb") as out:
        writer = SealedWriter(out, passphrase.read_text(), Argon2Params(1, 64, 1))
        writer.write(_as_version_1(plaintext))
        writer.close()
    target = tmp_path / "t-version-1"
    ran = secretsd(
        [
            "restore",
            str(older),
            *where(target, None),
            "--passphrase-file",
            str(passphrase),
            "--root-key-file",
            str(source.data_dir / "root.key"),
        ]
    )
    assert ran.returncode == 0, ran.stderr
    shutil.copy(source.credentials_path, target / "admin.credentials")
    restored = ServerProcess(target).start()
    try:
        listed = _sm(session, restored).list_secrets(MaxResults=100)["SecretList"]
        assert {s["Name"] for s in listed} == {f"refuse-{n}" for n in range(30)}
    finally:
        restored.stop()
    code, chains = audit_verify(restored)
    assert code == 0 and chains and all(c["ok"] for c in chains), chains
