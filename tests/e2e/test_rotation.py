"""RotateSecret and CancelRotateSecret with the built-in PostgreSQL rotators, against a real
throw-away PostgreSQL server with password authentication (scram-sha-256), through boto3 and the
AWS CLI; scheduled rotations on a server whose clock runs ahead; kill -9 mid-rotation."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from support.factories import SecretsManagerFactory, ServerFactory
from support.names import NameFactory
from support.rotation import (
    Target,
    alternate_twice,
    events,
    password_cluster,
    value,
    wait_for_events,
    wait_rotated,
    wait_until,
)
from support.server import ServerProcess, wait_for_log
from support.signing import RawClient, RawRequest, Signer


def builtin(secret_arn: str, strategy: str = "single-user") -> str:
    """The built-in rotator's function ARN in the secret's own region and account."""
    region, account = secret_arn.split(":")[3:5]
    return f"arn:aws:lambda:{region}:{account}:function:secretsd-builtin-postgresql-{strategy}"


CANNOT_INVOKE = (
    "Secrets Manager cannot invoke the specified Lambda function. Ensure that the function"
    " policy grants access to the principal secretsmanager.amazonaws.com."
)
PREVIOUS = "A previous rotation isn't complete. That rotation will be reattempted."
ROTATION_KEYS = {
    "RotationEnabled",
    "RotationLambdaARN",
    "RotationRules",
    "LastRotatedDate",
    "NextRotationDate",
}


@pytest.fixture(scope="module")
def target() -> Iterator[Target]:
    with password_cluster() as started:
        yield started


def user_name() -> str:
    return "u" + uuid.uuid4().hex[:10]


def error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str, int]:
    response = exc.value.response
    return (
        response["Error"]["Code"],
        response["Error"]["Message"],
        response["ResponseMetadata"]["HTTPStatusCode"],
    )


def test_single_user_rotation_with_boto3_and_cli(
    sm: Any, aws_cli: Any, server: ServerProcess, target: Target, unique_name: NameFactory
) -> None:
    user = user_name()
    target.create_user(user, "first-password")
    name = unique_name()
    created = sm.create_secret(Name=name, SecretString=target.creds(user, "first-password"))
    single = builtin(created["ARN"])
    before = sm.describe_secret(SecretId=name)
    assert not ROTATION_KEYS & set(before)

    rotated = sm.rotate_secret(
        SecretId=name, RotationLambdaARN=single, RotationRules={"AutomaticallyAfterDays": 1}
    )
    assert set(rotated) - {"ResponseMetadata"} == {"ARN", "Name", "VersionId"}
    new_version = rotated["VersionId"]
    assert new_version != created["VersionId"]
    wait_rotated(sm, name, new_version)
    new = value(sm, name)
    assert new["username"] == user and new["password"] != "first-password"
    assert target.logs_in(user, new["password"])
    assert not target.logs_in(user, "first-password")
    assert value(sm, name, "AWSPREVIOUS")["password"] == "first-password"

    described = sm.describe_secret(SecretId=name)
    assert described["VersionIdsToStages"] == {
        created["VersionId"]: ["AWSPREVIOUS"],
        new_version: ["AWSCURRENT"],
    }
    assert described["RotationEnabled"] is True
    assert described["RotationLambdaARN"] == single
    assert described["RotationRules"] == {"AutomaticallyAfterDays": 1}
    last, following = described["LastRotatedDate"], described["NextRotationDate"]
    # AutomaticallyAfterDays 1: the window is the whole next UTC day; its last second is the date.
    tomorrow = (last.astimezone(UTC) + timedelta(days=1)).date()
    assert following.astimezone(UTC) == datetime(
        tomorrow.year, tomorrow.month, tomorrow.day, 23, 59, 59, tzinfo=UTC
    )
    assert events(server, created["ARN"]) == ["RotationStarted", "RotationSucceeded"]
    listed = sm.list_secrets(Filters=[{"Key": "name", "Values": [name]}])["SecretList"][0]
    assert {k: listed[k] for k in ROTATION_KEYS} == {k: described[k] for k in ROTATION_KEYS}

    # A second RotateSecret reuses the stored configuration (AWS CLI this time).
    result = aws_cli("secretsmanager", "rotate-secret", "--secret-id", name)
    assert result.returncode == 0, result.stderr
    third = result.output["VersionId"]
    stages = wait_rotated(sm, name, third)["VersionIdsToStages"]
    assert stages == {new_version: ["AWSPREVIOUS"], third: ["AWSCURRENT"]}
    assert target.logs_in(user, value(sm, name)["password"])
    assert not target.logs_in(user, new["password"])

    cancelled = aws_cli("secretsmanager", "cancel-rotate-secret", "--secret-id", name)
    assert cancelled.returncode == 0, cancelled.stderr
    assert set(cancelled.output) == {"ARN", "Name"}
    after = aws_cli("secretsmanager", "describe-secret", "--secret-id", name).output
    assert after["RotationEnabled"] is False
    assert after["RotationLambdaARN"] == single
    assert after["RotationRules"] == {"AutomaticallyAfterDays": 1}
    assert "NextRotationDate" not in after and "LastRotatedDate" not in after


def test_alternating_users(sm: Any, target: Target, unique_name: NameFactory) -> None:
    master_user, user = user_name(), user_name()
    target.create_user(master_user, "master-password", superuser=True)
    target.create_user(user, "app-password")
    master = sm.create_secret(
        Name=unique_name("master"), SecretString=target.creds(master_user, "master-password")
    )
    name = unique_name("app")
    sm.create_secret(
        Name=name, SecretString=target.creds(user, "app-password", masterarn=master["ARN"])
    )
    multi = builtin(master["ARN"], "multi-user")
    started = sm.rotate_secret(
        SecretId=name,
        RotationLambdaARN=multi,
        RotationRules={"ScheduleExpression": "rate(10 days)"},
    )
    first, _ = alternate_twice(sm, target, name, user, started["VersionId"])
    assert target.logs_in(first["username"], first["password"])
    described = sm.describe_secret(SecretId=name)
    assert described["RotationRules"] == {
        "ScheduleExpression": "rate(10 days)",
        "AutomaticallyAfterDays": 10,
    }


def test_recorded_errors(
    sm: Any, server: ServerProcess, target: Target, unique_name: NameFactory
) -> None:
    name = unique_name()
    single = builtin(sm.create_secret(Name=name, SecretString=target.creds("nobody", "x"))["ARN"])

    with pytest.raises(ClientError) as exc:
        sm.rotate_secret(SecretId=name)
    assert error(exc) == (
        "InvalidRequestException",
        "No Lambda rotation function ARN is associated with this secret.",
        400,
    )
    unknown = single.replace("secretsd-builtin-postgresql-single-user", "no-such-function")
    with pytest.raises(ClientError) as exc:
        sm.rotate_secret(
            SecretId=name, RotationLambdaARN=unknown, RotationRules={"AutomaticallyAfterDays": 1}
        )
    assert error(exc) == ("AccessDeniedException", CANNOT_INVOKE, 400)
    described = sm.describe_secret(SecretId=name)
    assert not ROTATION_KEYS & set(described)
    assert list(described["VersionIdsToStages"].values()) == [["AWSCURRENT"]]

    for rules in (
        {"ScheduleExpression": "rate(2 hours)"},
        {"ScheduleExpression": "cron(30 4 * * ? *)"},
        {"ScheduleExpression": "cron(0 4 * * MON *)"},
        {"ScheduleExpression": "cron(0 4 * * ? 2030)"},
        {"ScheduleExpression": "rate(4 hours)", "Duration": "5h"},
        {"ScheduleExpression": "cron(0 20 * * ? *)", "Duration": "6h"},
        {"AutomaticallyAfterDays": 2, "ScheduleExpression": "rate(2 days)"},
    ):
        with pytest.raises(ClientError) as exc:
            sm.rotate_secret(SecretId=name, RotationLambdaARN=single, RotationRules=rules)
        assert error(exc)[0] == "InvalidParameterException", rules
    with pytest.raises(ClientError) as exc:
        sm.rotate_secret(
            SecretId=name,
            RotationLambdaARN=single,
            RotationRules={"AutomaticallyAfterDays": 1001},
        )
    assert error(exc)[0] == "ValidationException"
    assert not ROTATION_KEYS & set(sm.describe_secret(SecretId=name))

    # Without a ClientRequestToken (raw HTTP: SDKs always fill it in), before the existence check.
    client = RawClient(server.endpoint, Signer(server.credentials), timeout=30)
    try:
        response = client.send(
            RawRequest.for_operation("RotateSecret", {"SecretId": unique_name("missing")})
        )
    finally:
        client.close()
    assert response.status_code == 400
    assert response.json() == {
        "__type": "InvalidParameterException",
        "Message": "You must provide a ClientRequestToken value. We recommend a UUID-type value.",
    }


def test_rotate_immediately_false_runs_only_the_test(
    sm: Any, server: ServerProcess, target: Target, unique_name: NameFactory
) -> None:
    user = user_name()
    target.create_user(user, "stays")
    name = unique_name()
    created = sm.create_secret(Name=name, SecretString=target.creds(user, "stays"))
    single = builtin(created["ARN"])
    sm.rotate_secret(
        SecretId=name,
        RotationLambdaARN=single,
        RotationRules={"ScheduleExpression": "cron(0 3 ? * 2#1 *)", "Duration": "2h"},
        RotateImmediately=False,
    )
    wait_for_events(server, created["ARN"], "TestRotationSucceeded")
    described = sm.describe_secret(SecretId=name)
    # testSecret ran against the AWSPENDING version, which was then removed again.
    assert described["VersionIdsToStages"] == {created["VersionId"]: ["AWSCURRENT"]}
    assert described["RotationEnabled"] is True
    assert "LastRotatedDate" not in described
    # The first Monday of a month, 03:00-05:00 UTC: the date is the window's last second.
    following = described["NextRotationDate"].astimezone(UTC)
    assert following.weekday() == 0 and following.day <= 7
    assert (following.hour, following.minute, following.second) == (4, 59, 59)
    assert value(sm, name)["password"] == "stays"
    assert target.logs_in(user, "stays")
    versions = sm.list_secret_version_ids(SecretId=name, IncludeDeprecated=True)["Versions"]
    assert [v["VersionId"] for v in versions] == [created["VersionId"]]
    assert events(server, created["ARN"]) == ["TestRotationStarted", "TestRotationSucceeded"]


def test_failed_rotation_leaves_awspending_and_is_reattempted(
    sm: Any, server: ServerProcess, target: Target, unique_name: NameFactory
) -> None:
    user = user_name()
    target.create_user(user, "real-password")
    name = unique_name()
    created = sm.create_secret(Name=name, SecretString=target.creds(user, "stale-password"))
    single = builtin(created["ARN"])
    pending = sm.rotate_secret(
        SecretId=name, RotationLambdaARN=single, RotationRules={"AutomaticallyAfterDays": 7}
    )["VersionId"]
    # setSecret cannot log in with the stale password: the rotation stops there.
    wait_for_events(server, created["ARN"], "RotationFailed")
    stages = sm.describe_secret(SecretId=name)["VersionIdsToStages"]
    assert stages == {created["VersionId"]: ["AWSCURRENT"], pending: ["AWSPENDING"]}
    assert value(sm, name)["password"] == "stale-password"
    assert target.logs_in(user, "real-password")

    assert events(server, created["ARN"]) == ["RotationStarted", "RotationFailed"]
    # Cancelling names the unfinished version, which keeps AWSPENDING (AWS: remove it yourself).
    cancelled = sm.cancel_rotate_secret(SecretId=name)
    assert cancelled["VersionId"] == pending
    described = sm.describe_secret(SecretId=name)
    assert described["RotationEnabled"] is False
    assert described["VersionIdsToStages"] == stages

    target.set_password(user, "stale-password")
    with pytest.raises(ClientError) as exc:
        sm.rotate_secret(SecretId=name)
    assert error(exc) == ("InvalidRequestException", PREVIOUS, 400)
    wait_rotated(sm, name, pending)
    assert target.logs_in(user, value(sm, name)["password"])
    assert value(sm, name, "AWSPREVIOUS")["password"] == "stale-password"
    assert events(server, created["ARN"])[2:] == ["RotationStarted", "RotationSucceeded"]


class StallingProxy:
    """TCP to the target, or (while `stall` is set) connections that hang unanswered."""

    def __init__(self, port: int) -> None:
        self._target = port
        self.stall = threading.Event()
        self.stalled = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self._held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            self._held.append(conn)
            if self.stall.is_set():
                self.stalled.set()
                continue
            upstream = socket.create_connection(("127.0.0.1", self._target))
            self._held.append(upstream)
            for a, b in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._listener.close()
        for conn in self._held:
            conn.close()


def test_kill_mid_rotation_then_the_rotation_completes(
    server_factory: ServerFactory,
    sm_factory: SecretsManagerFactory,
    target: Target,
    unique_name: NameFactory,
) -> None:
    proxy = StallingProxy(target.port)
    try:
        user = user_name()
        target.create_user(user, "before-crash")
        server = server_factory()
        sm = sm_factory(server=server)
        name = unique_name()
        created = sm.create_secret(
            Name=name, SecretString=target.creds(user, "before-crash", proxy.port)
        )
        single = builtin(created["ARN"])
        proxy.stall.set()
        quiet = sm_factory(server=server, config=Config(retries={"max_attempts": 0}))

        def rotate() -> None:
            with contextlib.suppress(Exception):  # the server dies under it
                quiet.rotate_secret(
                    SecretId=name,
                    RotationLambdaARN=single,
                    RotationRules={"AutomaticallyAfterDays": 30},
                )

        caller = threading.Thread(target=rotate, daemon=True)
        caller.start()
        assert proxy.stalled.wait(15), server.logs()
        server.kill9()
        caller.join(10)
        proxy.stall.clear()

        # Past the dead worker's claim (60 s), another process resumes the rotation on its own.
        offset_at = server.log_path.stat().st_size
        later = server_factory(
            data_dir=server.data_dir,
            database_url=server.database_url,
            extra_args=("--clock-offset", "90"),
        )
        wait_for_log(later, "rotated ", offset_at, 30)
        sm = sm_factory(server=later)
        new = value(sm, name)
        assert new["password"] != "before-crash"
        assert target.logs_in(user, new["password"])
        assert value(sm, name, "AWSPREVIOUS")["password"] == "before-crash"
        stages = sm.describe_secret(SecretId=name)["VersionIdsToStages"]
        assert sorted(stages.values()) == [["AWSCURRENT"], ["AWSPREVIOUS"]]
    finally:
        proxy.close()


def _next_boundary(now: datetime, hours: int) -> datetime:
    """The first window of `rate(<hours> hours)` after `now` (they open at midnight UTC and every
    `hours` hours after it, that day)."""
    midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
    starts = [midnight + timedelta(hours=h) for h in range(0, 24, hours)]
    starts.append(midnight + timedelta(days=1))
    return next(start for start in starts if start > now)


def test_scheduled_rotations_happen_once_on_their_own(
    server_factory: ServerFactory,
    sm_factory: SecretsManagerFactory,
    target: Target,
    unique_name: NameFactory,
) -> None:
    """rate(4 hours) and a cron window, both with RotateImmediately=false; two servers whose
    clocks run into both windows serve one database: each secret rotates exactly once."""
    server = server_factory()
    sm = sm_factory(server=server)
    now = datetime.now(UTC)
    window = _next_boundary(now, 4)
    names = {}
    for kind, rules in (
        ("rate", {"ScheduleExpression": "rate(4 hours)"}),
        (
            "cron",
            {"ScheduleExpression": f"cron(0 {window.hour} * * ? *)", "Duration": "2h"},
        ),
    ):
        user = user_name()
        target.create_user(user, f"{kind}-password")
        names[kind] = unique_name(kind)
        created = sm.create_secret(
            Name=names[kind], SecretString=target.creds(user, f"{kind}-password")
        )
        single = builtin(created["ARN"])
        sm.rotate_secret(
            SecretId=names[kind],
            RotationLambdaARN=single,
            RotationRules=rules,
            RotateImmediately=False,
        )
        next_date = sm.describe_secret(SecretId=names[kind])["NextRotationDate"]
        assert next_date.astimezone(UTC) > window
        wait_for_events(server, created["ARN"], "TestRotationSucceeded")
    time.sleep(1.2)  # scheduler passes on the real clock: nothing is due yet
    for name in names.values():
        assert len(sm.list_secret_version_ids(SecretId=name)["Versions"]) == 1
    server.stop()

    offset = (window - datetime.now(UTC)).total_seconds() + 20 * 60
    mark = server.log_path.stat().st_size
    # Several schedulers on one database: two nodes on PostgreSQL, two workers of one node on
    # SQLite (one writer process per file).
    shared = server.database_url is not None
    workers = () if shared else ("--workers", "2")
    ahead = [
        server_factory(
            database_url=server.database_url,
            data_dir=server.data_dir,
            extra_args=("--clock-offset", str(int(offset)), *workers),
        )
        for _ in range(2 if shared else 1)
    ]

    wait_until(lambda: events(server).count("RotationSucceeded") >= 2, "both rotations", 30)
    time.sleep(2.2)  # more scheduler passes everywhere: nothing more may happen
    for node in ahead:
        node.stop()
    happened = events(server)
    assert happened.count("RotationStarted") == 2, happened
    assert happened.count("RotationSucceeded") == 2, happened
    assert "RotationFailed" not in happened, happened
    assert "Traceback" not in server.log_path.read_bytes()[mark:].decode(errors="replace")

    server.start()
    sm = sm_factory(server=server)
    for kind, name in names.items():
        versions = sm.list_secret_version_ids(SecretId=name, IncludeDeprecated=True)["Versions"]
        assert len(versions) == 2, (kind, versions)
        described = sm.describe_secret(SecretId=name)
        # Recorded on the clock that ran ahead: inside the window.
        rotated_at = described["LastRotatedDate"].astimezone(UTC)
        assert window <= rotated_at < window + timedelta(hours=1), (kind, rotated_at, window)
        fresh = value(sm, name)
        assert target.logs_in(fresh["username"], fresh["password"])


def test_a_replica_gets_the_value_of_a_placeholder_filled_after_it_was_copied(
    sm_factory: SecretsManagerFactory, server: ServerProcess, unique_name: NameFactory
) -> None:
    """A rotation's AWSPENDING version has no value until createSecret writes one. A replica
    that copied it before that kept it without a value for good ("a version's value never
    changes"), so once the rotation finished, the replica's AWSCURRENT had no value
    (ResourceNotFoundException, seen in CI when the dispatcher ran between the two)."""
    east, west = sm_factory(server=server), sm_factory("us-west-2", server=server)
    name = unique_name()
    # Not database credentials: the built-in rotator fails at createSecret, and the version
    # RotateSecret added stays AWSPENDING without a value.
    created = east.create_secret(
        Name=name, SecretString="not credentials", AddReplicaRegions=[{"Region": "us-west-2"}]
    )
    replica_arn = created["ARN"].replace(":us-east-1:", ":us-west-2:")
    token = east.rotate_secret(SecretId=name, RotationLambdaARN=builtin(created["ARN"]))[
        "VersionId"
    ]
    wait_for_events(server, created["ARN"], "RotationFailed")

    def replica_stages() -> dict[str, list[str]]:
        try:
            return dict(west.describe_secret(SecretId=replica_arn).get("VersionIdsToStages", {}))
        except ClientError:
            return {}

    deadline = time.monotonic() + 15
    while replica_stages().get(token) != ["AWSPENDING"]:
        assert time.monotonic() < deadline, "the placeholder never reached the replica"
        time.sleep(0.1)
    with pytest.raises(ClientError) as missing:
        west.get_secret_value(SecretId=replica_arn, VersionStage="AWSPENDING")
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
    # What createSecret does: the value, under the rotation's token.
    east.put_secret_value(
        SecretId=name,
        ClientRequestToken=token,
        SecretString="filled later",
        VersionStages=["AWSPENDING"],
    )
    deadline = time.monotonic() + 15
    while True:
        try:
            got = west.get_secret_value(SecretId=replica_arn, VersionStage="AWSPENDING")
            if got["SecretString"] == "filled later":
                break
        except ClientError as exc:
            assert exc.response["Error"]["Code"] == "ResourceNotFoundException"
        assert time.monotonic() < deadline, "the replica kept the placeholder without a value"
        time.sleep(0.1)
    assert got["VersionId"] == token


def test_replicas_refuse_rotation_and_receive_the_rotated_value(
    sm_factory: SecretsManagerFactory,
    server: ServerProcess,
    target: Target,
    unique_name: NameFactory,
) -> None:
    east, west = sm_factory(server=server), sm_factory("us-west-2", server=server)
    user = user_name()
    target.create_user(user, "replicated")
    name = unique_name()
    created = east.create_secret(
        Name=name,
        SecretString=target.creds(user, "replicated"),
        AddReplicaRegions=[{"Region": "us-west-2"}],
    )
    replica_arn = created["ARN"].replace(":us-east-1:", ":us-west-2:")
    deadline = time.monotonic() + 15
    while True:
        try:
            west.describe_secret(SecretId=replica_arn)
            break
        except ClientError:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    refused = (
        "InvalidParameterException",
        "Operation not permitted on a replica secret. Call must be made in primary secret's"
        " region.",
        400,
    )
    with pytest.raises(ClientError) as exc:
        west.rotate_secret(SecretId=replica_arn, RotationLambdaARN=builtin(replica_arn))
    assert error(exc) == refused
    with pytest.raises(ClientError) as exc:
        west.cancel_rotate_secret(SecretId=replica_arn)
    assert error(exc) == refused

    started = east.rotate_secret(SecretId=name, RotationLambdaARN=builtin(created["ARN"]))
    wait_rotated(east, name, started["VersionId"])
    rotated = value(east, name)["password"]
    assert rotated != "replicated" and target.logs_in(user, rotated)
    # Its own bound: the steps above may have used up the first one on a loaded machine.
    deadline = time.monotonic() + 30
    while value(west, replica_arn)["password"] != rotated:
        assert time.monotonic() < deadline, "the rotated value never reached the replica"
        time.sleep(0.1)
    assert value(west, replica_arn, "AWSPREVIOUS")["password"] == "replicated"
