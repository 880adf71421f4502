"""No plaintext at rest: 1,000 canary values go through the API and then not one byte of any of them,
nor of any data key or KMS key material, can be found in anything the server wrote.

The run: secrets under `aws/secretsmanager` and under a customer managed key (created through the
KMS API, used by alias); a first batch of writes; RotateKeyOnDemand on the customer managed key;
more writes; some secrets moved to the other key (UpdateSecret KmsKeyId re-encrypts their labelled
versions), some deleted and restored, a few force-deleted; then a stream of writes during which the
server is SIGKILLed, a restart, and the rest of the writes (in-flight ones retried with their
tokens). Every acknowledged canary must read back exactly. Then the server stops and every file it
wrote is scanned: its data dir (SQLite database, -wal/-shm/journal, logs, credentials, everything)
and, on PostgreSQL, the cluster's files for this database plus everything shared (WAL, xact,
global, logs) after a CHECKPOINT. Needles: each canary's random marker as UTF-8, base64 and hex; and
every data key and KMS key material version (recovered by the test from the database and the root
key file, at three points of the run so that keys replaced by re-encryption are covered too) raw,
base64 and hex.

Canary values are random (incompressible) so that PostgreSQL's TOAST compression could not hide a
plaintext copy from the scan.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
from botocore.config import Config

from support import canary
from support.factories import ClientFactory, SecretsManagerFactory, ServerFactory
from support.names import NameFactory
from support.server import ServerProcess

SECRETS = 100
CANARIES = 1000
FIRST_VERSIONS = 5  # per secret, before the key rotation: 500 canaries
SECOND_VERSIONS = 2  # per secret, after it: 200 canaries; the other 300 stream through the kill
THREADS = 8
KILL_AFTER = 120  # acknowledged writes of the last stream before the server is SIGKILLed
MOVED = [*range(0, 10), *range(50, 60)]  # default -> CMK and CMK -> default
DELETED_AND_RESTORED = range(20, 30)
FORCE_DELETED = range(90, 95)
WRITER_CONFIG = Config(connect_timeout=2, read_timeout=10, retries={"max_attempts": 0})
DEFAULT_ALIAS = "alias/aws/secretsmanager"


@dataclass(frozen=True)
class Canary:
    secret: str
    token: str
    marker: str
    value: str | bytes

    @classmethod
    def new(cls, secret: str) -> Canary:
        # 36 characters: a multiple of 3, so base64 of a value starts with base64 of its marker.
        marker = secrets.token_hex(18)
        filler = secrets.token_bytes(secrets.randbelow(600))
        if secrets.randbelow(3) == 0:
            return cls(secret, str(uuid.uuid4()), marker, marker.encode() + filler)
        text = marker + "-" + base64.urlsafe_b64encode(filler).decode()
        return cls(secret, str(uuid.uuid4()), marker, text)

    def send(self, sm: Any, *, create: bool = False, kms_key: str | None = None) -> None:
        value = (
            {"SecretString": self.value}
            if isinstance(self.value, str)
            else {"SecretBinary": self.value}
        )
        if create:
            extra = {} if kms_key is None else {"KmsKeyId": kms_key}
            sm.create_secret(Name=self.secret, ClientRequestToken=self.token, **value, **extra)
        else:
            sm.put_secret_value(SecretId=self.secret, ClientRequestToken=self.token, **value)


@dataclass
class Run:
    server: ServerProcess
    sm_factory: SecretsManagerFactory
    client_factory: ClientFactory
    acked: list[Canary] = field(default_factory=list)
    unsure: list[Canary] = field(default_factory=list)
    in_flight_at_kill: int = 0
    data_keys: set[bytes] = field(default_factory=set)
    materials: set[bytes] = field(default_factory=set)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def sm(self) -> Any:
        return self.sm_factory(server=self.server, config=WRITER_CONFIG)

    def write_all(self, work: Iterable[Callable[[Any], list[Canary]]]) -> None:
        """Each unit of work runs on a client of its thread and returns what it wrote."""
        clients = threading.local()

        def run(unit: Callable[[Any], list[Canary]]) -> None:
            if not hasattr(clients, "sm"):
                clients.sm = self.sm()
            written = unit(clients.sm)
            with self.lock:
                self.acked += written

        with ThreadPoolExecutor(THREADS) as pool:
            list(pool.map(run, work))

    def snapshot_keys(self) -> None:
        """Unwrap every data key stored right now (later re-encryption replaces some)."""
        by_arn = canary.key_materials(self.server.database_url, self.server.data_dir)
        for versions in by_arn.values():
            self.materials.update(versions)
        self.data_keys |= canary.data_keys(self.server.database_url, self.server.data_dir, by_arn)

    def stream_through_kill(self, pending: list[Canary]) -> None:
        """Writers drain `pending`; the server is SIGKILLed after KILL_AFTER acknowledgements.
        A write that fails is in flight at the kill: its outcome is unknown until retried."""
        queue = list(reversed(pending))
        done = threading.Event()
        acked_here = 0

        def writer() -> None:
            nonlocal acked_here
            sm = self.sm()
            while True:
                with self.lock:
                    if not queue:
                        return
                    item = queue.pop()
                try:
                    item.send(sm)
                except Exception:
                    with self.lock:
                        self.unsure.append(item)
                    return
                with self.lock:
                    self.acked.append(item)
                    acked_here += 1
                    if acked_here >= KILL_AFTER:
                        done.set()

        threads = [threading.Thread(target=writer) for _ in range(4)]
        for thread in threads:
            thread.start()
        assert done.wait(30), "the write stream stalled before the kill"
        self.server.kill9()
        for thread in threads:
            thread.join(30)
        self.server.start()
        # As an SDK would: retry what was in flight with the same token, then finish the stream.
        self.in_flight_at_kill = len(self.unsure)
        rest, self.unsure = self.unsure + list(reversed(queue)), []
        self.write_all(_put(c) for c in rest)


def _put(item: Canary) -> Callable[[Any], list[Canary]]:
    def unit(sm: Any) -> list[Canary]:
        item.send(sm)
        return [item]

    return unit


def _create(items: list[Canary], kms_key: str | None) -> Callable[[Any], list[Canary]]:
    def unit(sm: Any) -> list[Canary]:
        items[0].send(sm, create=True, kms_key=kms_key)
        for item in items[1:]:
            item.send(sm)
        return items

    return unit


def _value(response: dict[str, Any]) -> str | bytes:
    if "SecretBinary" in response:
        binary: bytes = response["SecretBinary"]
        return binary
    string: str = response["SecretString"]
    return string


def _postgres_files(run: Run, request: pytest.FixtureRequest) -> list[Path]:
    """This database's files and everything cluster-wide (WAL, xact, global, logs), after a
    checkpoint so that every dirty page is in them; other tests' databases are left out."""
    admin_url = request.getfixturevalue("pg_server").admin_url
    assert run.server.database_url is not None
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")
        row = conn.execute("SHOW data_directory").fetchone()
        assert row is not None
        data_dir = Path(row[0])
        dbname = run.server.database_url.rsplit("/", 1)[1].split("?")[0]
        oids = {
            name: oid
            for oid, name in conn.execute("SELECT oid, datname FROM pg_database").fetchall()
        }
    if not os.access(data_dir, os.R_OK):
        pytest.skip(f"the PostgreSQL data directory {data_dir} is not readable from here")
    others = [data_dir / "base" / str(oid) for name, oid in oids.items() if name != dbname]
    assert (data_dir / "base" / str(oids[dbname])).is_dir()
    files = list(canary.files_under(data_dir, skip=others))
    # LocalCluster logs next to its data dir.
    files += [p for p in data_dir.parent.glob("*.log") if p.is_file()]
    return files


