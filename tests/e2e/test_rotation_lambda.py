"""Rotation with Lambda functions deployed as on AWS: PostgreSQL rotation functions written in
the style of AWS's templates (tests/functions/), packed into a zip with their own database driver
(pg8000 and its dependencies, copied from this environment), deployed with `aws lambda
create-function --zip-file`, and invoked by RotateSecret against a throw-away PostgreSQL server;
functions that fail at each step; kill -9 of the server while a step runs."""

from __future__ import annotations

import importlib.metadata
import io
import itertools
import json
import tempfile
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from support.factories import AwsCli, ClientFactory, SecretsManagerFactory, ServerFactory
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
from support.server import ServerProcess

pytestmark = pytest.mark.parametrize("backend", ["sqlite"], scope="session")

FUNCTIONS = Path(__file__).resolve().parent.parent / "functions"
# The driver and what it needs, as `pip install --target ./package pg8000` would lay them out.
DRIVER_DISTRIBUTIONS = ("pg8000", "scramp", "asn1crypto", "python-dateutil", "six")
STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")
PREVIOUS = "A previous rotation isn't complete. That rotation will be reattempted."
LAMBDA_TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "lambda.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
)


def rotation_policy(*secret_arns: str) -> str:
    """What AWS's documentation gives a rotation function's execution role."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": [
                        "secretsmanager:DescribeSecret",
                        "secretsmanager:GetSecretValue",
                        "secretsmanager:PutSecretValue",
                        "secretsmanager:UpdateSecretVersionStage",
                    ],
                    "Resource": list(secret_arns),
                },
                {
                    "Effect": "Allow",
                    "Action": "secretsmanager:GetRandomPassword",
                    "Resource": "*",
                },
            ],
        }
    )


def function_zip(strategy: str) -> bytes:
    """The function's own code, the fault-injecting wrapper, and the driver's installed files."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.write(
            FUNCTIONS / f"postgresql_{strategy}" / "lambda_function.py", "lambda_function.py"
        )
        archive.write(FUNCTIONS / "faults.py", "faults.py")
        for name in DRIVER_DISTRIBUTIONS:
            dist = importlib.metadata.distribution(name)
            for file in dist.files or ():
                if "__pycache__" in file.parts or file.parts[0].startswith(".."):
                    continue
                archive.write(Path(str(dist.locate_file(file))), str(file))
    return buffer.getvalue()


@pytest.fixture(scope="module")
def target() -> Iterator[Target]:
    with password_cluster() as started:
        yield started


@pytest.fixture(scope="module")
def single_zip() -> bytes:
    return function_zip("single_user")


def user_name() -> str:
    return "l" + uuid.uuid4().hex[:10]


def deploy(
    client_factory: ClientFactory,
    server: ServerProcess,
    name: str,
    code: bytes,
    secret_arns: list[str],
    *,
    handler: str = "lambda_function.lambda_handler",
    timeout: int = 30,
) -> str:
    """Role, function and Secrets Manager's permission, with boto3; the function's ARN."""
    iam = client_factory("iam", server=server)
    lam = client_factory("lambda", server=server)
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=LAMBDA_TRUST)["Role"]["Arn"]
    iam.put_role_policy(
        RoleName=name, PolicyName="rotation", PolicyDocument=rotation_policy(*secret_arns)
    )
    arn: str = lam.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler=handler,
        Code={"ZipFile": code},
        Timeout=timeout,
    )["FunctionArn"]
    lam.add_permission(
        FunctionName=name,
        StatementId="SecretsManagerAccess",
        Action="lambda:InvokeFunction",
        Principal="secretsmanager.amazonaws.com",
    )
    return arn


def log_messages(aws_cli: AwsCli, function: str, *args: str, **kwargs: Any) -> list[str]:
    found = aws_cli(
        "logs", "filter-log-events", "--log-group-name", f"/aws/lambda/{function}", *args, **kwargs
    )
    assert found.returncode == 0, found.stderr
    return [str(e["message"]) for e in found.output["events"]]


