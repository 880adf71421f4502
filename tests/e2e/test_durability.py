"""An acknowledged write survives kill -9 of the server at any moment; a write that fails leaves no
partial state.

Writer threads stream CreateSecret and PutSecretValue calls (explicit ClientRequestTokens) while
the server is SIGKILLed at a random moment, three times over. After each restart every
acknowledged version must read back exactly, by VersionId; the one write per writer that was in
flight at the kill must be either wholly there or wholly absent; every listed version must be
readable and one of ours; staging labels must agree between DescribeSecret and
ListSecretVersionIds and sit where the sequence of writes puts them. Finally each in-flight write
is retried with its token and must succeed, as an SDK's retry would.
"""

from __future__ import annotations

import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from botocore.config import Config
from botocore.exceptions import ClientError

from support.factories import SecretsManagerFactory
from support.names import NameFactory
from support.server import ServerProcess

WRITERS = 4
ROUNDS = 3
VERSIONS_PER_SECRET = 6  # then a writer moves on to a new secret, so creates keep happening too
# Short timeouts: after the kill a writer should learn at once that the server is gone.
WRITER_CONFIG = Config(connect_timeout=2, read_timeout=10)
CURRENT, PREVIOUS = "AWSCURRENT", "AWSPREVIOUS"


@dataclass(frozen=True)
class Write:
    secret: str
    token: str
    value: str | bytes
    create: bool

    def send(self, sm: Any) -> None:
        key = "SecretString" if isinstance(self.value, str) else "SecretBinary"
        if self.create:
            sm.create_secret(Name=self.secret, ClientRequestToken=self.token, **{key: self.value})
        else:
            sm.put_secret_value(
                SecretId=self.secret, ClientRequestToken=self.token, **{key: self.value}
            )


def random_value() -> str | bytes:
    if secrets.randbelow(4) == 0:
        return secrets.token_bytes(1 + secrets.randbelow(256))
    return f"{secrets.token_hex(8)}-é-" + "v" * secrets.randbelow(2048)


def value_of(response: dict[str, Any]) -> str | bytes:
    if "SecretBinary" in response:
        binary: bytes = response["SecretBinary"]
        return binary
    string: str = response["SecretString"]
    return string


@dataclass
class Writer:
    """One client's stream of writes. Each secret is written by one writer only, in sequence, so
    the order of its versions is known."""

    prefix: str
    versions_per_secret: int = VERSIONS_PER_SECRET
    # Per secret, the writes the server acknowledged, in order.
    acked: dict[str, list[Write]] = field(default_factory=dict)
    # The write whose outcome is unknown (the server died under it), if any.
    pending: Write | None = None
    unexpected: list[str] = field(default_factory=list)
    _secret: str | None = None

    @property
    def acked_count(self) -> int:
        return sum(len(writes) for writes in self.acked.values())

    def next_write(self) -> Write:
        versions = len(self.acked.get(self._secret or "", []))
        if self._secret is None or versions >= self.versions_per_secret:
            name = f"{self.prefix}-{len(self.acked)}-{secrets.token_hex(4)}"
            return Write(name, str(uuid.uuid4()), random_value(), create=True)
        return Write(self._secret, str(uuid.uuid4()), random_value(), create=False)

    def record(self, write: Write) -> None:
        self.acked.setdefault(write.secret, []).append(write)
        self._secret = write.secret

    def run(self, sm: Any, killed: threading.Event) -> None:
        """Write until a call fails; failures are expected only once the server is killed."""
        while True:
            write = self.next_write()
            try:
                write.send(sm)
            except Exception as exc:
                self.pending = write
                if not killed.is_set():
                    self.unexpected.append(f"{write.secret} {write.token}: {exc!r}")
                return
            self.record(write)

    def retry_pending(self, sm: Any) -> Write | None:
        """What an SDK does after a failed call: the same call again, same token and value."""
        write = self.pending
        if write is not None:
            write.send(sm)
            self.record(write)
            self.pending = None
        return write


def run_round(
    server: ServerProcess, sm_factory: SecretsManagerFactory, writers: list[Writer]
) -> None:
    clients = [sm_factory(server=server, config=WRITER_CONFIG) for _ in writers]
    killed = threading.Event()
    threads = [
        threading.Thread(target=writer.run, args=(client, killed), name=f"writer-{i}")
        for i, (writer, client) in enumerate(zip(writers, clients, strict=True))
    ]
    for thread in threads:
        thread.start()
    time.sleep(0.4 + secrets.randbelow(800) / 1000)
    killed.set()
    server.kill9()
    for thread in threads:
        thread.join(timeout=30)
        assert not thread.is_alive(), f"{thread.name} hangs after the server was killed"


