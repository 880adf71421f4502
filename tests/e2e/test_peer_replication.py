"""Replication between two secretsd deployments (each its own data dir, database and root key):
us-east-1 served by one, us-west-2 by the other, each listing the other as a replication peer.
Through boto3 and the AWS CLI: replicas appear on the peer with PrimaryRegion and refuse writes;
either side killed with kill -9 during writes and restarted, the replicas converge with nothing
lost; promotion on the peer reaches the primary; removal deletes the peer's replica; an ordinary
client of the peer cannot call the internal replication operation.

SQLite only: the PostgreSQL path of the outbox is the one test_replication.py already covers on
both backends, and two extra PostgreSQL databases would double this test's time. So the
servers are made here, not by the per-backend fixtures."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from secretsd.service.peers import Peer, PeerRefused, call_peer
from support.clients import CliResult, make_client, run_aws_cli
from support.names import NameFactory
from support.server import Credentials, ServerProcess, scrubbed_environ

EAST, WEST = "us-east-1", "us-west-2"
REFUSED = (
    "Operation not permitted on a replica secret. Call must be made in primary secret's region."
)
NO_RETRIES = Config(connect_timeout=2, read_timeout=10, retries={"max_attempts": 0})


def secretsd(*args: str, stderr: bool = False) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "secretsd", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=scrubbed_environ(),
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stderr if stderr else done.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def credentials_file(path: Path, region: str, creds: Credentials) -> Path:
    path.write_text(
        f"[{region}]\naws_access_key_id = {creds.access_key_id}\n"
        f"aws_secret_access_key = {creds.secret_access_key}\n"
    )
    path.chmod(0o600)
    return path


def wait_for(check: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except ClientError:
            pass
        time.sleep(0.1)
    raise AssertionError("condition not reached within the timeout")


def west_status(sm: Any, name: str) -> dict[str, Any]:
    found = sm.describe_secret(SecretId=name).get("ReplicationStatus", [])
    return next((s for s in found if s["Region"] == WEST), {})


class Pair:
    """Two deployments that list each other as peers, on fixed ports (so a restart keeps the
    URL the other one has)."""

    def __init__(self, tmp: Path) -> None:
        east_dir, west_dir = tmp / "east", tmp / "west"
        # `init` names the account it made ("initialised account ID; ...") on stderr.
        said = secretsd("init", "--data-dir", str(east_dir), stderr=True)
        self.account = said.split("initialised account ", 1)[1][:12]
        # The same account in the west deployment (the replica's ARN is the primary's).
        made = json.loads(
            secretsd(
                "account",
                "create",
                "--json",
                "--account-id",
                self.account,
                "--data-dir",
                str(west_dir),
            )
        )
        self.west_creds = Credentials(made["AccessKeyId"], made["SecretAccessKey"])
        east_port, west_port = free_port(), free_port()
        self.east_creds = ServerProcess(east_dir).credentials
        east_file = credentials_file(tmp / "east-peers", WEST, self.west_creds)
        west_file = credentials_file(tmp / "west-peers", EAST, self.east_creds)
        self.east = ServerProcess(
            east_dir,
            extra_args=[
                "--port",
                str(east_port),
                "--replication-peer",
                f"{WEST}=http://127.0.0.1:{west_port}",
                "--replication-credentials",
                str(east_file),
            ],
        )
        self.west = ServerProcess(
            west_dir,
            extra_args=[
                "--port",
                str(west_port),
                "--replication-peer",
                f"{EAST}=http://127.0.0.1:{east_port}",
                "--replication-credentials",
                str(west_file),
            ],
        )
        self.home = tmp / "cli-home"
        self.home.mkdir()

    def start(self) -> None:
        self.east.start()
        self.west.start()

    def stop(self) -> None:
        self.east.stop()
        self.west.stop()

    def cli(self, server: ServerProcess, creds: Path, region: str, *args: str) -> CliResult:
        return run_aws_cli(
            args, endpoint=server.endpoint, credentials_file=creds, region=region, home=self.home
        )

    def east_sm(self, session: Any, config: Config | None = None) -> Any:
        return make_client(
            session, "secretsmanager", self.east.endpoint, self.east_creds, EAST, config
        )

    def west_sm(self, session: Any, config: Config | None = None) -> Any:
        return make_client(
            session, "secretsmanager", self.west.endpoint, self.west_creds, WEST, config
        )


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    """Shared by this module's tests (the first restarts both servers, on the same ports)."""
    made = Pair(tmp_path_factory.mktemp("peers"))
    try:
        made.start()
        yield made
    finally:
        made.stop()