def test_single_user_function_deployed_with_the_cli(
    aws_cli: AwsCli,
    sm: Any,
    server: ServerProcess,
    target: Target,
    single_zip: bytes,
    tmp_path: Path,
    unique_name: NameFactory,
) -> None:
    user = user_name()
    target.create_user(user, "first-password")
    name = unique_name()
    created = sm.create_secret(Name=name, SecretString=target.creds(user, "first-password"))
    account = created["ARN"].split(":")[4]
    function = unique_name("fn")[-64:]
    package = tmp_path / "function.zip"
    package.write_bytes(single_zip)

    def cli(*args: str) -> dict[str, Any]:
        result = aws_cli(*args)
        assert result.returncode == 0, (args, result.stderr)
        output: dict[str, Any] = result.output or {}
        return output

    role = cli("iam", "create-role", "--role-name", function, "--assume-role-policy-document",
               LAMBDA_TRUST)["Role"]["Arn"]  # fmt: skip
    cli("iam", "put-role-policy", "--role-name", function, "--policy-name", "rotation",
        "--policy-document", rotation_policy(created["ARN"]))  # fmt: skip
    made = cli("lambda", "create-function", "--function-name", function, "--runtime",
               "python3.12", "--role", role, "--handler", "lambda_function.lambda_handler",
               "--zip-file", f"fileb://{package}", "--timeout", "30")  # fmt: skip
    assert made["FunctionArn"] == f"arn:aws:lambda:us-east-1:{account}:function:{function}"
    cli("lambda", "add-permission", "--function-name", function, "--statement-id",
        "SecretsManagerAccess", "--action", "lambda:InvokeFunction", "--principal",
        "secretsmanager.amazonaws.com", "--source-account", account)  # fmt: skip
    rotated = cli("secretsmanager", "rotate-secret", "--secret-id", name,
                  "--rotation-lambda-arn", made["FunctionArn"], "--rotation-rules",
                  "AutomaticallyAfterDays=30")  # fmt: skip
    assert set(rotated) == {"ARN", "Name", "VersionId"}

    described = wait_rotated(sm, name, rotated["VersionId"])
    assert described["VersionIdsToStages"] == {
        created["VersionId"]: ["AWSPREVIOUS"],
        rotated["VersionId"]: ["AWSCURRENT"],
    }
    assert described["RotationLambdaARN"] == made["FunctionArn"]
    assert described["RotationRules"] == {"AutomaticallyAfterDays": 30}
    new = value(sm, name)
    assert new["username"] == user and new["password"] != "first-password"
    assert target.logs_in(user, new["password"])
    assert not target.logs_in(user, "first-password")
    assert value(sm, name, "AWSPREVIOUS")["password"] == "first-password"
    assert events(server, created["ARN"]) == ["RotationStarted", "RotationSucceeded"]

    # The function's output, each step's own lines, and its driver from its own zip.
    messages = log_messages(aws_cli, function)
    for line in (
        "createSecret: Successfully put secret",
        "setSecret: Successfully set password",
        "testSecret: Successfully signed into PostgreSQL",
        "finishSecret: Successfully set AWSCURRENT stage",
    ):
        assert any(line in m for m in messages), line
    loaded = [m for m in messages if m.startswith("pg8000 loaded from")]
    assert loaded and all("site-packages" not in m for m in loaded), loaded
    assert not [m for m in messages if new["password"] in m or "first-password" in m]

    # Again with the stored configuration (boto3): the warm function rotates once more.
    again = sm.rotate_secret(SecretId=name)["VersionId"]
    wait_rotated(sm, name, again)
    third = value(sm, name)["password"]
    assert target.logs_in(user, third) and not target.logs_in(user, new["password"])
    assert value(sm, name, "AWSPREVIOUS")["password"] == new["password"]


