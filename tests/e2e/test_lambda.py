"""Lambda functions deployed and invoked as on AWS (boto3 and the AWS CLI against a real server):
AWS's runtime interface client in a sandboxed process, role credentials, logs in CloudWatch Logs,
resource policies, and the FunctionInvoker that rotation uses."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import pwd
import re
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from support.factories import AwsCli, ClientFactory, ServerFactory
from support.names import NameFactory
from support.server import Credentials, ServerProcess

HANDLER_CODE = """
import json, os, sys, time

def echo(event, context):
    print("echo says", json.dumps(event))
    return {"got": event, "request_id": context.aws_request_id,
            "function": context.function_name, "memory": context.memory_limit_in_mb,
            "remaining_ms": context.get_remaining_time_in_millis()}

def fail(event, context):
    raise ValueError("boom from the function")

def slow(event, context):
    print("pid", os.getpid(), flush=True)
    time.sleep(30)

def garbage(event, context):
    return {1, 2, 3}

def inspect(event, context):
    fds = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            fds[fd] = os.readlink("/proc/self/fd/" + fd)
        except OSError:
            pass
    return {"env": dict(os.environ), "uid": os.getuid(), "gid": os.getgid(),
            "groups": os.getgroups(), "cwd": os.getcwd(), "fds": fds, "pid": os.getpid(),
            "can_write_task_root": os.access(os.environ["LAMBDA_TASK_ROOT"], os.W_OK),
            "readable": [p for p in event.get("paths", []) if _readable(p)]}

def _readable(path):
    try:
        with open(path, "rb") as f:
            f.read(1)
        return True
    except OSError:
        return False

def secret(event, context):
    import boto3
    client = boto3.client("secretsmanager")
    return client.get_secret_value(SecretId=event["SecretId"])["SecretString"]

def hog(event, context):
    block = bytearray(event["mb"] * 1024 * 1024)
    return len(block)