def get_version(sm: Any, secret: str, token: str) -> str | bytes | None:
    """The value of version `token`, or None when the version (or secret) does not exist."""
    try:
        return value_of(sm.get_secret_value(SecretId=secret, VersionId=token))
    except ClientError as exc:
        assert exc.response["Error"]["Code"] == "ResourceNotFoundException", exc.response
        return None


def listed_versions(sm: Any, secret: str) -> Iterator[dict[str, Any]]:
    # botocore has no paginator for ListSecretVersionIds.
    kwargs: dict[str, Any] = {"SecretId": secret, "IncludeDeprecated": True}
    while True:
        page = sm.list_secret_version_ids(**kwargs)
        yield from page["Versions"]
        if not page.get("NextToken"):
            return
        kwargs["NextToken"] = page["NextToken"]


def check_writer(sm: Any, writer: Writer) -> None:
    """Everything `writer` wrote, after a restart: its in-flight write wholly there or wholly
    absent, and every secret of its exactly as its sequence of writes left it."""
    landed: Write | None = None
    if (pending := writer.pending) is not None:
        found = get_version(sm, pending.secret, pending.token)
        assert found in (None, pending.value), f"in-flight write {pending.token} half-written"
        landed = pending if found is not None else None
    sequences = {secret: list(writes) for secret, writes in writer.acked.items()}
    if landed is not None:
        sequences.setdefault(landed.secret, []).append(landed)
    for secret, sequence in sequences.items():
        check_secret(sm, secret, sequence)


def check_secret(sm: Any, secret: str, sequence: list[Write]) -> None:
    """`sequence`: every write that reached the server for `secret`, in order."""
    by_token = {write.token: write for write in sequence}
    for write in sequence:
        assert get_version(sm, secret, write.token) == write.value, f"lost {write.token}"
    listed = {
        v["VersionId"]: sorted(v.get("VersionStages", [])) for v in listed_versions(sm, secret)
    }
    assert set(listed) == set(by_token), f"{secret}: listed {sorted(listed)}"
    described = sm.describe_secret(SecretId=secret)["VersionIdsToStages"]
    assert {k: sorted(v) for k, v in described.items()} == {k: v for k, v in listed.items() if v}, (
        secret
    )
    current = [token for token, stages in listed.items() if CURRENT in stages]
    assert current == [sequence[-1].token], f"{secret}: AWSCURRENT on {current}"
    assert get_current(sm, secret) == sequence[-1].value
    previous = [token for token, stages in listed.items() if PREVIOUS in stages]
    assert previous == [w.token for w in sequence[-2:-1]], f"{secret}: AWSPREVIOUS on {previous}"


def get_current(sm: Any, secret: str) -> str | bytes:
    return value_of(sm.get_secret_value(SecretId=secret))


def test_acknowledged_writes_survive_kill9(
    fresh_server: ServerProcess, sm_factory: SecretsManagerFactory, unique_name: NameFactory
) -> None:
    writers = [Writer(prefix=unique_name(f"w{i}")) for i in range(WRITERS)]
    acked_per_round = []
    retried: list[tuple[Writer, Write]] = []
    for _ in range(ROUNDS):
        before = sum(writer.acked_count for writer in writers)
        run_round(fresh_server, sm_factory, writers)
        for writer in writers:
            assert not writer.unexpected, writer.unexpected
        acked_per_round.append(sum(writer.acked_count for writer in writers) - before)
        fresh_server.restart()
        sm = sm_factory(server=fresh_server)
        for writer in writers:
            check_writer(sm, writer)
        retried = [(writer, write) for writer in writers if (write := writer.retry_pending(sm))]
    # The retries of the last round's in-flight writes completed them (earlier rounds' retries
    # were checked by the next round's checks).
    for writer, write in retried:
        check_secret(sm, write.secret, writer.acked[write.secret])
    # Every kill landed mid-stream, after writes had been acknowledged.
    assert all(count > 0 for count in acked_per_round), acked_per_round
    assert "Traceback" not in fresh_server.logs()


def test_acknowledged_puts_from_16_connections_survive_kill9(
    fresh_server: ServerProcess, sm_factory: SecretsManagerFactory, unique_name: NameFactory
) -> None:
    """Sixteen clients at once, mostly PutSecretValue: on SQLite their commits share fsyncs
    (group commit) and each is answered only once one covers it. After kill -9 and a restart
    every acknowledged version is there with its value and labels."""
    writers = [Writer(prefix=unique_name(f"c{i}"), versions_per_secret=1000) for i in range(16)]
    run_round(fresh_server, sm_factory, writers)
    for writer in writers:
        assert not writer.unexpected, writer.unexpected
    acked = sum(writer.acked_count for writer in writers)
    assert acked > len(writers), acked  # writes were acknowledged before the kill
    fresh_server.restart()
    sm = sm_factory(server=fresh_server)
    for writer in writers:
        check_writer(sm, writer)
    assert "Traceback" not in fresh_server.logs()