def test_alternating_users_function(
    client_factory: ClientFactory,
    sm: Any,
    server: ServerProcess,
    target: Target,
    unique_name: NameFactory,
) -> None:
    master_user, user = user_name(), user_name()
    target.create_user(master_user, "master-password", superuser=True)
    target.create_user(user, "app-password")
    master = sm.create_secret(
        Name=unique_name("master"), SecretString=target.creds(master_user, "master-password")
    )
    name = unique_name("app")
    created = sm.create_secret(
        Name=name, SecretString=target.creds(user, "app-password", masterarn=master["ARN"])
    )
    function = deploy(
        client_factory,
        server,
        unique_name("fn")[-64:],
        function_zip("multi_user"),
        [created["ARN"], master["ARN"]],
    )
    first_token = sm.rotate_secret(
        SecretId=name, RotationLambdaARN=function, RotationRules={"AutomaticallyAfterDays": 30}
    )["VersionId"]
    first, _ = alternate_twice(sm, target, name, user, first_token)
    assert not target.logs_in(user, "app-password")
    assert target.logs_in(first["username"], first["password"])
    assert value(sm, name, "AWSPREVIOUS") == first


def test_failing_functions_leave_aws_state_and_a_readable_log(
    aws_cli: AwsCli,
    client_factory: ClientFactory,
    sm: Any,
    server: ServerProcess,
    target: Target,
    single_zip: bytes,
    unique_name: NameFactory,
) -> None:
    """At each step a function that raises, times out or returns what is not JSON: AWSPENDING
    stays, AWSCURRENT does not move, the next RotateSecret answers "A previous rotation isn't
    complete" and reattempts the rotation, which then completes."""
    faults = list(itertools.product(STEPS, ("raise", "timeout", "garbage")))
    cases = []
    for step, mode in faults:
        user = user_name()
        target.create_user(user, "original")
        name = unique_name(f"{step}-{mode}")
        created = sm.create_secret(
            Name=name,
            SecretString=target.creds(user, "original"),
            Tags=[{"Key": "test-fault", "Value": f"{step}:{mode}"}],
        )
        cases.append((step, mode, user, name, created))
    prefix = cases[0][4]["ARN"].split(":secret:")[0] + ":secret:"
    function_name = unique_name("faulty")[-64:]
    function = deploy(
        client_factory,
        server,
        function_name,
        single_zip,
        [prefix + unique_name.slug + "-*"],
        handler="faults.lambda_handler",
        # Long enough for a working step on a loaded CI machine (at 2 s one timed out, and its
        # rotation then waited for the 5-minute retry), short for the steps that sleep past it.
        timeout=5,
    )
    tokens = {}
    for _, _, _, name, _ in cases:
        tokens[name] = sm.rotate_secret(
            SecretId=name, RotationLambdaARN=function, RotationRules={"AutomaticallyAfterDays": 30}
        )["VersionId"]
    for step, mode, user, name, created in cases:
        assert wait_for_events(server, created["ARN"], "RotationFailed", timeout=60) == [
            "RotationStarted",
            "RotationFailed",
        ], (step, mode)
        token = tokens[name]
        described = sm.describe_secret(SecretId=name)
        assert described["VersionIdsToStages"] == {
            created["VersionId"]: ["AWSCURRENT"],
            token: ["AWSPENDING"],
        }, (step, mode)
        assert value(sm, name)["password"] == "original"
        if step == "createSecret":  # the new version never got a value
            with pytest.raises(ClientError) as missing:
                sm.get_secret_value(SecretId=name, VersionStage="AWSPENDING")
            assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
        pending = None if step == "createSecret" else value(sm, name, "AWSPENDING")["password"]
        # Before setSecret's work the database keeps the old password; after it, the new one.
        in_use = "original" if step in ("createSecret", "setSecret") else pending
        assert in_use is not None and target.logs_in(user, in_use), (step, mode)

    messages = log_messages(aws_cli, function_name)
    for step, mode, _, name, _ in cases:
        assert any(f"injected fault {mode} at {step} of {tokens[name]}" in m for m in messages)
    assert any("RuntimeError: injected failure at" in m for m in messages)
    assert any("Task timed out after 5.00 seconds" in m for m in messages)
    assert any("Runtime.MarshalError" in m for m in messages)
    only = log_messages(aws_cli, function_name, "--filter-pattern", '"injected fault timeout"')
    assert len(only) == len(STEPS), only

    # Fixed: the next RotateSecret refuses, and reattempts the same rotation (same version).
    for _, _, _, name, _ in cases:
        sm.untag_resource(SecretId=name, TagKeys=["test-fault"])
    client_factory("lambda", server=server).update_function_configuration(
        FunctionName=function_name, Timeout=30
    )
    for step, mode, _, name, _ in cases:
        with pytest.raises(ClientError) as refused:
            sm.rotate_secret(SecretId=name)
        error = refused.value.response["Error"]
        assert (error["Code"], error["Message"]) == ("InvalidRequestException", PREVIOUS), (
            step,
            mode,
        )
    for step, mode, user, name, created in cases:
        try:
            wait_rotated(sm, name, tokens[name], timeout=60)
        except AssertionError as exc:
            raise AssertionError(
                f"{step}:{mode}: {exc}; {events(server, created['ARN'])}"
            ) from None
        assert target.logs_in(user, value(sm, name)["password"]), (step, mode)
        assert value(sm, name, "AWSPREVIOUS")["password"] == "original"
        assert events(server, created["ARN"])[2:] == ["RotationStarted", "RotationSucceeded"]