"""

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


def build_zip(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def _error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[str, str, int]:
    response = exc.value.response
    return (
        str(response["Error"]["Code"]),
        str(response["Error"]["Message"]),
        int(response["ResponseMetadata"]["HTTPStatusCode"]),
    )


def _role(iam: Any, name: str, *, read_secrets: bool = True) -> str:
    arn: str = iam.create_role(RoleName=name, AssumeRolePolicyDocument=LAMBDA_TRUST)["Role"]["Arn"]
    if read_secrets:
        iam.put_role_policy(
            RoleName=name,
            PolicyName="read",
            PolicyDocument=json.dumps(
                {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": "secretsmanager:GetSecretValue",
                            "Resource": "*",
                        }
                    ],
                }
            ),
        )
    return arn


def _create(lam: Any, name: str, role: str, handler: str, **extra: Any) -> dict[str, Any]:
    out: dict[str, Any] = lam.create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler=f"app.{handler}",
        Code={"ZipFile": build_zip({"app.py": HANDLER_CODE})},
        **extra,
    )
    return out


def _invoke(lam: Any, name: str, payload: Any = None, **extra: Any) -> tuple[dict[str, Any], Any]:
    kwargs: dict[str, Any] = {"FunctionName": name, **extra}
    if payload is not None:
        kwargs["Payload"] = json.dumps(payload).encode()
    response = lam.invoke(**kwargs)
    body = response["Payload"].read()
    return response, (json.loads(body) if body else None)


def test_deploy_invoke_and_read_logs_with_the_cli(
    aws_cli: AwsCli,
    client_factory: ClientFactory,
    server: ServerProcess,
    unique_name: NameFactory,
    tmp_path: Path,
) -> None:
    iam = client_factory("iam")
    lam = client_factory("lambda")
    sm = client_factory("secretsmanager")
    role = _role(iam, unique_name("role"))
    name = unique_name("fn")
    package = tmp_path / "function.zip"
    package.write_bytes(build_zip({"app.py": HANDLER_CODE}))
    created = aws_cli(
        "lambda", "create-function", "--function-name", name, "--runtime", "python3.12",
        "--role", role, "--handler", "app.echo", "--zip-file", f"fileb://{package}",
        "--timeout", "10", "--memory-size", "256",
        "--environment", "Variables={GREETING=hello,MODE=test}",
    )  # fmt: skip
    assert created.returncode == 0, created.stderr
    config = created.output
    account = role.split(":")[4]
    arn = f"arn:aws:lambda:us-east-1:{account}:function:{name}"
    assert config["FunctionArn"] == arn and config["FunctionName"] == name
    assert config["Runtime"] == "python3.12" and config["Handler"] == "app.echo"
    assert config["Timeout"] == 10 and config["MemorySize"] == 256
    assert config["Environment"] == {"Variables": {"GREETING": "hello", "MODE": "test"}}
    assert config["CodeSize"] == package.stat().st_size
    assert (
        base64.b64decode(config["CodeSha256"])
        == __import__("hashlib").sha256(package.read_bytes()).digest()
    )
    assert config["Version"] == "$LATEST" and config["PackageType"] == "Zip"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000", config["LastModified"])
    waited = aws_cli("lambda", "wait", "function-active", "--function-name", name)
    assert waited.returncode == 0, waited.stderr
    with pytest.raises(ClientError) as again:
        _create(lam, name, role, "echo")
    assert _error(again) == ("ResourceConflictException", f"Function already exist: {name}", 409)

    # RequestResponse with a payload, and the last 4 KB of the log.
    response, body = _invoke(lam, name, {"answer": 42}, LogType="Tail")
    assert response["StatusCode"] == 200 and "FunctionError" not in response
    assert response["ExecutedVersion"] == "$LATEST"
    assert body["got"] == {"answer": 42} and body["function"] == name and body["memory"] == "256"
    assert 0 < body["remaining_ms"] <= 10_000
    request_id = body["request_id"]
    assert response["ResponseMetadata"]["HTTPHeaders"]["x-amzn-requestid"]
    tail = base64.b64decode(response["LogResult"]).decode()
    assert f"START RequestId: {request_id} Version: $LATEST" in tail
    assert 'echo says {"answer": 42}' in tail
    assert f"END RequestId: {request_id}" in tail
    assert re.search(
        rf"REPORT RequestId: {request_id}\tDuration: [\d.]+ ms\tBilled Duration: \d+ ms\t"
        r"Memory Size: 256 MB\tMax Memory Used: \d+ MB\t",
        tail,
    )
    # Warm: the same environment again, no Init Duration, and fast.
    started = time.perf_counter()
    response, body = _invoke(lam, name, {"n": 2}, LogType="Tail")
    assert time.perf_counter() - started < 2.0
    assert "Init Duration" not in base64.b64decode(response["LogResult"]).decode()
    # No payload: the event is {}.
    assert _invoke(lam, name)[1]["got"] == {}

    # Event and DryRun.
    event = lam.invoke(FunctionName=name, InvocationType="Event", Payload=b'{"async": true}')
    assert event["StatusCode"] == 202 and event["Payload"].read() == b""
    dry = lam.invoke(FunctionName=arn, InvocationType="DryRun")
    assert dry["StatusCode"] == 204 and dry["Payload"].read() == b""
    with pytest.raises(ClientError) as bad:
        lam.invoke(FunctionName=name, Payload=b"not json")
    assert _error(bad)[0] == "InvalidRequestContentException" and _error(bad)[2] == 400

    # The function reads a secret with its role's credentials through AWS_ENDPOINT_URL.
    secret_name = unique_name("db")
    sm.create_secret(Name=secret_name, SecretString="s3cr3t-value")
    lam.update_function_configuration(FunctionName=name, Handler="app.secret")
    response, body = _invoke(lam, name, {"SecretId": secret_name})
    assert "FunctionError" not in response, body
    assert body == "s3cr3t-value"

    # Function errors: raised, and a result that is not JSON.
    lam.update_function_configuration(FunctionName=name, Handler="app.fail")
    response, body = _invoke(lam, name, {}, LogType="Tail")
    assert response["StatusCode"] == 200 and response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "ValueError" and body["errorMessage"] == "boom from the function"
    assert body["requestId"] and isinstance(body["stackTrace"], list)
    assert "boom from the function" in base64.b64decode(response["LogResult"]).decode()
    lam.update_function_configuration(FunctionName=name, Handler="app.garbage")
    response, body = _invoke(lam, name, {})
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.MarshalError"

    # The logs, as the CLI reads them.
    group = f"/aws/lambda/{name}"
    logs_client = client_factory("logs")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        found = logs_client.filter_log_events(logGroupName=group, filterPattern='"async"')
        if found["events"]:
            break
        time.sleep(0.1)
    logs = aws_cli("logs", "filter-log-events", "--log-group-name", group)
    assert logs.returncode == 0, logs.stderr
    messages = [e["message"] for e in logs.output["events"]]
    assert any('echo says {"answer": 42}' in m for m in messages)
    assert any('echo says {"async": true}' in m for m in messages), "the Event invocation ran"
    assert all(m.endswith("\n") for m in messages)
    filtered = aws_cli(
        "logs", "filter-log-events", "--log-group-name", group, "--filter-pattern", '"echo says"'
    )
    assert filtered.returncode == 0, filtered.stderr
    assert {e["message"].split(" ", 2)[0] for e in filtered.output["events"]} == {"echo"}
    groups = logs_client.describe_log_groups(logGroupNamePrefix=group)["logGroups"]
    assert [g["logGroupName"] for g in groups] == [group]
    assert groups[0]["arn"] == f"arn:aws:logs:us-east-1:{account}:log-group:{group}:*"
    streams = aws_cli("logs", "describe-log-streams", "--log-group-name", group)
    assert streams.returncode == 0, streams.stderr
    names = [s["logStreamName"] for s in streams.output["logStreams"]]
    assert names and all(
        re.fullmatch(r"\d{4}/\d\d/\d\d/\[\$LATEST\][0-9a-f]{32}", n) for n in names
    )
    events = aws_cli(
        "logs", "get-log-events", "--log-group-name", group, "--log-stream-name", names[0],
        "--start-from-head",
    )  # fmt: skip
    assert events.returncode == 0, events.stderr
    first_lines = [e["message"] for e in events.output["events"]]
    assert first_lines[0].startswith("INIT_START Runtime Version: python3.12")
    assert first_lines[1].startswith("START RequestId:")
    # One invocation's lines keep their order: START ... END, REPORT.
    starts = [i for i, line in enumerate(first_lines) if line.startswith("START")]
    ends = [i for i, line in enumerate(first_lines) if line.startswith("END")]
    reports = [i for i, line in enumerate(first_lines) if line.startswith("REPORT")]
    assert starts and all(s < e < r for s, e, r in zip(starts, ends, reports, strict=True))
    with pytest.raises(ClientError) as missing:
        logs_client.filter_log_events(logGroupName="/aws/lambda/nope")
    assert _error(missing)[:2] == (
        "ResourceNotFoundException",
        "The specified log group does not exist.",
    )

    # Listing, updating the code, deleting.
    listed = lam.list_functions()["Functions"]
    assert name in {f["FunctionName"] for f in listed}
    updated = lam.update_function_code(
        FunctionName=name,
        ZipFile=build_zip({"app.py": "def garbage(e, c):\n    return 'v2'\n"}),
    )
    assert updated["CodeSha256"] != config["CodeSha256"]
    assert _invoke(lam, name, {})[1] == "v2"
    deleted = lam.delete_function(FunctionName=name)
    assert deleted["ResponseMetadata"]["HTTPStatusCode"] == 204
    with pytest.raises(ClientError) as gone:
        lam.get_function(FunctionName=name)
    assert _error(gone) == ("ResourceNotFoundException", f"Function not found: {arn}", 404)
    with pytest.raises(ClientError) as gone:
        lam.invoke(FunctionName=name)
    assert _error(gone) == ("ResourceNotFoundException", f"Function not found: {arn}", 404)


@pytest.mark.parametrize("backend", ["sqlite"], scope="session")
def test_bad_packages_and_roles_are_refused(
    client_factory: ClientFactory, unique_name: NameFactory
) -> None:
    iam = client_factory("iam")
    lam = client_factory("lambda")
    role = _role(iam, unique_name("role"), read_secrets=False)
    untrusted = iam.create_role(
        RoleName=unique_name("ec2"),
        AssumeRolePolicyDocument=LAMBDA_TRUST.replace("lambda.amazonaws.com", "ec2.amazonaws.com"),
    )["Role"]["Arn"]
    cases = [
        ({"Code": {"ZipFile": b"not a zip"}}, "Could not unzip uploaded file."),
        ({"Code": {"ZipFile": build_zip({"../escape.py": "x = 1"})}}, "Could not unzip"),
        ({"Role": untrusted}, "The role defined for the function cannot be assumed by Lambda."),
        ({"Runtime": "python2.7"}, "python2.7"),
        (
            {"Environment": {"Variables": {"AWS_REGION": "x", "OK": "1"}}},
            "Reserved keys used in this request: AWS_REGION",
        ),
        ({"Environment": {"Variables": {"BIG": "x" * 4100}}}, "exceeded the 4KB limit"),
        # The rotation router sends these names to the built-in rotators, never to Lambda.
        (
            {"FunctionName": "secretsd-builtin-postgresql-single-user"},
            "Function names starting with 'secretsd-builtin-' are reserved",
        ),
        ({"FunctionName": "secretsd-builtin-mine-" + os.urandom(4).hex()}, "are reserved"),
    ]
    for override, message in cases:
        params: dict[str, Any] = {
            "FunctionName": unique_name("bad"),
            "Runtime": "python3.12",
            "Role": role,
            "Handler": "app.echo",
            "Code": {"ZipFile": build_zip({"app.py": HANDLER_CODE})},
            **override,
        }
        with pytest.raises(ClientError) as refused:
            lam.create_function(**params)
        code, text, status = _error(refused)
        assert (code, status) == ("InvalidParameterValueException", 400), (override, text)
        assert message in text
    names = [f["FunctionName"] for f in lam.list_functions()["Functions"]]
    assert not [n for n in names if n.startswith("secretsd-builtin-")]


@pytest.mark.parametrize("backend", ["sqlite"], scope="session")
def test_invoke_permission_and_resource_policy(
    client_factory: ClientFactory,
    server: ServerProcess,
    unique_name: NameFactory,
) -> None:
    iam = client_factory("iam")
    lam = client_factory("lambda")
    role = _role(iam, unique_name("role"), read_secrets=False)
    name = unique_name("fn")
    arn = _create(lam, name, role, "echo")["FunctionArn"]
    user = iam.create_user(UserName=unique_name("u"))["User"]
    iam.put_user_policy(
        UserName=user["UserName"],
        PolicyName="read-only",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "lambda:Get*", "Resource": "*"}],
            }
        ),
    )
    key = iam.create_access_key(UserName=user["UserName"])["AccessKey"]
    user_lam = client_factory(
        "lambda", credentials=Credentials(key["AccessKeyId"], key["SecretAccessKey"])
    )
    assert user_lam.get_function(FunctionName=name)["Configuration"]["FunctionArn"] == arn
    with pytest.raises(ClientError) as denied:
        user_lam.invoke(FunctionName=name, Payload=b"{}")
    assert _error(denied) == (
        "AccessDeniedException",
        f"User: {user['Arn']} is not authorized to perform: lambda:InvokeFunction on resource:"
        f" {arn} because no identity-based policy allows the lambda:InvokeFunction action",
        403,
    )
    with pytest.raises(ClientError) as no_policy:
        lam.get_policy(FunctionName=name)
    assert _error(no_policy)[0] == "ResourceNotFoundException"

    # The function's resource policy grants the user, and Secrets Manager for one source.
    account = arn.split(":")[4]
    lam.add_permission(
        FunctionName=name, StatementId="user", Action="lambda:InvokeFunction", Principal=user["Arn"]
    )
    statement = json.loads(
        lam.add_permission(
            FunctionName=name,
            StatementId="rotation",
            Action="lambda:InvokeFunction",
            Principal="secretsmanager.amazonaws.com",
            SourceAccount=account,
        )["Statement"]
    )
    assert statement == {
        "Sid": "rotation",
        "Effect": "Allow",
        "Principal": {"Service": "secretsmanager.amazonaws.com"},
        "Action": "lambda:InvokeFunction",
        "Resource": arn,
        "Condition": {"StringEquals": {"AWS:SourceAccount": account}},
    }
    lam.add_permission(
        FunctionName=name,
        StatementId="one-secret",
        Action="lambda:InvokeFunction",
        Principal="secretsmanager.amazonaws.com",
        SourceArn=f"arn:aws:secretsmanager:us-east-1:{account}:secret:only-*",
    )
    with pytest.raises(ClientError) as duplicate:
        lam.add_permission(
            FunctionName=name, StatementId="user", Action="lambda:InvokeFunction", Principal="*"
        )
    assert _error(duplicate)[0] == "ResourceConflictException"
    policy = json.loads(lam.get_policy(FunctionName=name)["Policy"])
    assert [s["Sid"] for s in policy["Statement"]] == ["user", "rotation", "one-secret"]
    assert policy["Statement"][2]["Condition"] == {
        "ArnLike": {"AWS:SourceArn": f"arn:aws:secretsmanager:us-east-1:{account}:secret:only-*"}
    }
    body = _invoke(user_lam, name, {"from": "user"})[1]
    assert body["got"] == {"from": "user"}
    # Its logs are another permission (logs:FilterLogEvents), which the user lacks.
    user_logs = client_factory(
        "logs", credentials=Credentials(key["AccessKeyId"], key["SecretAccessKey"])
    )
    with pytest.raises(ClientError) as no_logs:
        user_logs.filter_log_events(logGroupName=f"/aws/lambda/{name}")
    code, message, _ = _error(no_logs)
    assert code == "AccessDeniedException" and "logs:FilterLogEvents" in message
    assert client_factory("logs").filter_log_events(logGroupName=f"/aws/lambda/{name}")["events"]

    # What rotation sees (service/invocation.py), from a process on the same database.
    invoker = _in_process_invoker(server)
    source = f"arn:aws:secretsmanager:us-east-1:{account}:secret:x-AbCdEf"
    invoker.check_service_may_invoke(
        arn, principal="secretsmanager.amazonaws.com", source_account=account, source_arn=source
    )
    from secretsd.service.invocation import FunctionNotInvokable

    for principal, source_account in [
        ("secretsmanager.amazonaws.com", "111122223333"),
        ("events.amazonaws.com", account),
    ]:
        with pytest.raises(FunctionNotInvokable):
            invoker.check_service_may_invoke(
                arn, principal=principal, source_account=source_account, source_arn=source
            )
    with pytest.raises(FunctionNotInvokable):
        invoker.check_service_may_invoke(
            arn.replace(name, "no-such-function"),
            principal="secretsmanager.amazonaws.com",
            source_account=account,
            source_arn=source,
        )
    result = asyncio.run(
        _invoke_as_service(invoker, arn, {"Step": "createSecret"}, account, source)
    )
    assert result.function_error is None and json.loads(result.payload)["got"] == {
        "Step": "createSecret"
    }
    assert "START RequestId:" in result.log_tail and "REPORT RequestId:" in result.log_tail

    lam.remove_permission(FunctionName=name, StatementId="rotation")
    with pytest.raises(FunctionNotInvokable):
        invoker.check_service_may_invoke(
            arn, principal="secretsmanager.amazonaws.com", source_account=account, source_arn=source
        )
    # The statement with a SourceArn condition admits only the secrets it names.
    invoker.check_service_may_invoke(
        arn,
        principal="secretsmanager.amazonaws.com",
        source_account=account,
        source_arn=f"arn:aws:secretsmanager:us-east-1:{account}:secret:only-db-AbCdEf",
    )
    lam.remove_permission(FunctionName=name, StatementId="one-secret")
    with pytest.raises(ClientError) as unknown:
        lam.remove_permission(FunctionName=name, StatementId="rotation")
    assert _error(unknown)[:1] == ("ResourceNotFoundException",)
    lam.remove_permission(FunctionName=name, StatementId="user")
    with pytest.raises(ClientError):
        user_lam.invoke(FunctionName=name, Payload=b"{}")


def _in_process_invoker(server: ServerProcess) -> Any:
    from secretsd.app import build_app
    from secretsd.settings import Settings

    settings = Settings(data_dir=server.data_dir, host="127.0.0.1", port=server.port)
    return build_app(settings).function_invoker


async def _invoke_as_service(
    invoker: Any, arn: str, payload: Any, account: str, source: str
) -> Any:
    try:
        return await invoker.invoke_as_service(
            arn,
            json.dumps(payload).encode(),
            principal="secretsmanager.amazonaws.com",
            source_account=account,
            source_arn=source,
        )
    finally:
        await invoker.close()


@pytest.mark.parametrize("backend", ["sqlite"], scope="session")
def test_sandbox_isolation_timeout_and_memory_limit(
    client_factory: ClientFactory,
    server: ServerProcess,
    unique_name: NameFactory,
) -> None:
    iam = client_factory("iam")
    lam = client_factory("lambda")
    role = _role(iam, unique_name("role"), read_secrets=False)
    name = unique_name("fn")
    _create(lam, name, role, "inspect", Environment={"Variables": {"MINE": "1"}}, Timeout=1)
    private = [server.data_dir / "secretsd.db", server.data_dir / "root.key", "/etc/shadow"]
    response, seen = _invoke(lam, name, {"paths": [str(p) for p in private]})
    assert "FunctionError" not in response, seen
    env = seen["env"]
    assert not [k for k in env if k.startswith("SECRETSD_")]
    assert env["MINE"] == "1"
    assert env["AWS_LAMBDA_FUNCTION_NAME"] == name and env["AWS_REGION"] == "us-east-1"
    assert env["AWS_DEFAULT_REGION"] == "us-east-1"
    assert env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"] == "128"
    assert env["AWS_LAMBDA_FUNCTION_VERSION"] == "$LATEST"
    assert env["AWS_LAMBDA_LOG_GROUP_NAME"] == f"/aws/lambda/{name}"
    assert env["AWS_EXECUTION_ENV"] == "AWS_Lambda_python3.12"
    assert env["_HANDLER"] == "app.inspect" and env["TZ"] == ":UTC"
    assert env["AWS_ENDPOINT_URL"] == server.endpoint == env["SECRETS_MANAGER_ENDPOINT"]
    assert env["AWS_ACCESS_KEY_ID"].startswith("ASIA") and env["AWS_SESSION_TOKEN"]
    assert re.fullmatch(r"127\.0\.0\.1:\d+", env["AWS_LAMBDA_RUNTIME_API"])
    assert seen["cwd"] == env["LAMBDA_TASK_ROOT"]
    assert not seen["can_write_task_root"]
    if os.geteuid() == 0:
        nobody = pwd.getpwnam("nobody")
        assert (seen["uid"], seen["gid"]) == (nobody.pw_uid, nobody.pw_gid)
        assert seen["groups"] in ([], [nobody.pw_gid])
        # secretsd's database and root key are out of the function's reach.
        assert seen["readable"] == []
    # Nothing of secretsd's is open in the function: its database, its data dir, its listener.
    for target in seen["fds"].values():
        assert str(server.data_dir) not in target, seen["fds"]
    server_sockets = _socket_inodes(server.pid, exclude=seen["pid"])
    assert not server_sockets & set(seen["fds"].values()), seen["fds"]
    assert len(seen["fds"]) <= 8, seen["fds"]

    # The runtime API of this environment serves only its own process.
    import http.client

    host, port = env["AWS_LAMBDA_RUNTIME_API"].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=2)
    with pytest.raises((ConnectionError, http.client.RemoteDisconnected)):
        conn.request("GET", "/2018-06-01/runtime/invocation/next")
        conn.getresponse()

    # Timeout: killed, AWS's error, and the next invocation starts a fresh environment.
    lam.update_function_configuration(FunctionName=name, Handler="app.slow")
    started = time.monotonic()
    response, body = _invoke(lam, name, {}, LogType="Tail")
    assert time.monotonic() - started < 5
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Sandbox.Timedout"
    assert body["errorMessage"].endswith("Task timed out after 1.00 seconds")
    log = base64.b64decode(response["LogResult"]).decode()
    assert "Task timed out after 1.00 seconds" in log
    pid = int(re.search(r"pid (\d+)", log).group(1))  # type: ignore[union-attr]
    assert not _running(pid)

    # A handler that cannot be imported: AWS's init error, and the environment is not kept.
    lam.update_function_configuration(FunctionName=name, Handler="missing.handler")
    response, body = _invoke(lam, name, {})
    assert response["FunctionError"] == "Unhandled"
    assert body["errorType"] == "Runtime.ImportModuleError"
    assert body["errorMessage"].startswith("Unable to import module 'missing'")

    # Memory: within MemorySize is fine, far beyond it fails as an Unhandled error.
    lam.update_function_configuration(FunctionName=name, Handler="app.hog", Timeout=10)
    assert _invoke(lam, name, {"mb": 16})[1] == 16 * 1024 * 1024
    response, body = _invoke(lam, name, {"mb": 1024})
    assert response["FunctionError"] == "Unhandled", body
    assert body["errorType"] in ("MemoryError", "Runtime.ExitError", "Runtime.OutOfMemory")


@pytest.mark.parametrize("backend", ["sqlite"], scope="session")
def test_no_environment_outlives_its_server(
    server_factory: ServerFactory, client_factory: ClientFactory, unique_name: NameFactory
) -> None:
    pids = []
    for graceful in (True, False):
        node = server_factory()
        iam = client_factory("iam", server=node)
        lam = client_factory("lambda", server=node)
        role = _role(iam, unique_name("role"), read_secrets=False)
        name = unique_name("fn")
        _create(lam, name, role, "inspect")
        pid = _invoke(lam, name, {})[1]["pid"]
        assert _running(pid)
        pids.append(pid)
        if graceful:
            node.stop()
        else:
            node.kill9()
        deadline = time.monotonic() + 5
        while _running(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _running(pid), "graceful stop" if graceful else "kill -9"


def _running(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def _socket_inodes(pid: int, exclude: int) -> set[str]:
    """The sockets secretsd's processes hold (the function's own process left out)."""
    found = set()
    for proc in [pid, *_children(pid)]:
        if proc == exclude:
            continue
        for fd in os.listdir(f"/proc/{proc}/fd"):
            try:
                target = os.readlink(f"/proc/{proc}/fd/{fd}")
            except OSError:
                continue
            if target.startswith("socket:"):
                found.add(target)
    return found


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as children:
            return [int(p) for p in children.read().split()]
    except OSError:
        return []