def test_replication_between_deployments(
    pair: Pair, boto_session: Any, tmp_path: Path, unique_name: NameFactory
) -> None:
    east, west = pair.east_sm(boto_session), pair.west_sm(boto_session)
    names = [unique_name(f"s{i}") for i in range(3)]
    arns = {}
    for name in names:
        out = east.create_secret(
            Name=name,
            SecretString="0",
            Tags=[{"Key": "t", "Value": "1"}],
            AddReplicaRegions=[{"Region": WEST}],
        )
        assert [(s["Region"], s["Status"]) for s in out["ReplicationStatus"]] == [
            (WEST, "InProgress")
        ]
        arns[name] = out["ARN"]
    for name in names:
        wait_for(lambda name=name: west_status(east, name).get("Status") == "InSync")
    # The replica in the other deployment: the same ARN but its region, PrimaryRegion,
    # the primary's metadata, reads work and writes are refused.
    replica = west.describe_secret(SecretId=names[0])
    assert replica["ARN"] == arns[names[0]].replace(f":{EAST}:", f":{WEST}:")
    assert replica["PrimaryRegion"] == EAST and replica["Tags"] == [{"Key": "t", "Value": "1"}]
    assert west.get_secret_value(SecretId=names[0])["SecretString"] == "0"
    with pytest.raises(ClientError) as exc:
        west.put_secret_value(SecretId=names[0], SecretString="x")
    assert (exc.value.response["Error"]["Code"], exc.value.response["Error"]["Message"]) == (
        "InvalidParameterException",
        REFUSED,
    )
    cli_file = credentials_file(tmp_path / "west-cli", "default", pair.west_creds)
    described = pair.cli(
        pair.west, cli_file, WEST, "secretsmanager", "describe-secret", "--secret-id", names[0]
    )
    assert described.returncode == 0 and described.output["PrimaryRegion"] == EAST

    # Writes on the primary while the peer dies (kill -9) and comes back, then while the
    # primary's own deployment dies and comes back.
    acked: dict[str, str] = {}
    stop = threading.Event()
    clients = {"east": pair.east_sm(boto_session, NO_RETRIES)}

    def writer(name: str) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            token = str(uuid.uuid4())
            try:
                clients["east"].put_secret_value(
                    SecretId=name, SecretString=f"v{n}", ClientRequestToken=token
                )
            except Exception:
                time.sleep(0.05)
                continue
            acked[name] = token
            time.sleep(0.02)

    threads = [threading.Thread(target=writer, args=(n,)) for n in names]
    for t in threads:
        t.start()
    try:
        time.sleep(0.7)
        pair.west.kill9()
        # The primary shows the peer unreachable, with a message, while it is down.
        wait_for(
            lambda: "cannot be reached" in west_status(east, names[0]).get("StatusMessage", "")
        )
        assert west_status(east, names[0])["Status"] in ("InProgress", "Failed")
        time.sleep(0.5)
        pair.west.start()
        time.sleep(0.7)
        pair.east.kill9()
        pair.east.start()
        clients["east"] = pair.east_sm(boto_session, NO_RETRIES)
        time.sleep(0.7)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    east, west = pair.east_sm(boto_session), pair.west_sm(boto_session)
    for name in names:
        assert east.get_secret_value(SecretId=name, VersionId=acked[name])
        want = east.describe_secret(SecretId=name)["VersionIdsToStages"]
        wait_for(
            lambda name=name, want=want: (
                west.describe_secret(SecretId=name)["VersionIdsToStages"] == want
                and west_status(east, name).get("Status") == "InSync"
            ),
            timeout=40,
        )
        current = east.get_secret_value(SecretId=name)
        assert west.get_secret_value(SecretId=name)["SecretString"] == current["SecretString"]
        assert "StatusMessage" not in west_status(east, name)

    # Promotion on the peer: the primary's deployment learns it and drops the region.
    assert west.stop_replication_to_replica(SecretId=names[0])["ARN"] == replica["ARN"]
    assert "PrimaryRegion" not in west.describe_secret(SecretId=names[0])
    wait_for(lambda: west_status(east, names[0]) == {})
    west.put_secret_value(SecretId=names[0], SecretString="west's own")
    east.delete_secret(SecretId=names[0], ForceDeleteWithoutRecovery=True)
    assert west.get_secret_value(SecretId=names[0])["SecretString"] == "west's own"

    # Removing the region deletes the peer's replica.
    east.remove_regions_from_replication(SecretId=names[1], RemoveReplicaRegions=[WEST])

    def gone() -> bool:
        try:
            west.describe_secret(SecretId=names[1])
        except ClientError as exc:
            return bool(exc.response["Error"]["Code"] == "ResourceNotFoundException")
        return False

    wait_for(gone)
    # ... and the AWS CLI replicates into the peer's region again.
    east_cli = credentials_file(tmp_path / "east-cli", "default", pair.east_creds)
    done = pair.cli(
        pair.east,
        east_cli,
        EAST,
        "secretsmanager",
        "replicate-secret-to-regions",
        "--secret-id",
        names[1],
        "--add-replica-regions",
        f"Region={WEST}",
    )
    assert done.returncode == 0, done.stderr
    wait_for(lambda: west.get_secret_value(SecretId=names[1])["SecretString"].startswith("v"))

    # The internal operation is not for ordinary clients of the peer: a user with
    # SecretsManagerReadWrite is refused by the peer's policy engine.
    iam = make_client(boto_session, "iam", pair.west.endpoint, pair.west_creds, WEST, None)
    iam.create_user(UserName="rw")
    iam.attach_user_policy(
        UserName="rw", PolicyArn="arn:aws:iam::aws:policy/SecretsManagerReadWrite"
    )
    key = iam.create_access_key(UserName="rw")["AccessKey"]
    intruder = Peer(WEST, pair.west.endpoint, key["AccessKeyId"], key["SecretAccessKey"])
    forged = {
        "PrimaryARN": arns[names[2]],
        "Name": names[2],
        "CreatedMs": 0,
        "LastChangedMs": 0,
        "VersionSeq": 0,
        "Versions": [],
        "Stages": {},
    }
    wait_for(lambda: _refused(intruder, forged) == "AccessDeniedException", timeout=15)
    assert west.get_secret_value(SecretId=names[2])["SecretString"].startswith("v")