def test_kill9_during_a_function_step_then_the_rotation_completes(
    client_factory: ClientFactory,
    server_factory: ServerFactory,
    sm_factory: SecretsManagerFactory,
    target: Target,
    single_zip: bytes,
    unique_name: NameFactory,
) -> None:
    gate = Path(tempfile.mkdtemp(prefix="secretsd-gate-"))
    gate.chmod(0o777)  # functions run as nobody when the server runs as root
    try:
        server = server_factory()
        sm = sm_factory(server=server)
        user = user_name()
        target.create_user(user, "before-crash")
        name = unique_name()
        created = sm.create_secret(
            Name=name,
            SecretString=target.creds(user, "before-crash"),
            Tags=[{"Key": "test-fault", "Value": f"setSecret:gate:{gate}"}],
        )
        function = deploy(
            client_factory,
            server,
            unique_name("fn")[-64:],
            single_zip,
            [created["ARN"]],
            handler="faults.lambda_handler",
        )
        token = sm.rotate_secret(
            SecretId=name, RotationLambdaARN=function, RotationRules={"AutomaticallyAfterDays": 30}
        )["VersionId"]
        wait_until(lambda: (gate / "started").exists(), "setSecret to start", 30)
        server.kill9()
        (gate / "started").unlink()
        (gate / "open").touch()

        # Past the dead worker's claim (60 s), the restarted server resumes on its own.
        later = server_factory(
            data_dir=server.data_dir,
            database_url=server.database_url,
            extra_args=("--clock-offset", "90"),
        )
        sm = sm_factory(server=later)
        wait_rotated(sm, name, token, timeout=40)
        new = value(sm, name)
        assert target.logs_in(user, new["password"])
        assert not target.logs_in(user, "before-crash")
        assert value(sm, name, "AWSPREVIOUS")["password"] == "before-crash"
        assert (gate / "started").exists()  # setSecret ran again, in the new server
        assert events(later, created["ARN"]) == [
            "RotationStarted",
            "RotationStarted",
            "RotationSucceeded",
        ]
    finally:
        for leftover in gate.iterdir():
            leftover.unlink()
        gate.rmdir()
