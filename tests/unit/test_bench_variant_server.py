"""bench/variant_server.py: the bench-only baselines reach every worker, and only they change.

The launcher patches secretsd in memory (never the product); these tests start it for real,
with two workers, and look at what it stores and answers.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import variant_server  # noqa: E402
from bench.processes import ServerProcess, clean_environ  # noqa: E402
from bench.signing import Client, Signer, read_credentials  # noqa: E402

from secretsd.audit.record import render  # noqa: E402
from secretsd.crypto.envelope import Envelope  # noqa: E402

WORKERS = 2
READS = 48
VALUE = '{"password":"bench-variant-test"}'
DENY_READS = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": "*",
            }
        ],
    }
)


def _server(tmp_path: Path, variant: str | None) -> ServerProcess:
    module = "secretsd" if variant is None else "bench.variant_server"
    data_dir = tmp_path / "data"
    argv = [sys.executable, "-m", module, "serve", "--host", "127.0.0.1", "--port", "0"]
    argv += ["--data-dir", str(data_dir), "--workers", str(WORKERS)]
    # Every read goes to the store, so every read goes through the (patched) read path.
    # The audit writer process explicitly ("auto" depends on the machine's cores).
    env = {"SECRETSD_VALUE_CACHE_SECONDS": "0", "SECRETSD_AUDIT_WRITER": "process"}
    if variant is not None:
        env[variant_server.VARIANT_ENV] = variant
    return ServerProcess("server", argv, log_path=tmp_path / "server.log", cwd=REPO, env=env)


@pytest.fixture
def started(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[ServerProcess, Signer]]:
    variant: str | None = request.param
    with _server(tmp_path, variant) as server:
        creds = read_credentials(tmp_path / "data" / "admin.credentials")
        yield server, Signer(server.host_header, creds)


def _reads_on_fresh_connections(signer: Signer) -> list[tuple[int, bytes]]:
    """Concurrent reads, each on its own connection, so that both workers answer some."""

    def one(_: int) -> tuple[int, bytes]:
        client = Client(signer)
        try:
            return client.send(signer.sign("GetSecretValue", {"SecretId": "v"}))
        finally:
            client.close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(one, range(READS)))


def _applied_pids(server: ServerProcess, variant: str) -> set[str]:
    prefix = variant_server.APPLIED_LINE.format(variant=variant, pid="")
    lines = server.log_path.read_text(errors="replace").splitlines()
    return {line[len(prefix) :] for line in lines if line.startswith(prefix)}


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ("plaintext", ("plaintext",)),
        ("no-authz", ("no-authz",)),
        ("plaintext+no-authz", ("plaintext", "no-authz")),
    ],
)
def test_variant_names_parse(text: str, names: tuple[str, ...]) -> None:
    assert variant_server.parse_variant(text) == names


@pytest.mark.parametrize("text", ["", "off", "plaintext+", "plaintext+plaintext", "no_authz"])
def test_unknown_variants_are_refused(text: str) -> None:
    with pytest.raises(variant_server.VariantError):
        variant_server.parse_variant(text)


def test_launcher_refuses_to_start_without_a_known_variant(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bench.variant_server", "serve", "--port", "0"],
        cwd=REPO,
        env=clean_environ({variant_server.VARIANT_ENV: "encryption-off"}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "variants are plaintext, no-authz, no-audit" in proc.stderr
    assert "listening" not in proc.stdout


@pytest.mark.parametrize("started", ["plaintext"], indirect=True)
def test_plaintext_stores_and_reads_the_value_itself_in_every_worker(
    started: tuple[ServerProcess, Signer], tmp_path: Path
) -> None:
    server, signer = started
    client = Client(signer)
    client.call("CreateSecret", {"Name": "v", "SecretString": VALUE})
    client.close()
    with sqlite3.connect(tmp_path / "data" / "secretsd.db") as db:
        (blob,) = db.execute("SELECT envelope FROM secret_versions").fetchone()
    envelope = Envelope.from_bytes(blob)
    assert envelope.sealed_value == VALUE.encode()
    assert envelope.wrapped_key == b""
    # A worker running the real code could not open such an envelope (DecryptionFailure).
    answers = _reads_on_fresh_connections(signer)
    assert [status for status, _ in answers] == [200] * READS
    assert {json.loads(body)["SecretString"] for _, body in answers} == {VALUE}
    # The supervisor, the workers and the audit writer process.
    assert len(_applied_pids(server, "plaintext")) == WORKERS + 2


@pytest.mark.parametrize("started", [None], indirect=True)
def test_the_real_server_denies_what_the_resource_policy_denies(
    started: tuple[ServerProcess, Signer],
) -> None:
    # The control for the next test: the same policy does deny reads on the real server.
    _, signer = started
    client = Client(signer)
    client.call("CreateSecret", {"Name": "v", "SecretString": VALUE})
    client.call("PutResourcePolicy", {"SecretId": "v", "ResourcePolicy": DENY_READS})
    client.close()
    answers = _reads_on_fresh_connections(signer)
    assert [status for status, _ in answers] == [400] * READS
    assert {json.loads(body)["__type"] for _, body in answers} == {"AccessDeniedException"}


@pytest.mark.parametrize("started", ["no-authz"], indirect=True)
def test_no_authz_allows_what_the_resource_policy_denies_in_every_worker(
    started: tuple[ServerProcess, Signer],
) -> None:
    server, signer = started
    client = Client(signer)
    client.call("CreateSecret", {"Name": "v", "SecretString": VALUE})
    client.call("PutResourcePolicy", {"SecretId": "v", "ResourcePolicy": DENY_READS})
    client.close()
    answers = _reads_on_fresh_connections(signer)
    assert [status for status, _ in answers] == [200] * READS
    assert {json.loads(body)["SecretString"] for _, body in answers} == {VALUE}
    assert len(_applied_pids(server, "no-authz")) == WORKERS + 2


def _stored_records(data_dir: Path, event_name: str) -> int:
    """Records of `event_name` committed to the audit file (read after the server stopped, so
    every worker has flushed its buffer)."""
    with sqlite3.connect(data_dir / "secretsd-audit.db") as conn:
        blocks = conn.execute("SELECT records FROM audit_blocks").fetchall()
    lines = [line for (text,) in blocks for line in text.split("\n") if line]
    return sum(1 for line in lines if render(line)["eventName"] == event_name)


@pytest.mark.parametrize(
    ("variant", "expected"), [(None, READS), ("no-audit", 0), ("audit-build", 0)]
)
def test_audit_baselines_answer_every_read_and_commit_none(
    tmp_path: Path, variant: str | None, expected: int
) -> None:
    with _server(tmp_path, variant) as server:
        signer = Signer(
            server.host_header, read_credentials(tmp_path / "data" / "admin.credentials")
        )
        client = Client(signer)
        client.call("CreateSecret", {"Name": "v", "SecretString": VALUE})
        client.close()
        answers = _reads_on_fresh_connections(signer)
        applied = _applied_pids(server, variant) if variant else set()
    assert [status for status, _ in answers] == [200] * READS
    assert _stored_records(tmp_path / "data", "GetSecretValue") == expected
    assert len(applied) == (WORKERS + 2 if variant else 0)


def test_the_audit_writer_and_resource_tracker_are_no_serving_processes(tmp_path: Path) -> None:
    from bench.processes import _helper_process

    def fake(pid: int, comm: str, cmdline: bytes) -> None:
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "comm").write_text(comm + "\n")
        (tmp_path / str(pid) / "cmdline").write_bytes(cmdline)

    fake(1, "secretsd-audit", b"python\0-c\0from multiprocessing.spawn import spawn_main")
    fake(2, "python", b"python\0-c\0from multiprocessing.resource_tracker import main")
    fake(3, "python", b"python\0-c\0from multiprocessing.spawn import spawn_main")
    assert [_helper_process(p, tmp_path) for p in (1, 2, 3, 4)] == [True, True, False, False]