def test_no_canary_or_key_on_disk(
    backend: str,
    server_factory: ServerFactory,
    sm_factory: SecretsManagerFactory,
    client_factory: ClientFactory,
    unique_name: NameFactory,
    request: pytest.FixtureRequest,
) -> None:
    started = time.monotonic()
    # Structured logs at debug level (a record per request): they are scanned like every file.
    fresh_server = server_factory(extra_args=["--log-format", "json", "--log-level", "debug"])
    run = Run(fresh_server, sm_factory, client_factory)
    kms = client_factory("kms", server=fresh_server)
    key_id = kms.create_key(Description="canary key")["KeyMetadata"]["KeyId"]
    alias = f"alias/canary-{secrets.token_hex(4)}"
    kms.create_alias(AliasName=alias, TargetKeyId=key_id)
    names = [unique_name(f"c{i}") for i in range(SECRETS)]
    under_cmk = set(range(SECRETS // 2, SECRETS))

    # 1. Every secret created and given its first versions, half under each key.
    run.write_all(
        _create(
            [Canary.new(names[i]) for _ in range(FIRST_VERSIONS)],
            alias if i in under_cmk else None,
        )
        for i in range(SECRETS)
    )
    run.snapshot_keys()

    # 2. Rotate the customer managed key, write more, move secrets between keys, delete/restore.
    kms.rotate_key_on_demand(KeyId=key_id)
    run.write_all(
        _put(Canary.new(names[i])) for i in range(SECRETS) for _ in range(SECOND_VERSIONS)
    )
    run.snapshot_keys()
    sm = sm_factory(server=fresh_server)
    for i in MOVED:
        sm.update_secret(SecretId=names[i], KmsKeyId=DEFAULT_ALIAS if i in under_cmk else alias)
    for i in DELETED_AND_RESTORED:
        sm.delete_secret(SecretId=names[i], RecoveryWindowInDays=7)
        sm.restore_secret(SecretId=names[i])
    run.snapshot_keys()
    for i in FORCE_DELETED:
        sm.delete_secret(SecretId=names[i], ForceDeleteWithoutRecovery=True)

    # 3. The rest through a kill -9 and a restart.
    remaining = CANARIES - len(run.acked)
    live = [i for i in range(SECRETS) if i not in FORCE_DELETED]
    run.stream_through_kill([Canary.new(names[live[n % len(live)]]) for n in range(remaining)])
    assert len(run.acked) == CANARIES
    assert not run.unsure

    # 4. Every acknowledged canary reads back exactly (force-deleted secrets are gone).
    gone = {names[i] for i in FORCE_DELETED}
    readable = [c for c in run.acked if c.secret not in gone]
    sm = sm_factory(server=fresh_server)

    def read(item: Canary) -> bool:
        got = sm.get_secret_value(SecretId=item.secret, VersionId=item.token)
        return _value(got) == item.value

    with ThreadPoolExecutor(THREADS) as pool:
        wrong = [
            c.token for c, ok in zip(readable, pool.map(read, readable), strict=True) if not ok
        ]
    assert wrong == []
    # The moved secrets' labelled versions now sit under their new key.
    listed = sm.list_secret_version_ids(SecretId=names[MOVED[0]])["Versions"]
    assert any(v.get("KmsKeyIds") for v in listed)
    run.snapshot_keys()
    fresh_server.stop()

    # 5. Scan every file the server wrote.
    scanner = canary.Scanner()
    for item in run.acked:
        for form, raw in canary.encodings(item.marker.encode()):
            scanner.add(raw, f"canary marker ({form}) of {item.secret}")
    for key in run.data_keys:
        for form, raw in canary.encodings(key):
            scanner.add(raw, f"data key ({form})")
    for material in run.materials:
        for form, raw in canary.encodings(material):
            scanner.add(raw, f"KMS key material ({form})")
    # Positive control: the admin's secret access key is meant to be in admin.credentials, in
    # plaintext, and the scan must find it there (and only there).
    control = fresh_server.credentials.secret_access_key.encode()
    scanner.add(control, "control")
    files = list(canary.files_under(fresh_server.data_dir))
    if backend == "postgres":
        files += _postgres_files(run, request)
    found = scanner.scan_files(files)
    controls = [h for h in found if h.label == "control"]
    hits = [h for h in found if h.label != "control"]
    report = (
        f"{backend}: {len(run.acked)} canaries ({run.in_flight_at_kill} in flight at the kill),"
        f" {len(run.data_keys)} data keys,"
        f" {len(run.materials)} key materials, {scanner.files_scanned} files,"
        f" {scanner.bytes_scanned} bytes scanned, {len(hits)} hits,"
        f" {time.monotonic() - started:.1f} s"
    )
    print(report)
    assert len(run.data_keys) >= CANARIES
    assert [h.path.name for h in controls] == ["admin.credentials"]
    assert hits == [], report + "\n" + "\n".join(f"{h.path}@{h.offset}: {h.label}" for h in hits)
    # Every line on stderr (both runs, across the kill) is one JSON object; the requests are in.
    records = []
    for line in fresh_server.log_path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            raise AssertionError(f"not a JSON log line: {line[:300]!r}") from None
    assert all({"time", "level", "logger", "message"} <= r.keys() for r in records)
    assert sum(r.get("operation") == "PutSecretValue" for r in records) >= CANARIES // 2