def _refused(peer: Peer, payload: dict[str, Any]) -> str:
    try:
        call_peer(peer, "ApplyReplica", payload, region=WEST)
    except PeerRefused as exc:
        return exc.code
    return ""


def test_peer_operation_asks_for_missing_values_first(pair: Pair, boto_session: Any) -> None:
    """ApplyReplica carries only the values the peer lacks: without them it answers which
    versions it needs and writes nothing; a state whose labels name unknown versions is refused."""
    east, west = pair.east_sm(boto_session), pair.west_sm(boto_session)
    arn = east.create_secret(Name="asks", SecretString="one", AddReplicaRegions=[{"Region": WEST}])[
        "ARN"
    ]
    wait_for(lambda: west_status(east, "asks").get("Status") == "InSync")
    before = west.describe_secret(SecretId="asks")["VersionIdsToStages"]
    peer = Peer(
        WEST, pair.west.endpoint, pair.west_creds.access_key_id, pair.west_creds.secret_access_key
    )
    state = {
        "PrimaryARN": arn,
        "Name": "asks",
        "CreatedMs": 0,
        "LastChangedMs": 1,
        "VersionSeq": 9,
        "Versions": [{"VersionId": "new-version", "Seq": 9, "CreatedMs": 1, "Kind": "string"}],
        "Stages": {"AWSCURRENT": "new-version"},
    }
    assert call_peer(peer, "ApplyReplica", state, region=WEST)["Missing"] == ["new-version"]
    assert west.describe_secret(SecretId="asks")["VersionIdsToStages"] == before
    broken = {**state, "Stages": {"AWSCURRENT": "no-such-version"}}
    with pytest.raises(PeerRefused) as exc:
        call_peer(peer, "ApplyReplica", broken, region=WEST)
    assert exc.value.code == "ValidationException"
