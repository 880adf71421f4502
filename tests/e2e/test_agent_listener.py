"""The Secrets Manager Agent compatible listener, called the way applications written for the
Agent (or the Lambda extension) call it: plain HTTP GETs with the SSRF token header.

`serve --agent-port 0` with the listener's own IAM user (allowed only `app/*`): the Agent's error
statuses and bodies, answers equal to GetSecretValue's, version selection, authorization applied
to the listener's principal, and the cache: a value served from memory until its TTL, refreshNow
bypassing it, and after the TTL a DescribeSecret (no GetSecretValue) while the version is
unchanged, a new GetSecretValue once it changed (counted in the server's request log). Then the
standalone `secretsd agent` command against the same server."""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
import httpx
from botocore.config import Config

from support.clients import DEFAULT_REGION
from support.server import Credentials, ServerProcess, scrubbed_environ

TTL = 3
TOKEN_HEADER = "X-Aws-Parameters-Secrets-Token"
AGENT_RE = re.compile(r"^secretsd: agent listening on (http://127\.0\.0\.1:\d+)$", re.M)
AGENT_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
            "Resource": "arn:aws:secretsmanager:*:*:secret:app/*",
        }
    ],
}


def _client(service: str, endpoint: str, creds: Credentials) -> Any:
    return boto3.session.Session().client(
        service,
        endpoint_url=endpoint,
        region_name=DEFAULT_REGION,
        aws_access_key_id=creds.access_key_id,
        aws_secret_access_key=creds.secret_access_key,
        config=Config(retries={"max_attempts": 0}, connect_timeout=30, read_timeout=30),
    )


def _agent_url(text_source: Path, timeout: float = 20) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text_source.exists() and (m := AGENT_RE.search(text_source.read_text())):
            return m.group(1)
        time.sleep(0.1)
    raise AssertionError("the agent listener did not announce itself")


def _count(server: ServerProcess, operation: str) -> int:
    return server.logs().count(f"operation={operation} status=200")


def _settled(server: ServerProcess) -> tuple[int, int]:
    """(GetSecretValue, DescribeSecret) counts once the log stops growing."""
    last = (-1, -1)
    for _ in range(50):
        now = (_count(server, "GetSecretValue"), _count(server, "DescribeSecret"))
        if now == last:
            return now
        last = now
        time.sleep(0.1)
    return last


def test_agent_listener_beside_serve(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    server = ServerProcess(data_dir).start()
    try:
        admin = server.credentials
        iam = _client("iam", server.endpoint, admin)
        iam.create_user(UserName="agent")
        iam.put_user_policy(
            UserName="agent", PolicyName="read-app", PolicyDocument=json.dumps(AGENT_POLICY)
        )
        key = iam.create_access_key(UserName="agent")["AccessKey"]
    finally:
        server.stop()
    creds_file = tmp_path / "agent.credentials"
    creds_file.write_text(
        f"[listener]\naws_access_key_id = {key['AccessKeyId']}\n"
        f"aws_secret_access_key = {key['SecretAccessKey']}\n"
    )
    token = secrets.token_hex(16)
    token_file = tmp_path / "token"
    token_file.write_text(token + "\n")
    server = ServerProcess(
        data_dir,
        extra_args=[
            "--log-level",
            "debug",
            "--agent-port",
            "0",
            "--agent-credentials-file",
            str(creds_file),
            "--agent-profile",
            "listener",
            "--agent-ttl-seconds",
            str(TTL),
        ],
        env={"AWS_TOKEN": f"file://{token_file}"},
    ).start()
    try:
        url = _agent_url(server.stdout_log_path)
        sm = _client("secretsmanager", server.endpoint, server.credentials)
        name = f"app/db-{secrets.token_hex(3)}"
        first = sm.create_secret(Name=name, SecretString="v1")
        sm.create_secret(Name="other/x", SecretString="no")
        blob = os.urandom(20)
        sm.create_secret(Name=f"{name}-bin", SecretBinary=blob)
        good = {TOKEN_HEADER: token}
        with httpx.Client(base_url=url, timeout=30) as agent:
            # Health, token, method, path and parameter checks, as the Agent answers them.
            ping = agent.get("/ping")
            assert (ping.status_code, ping.text) == (200, "healthy")
            get = "/secretsmanager/get"
            assert (agent.get(get, params={"secretId": name}).status_code) == 403
            bad = agent.get(get, params={"secretId": name}, headers={TOKEN_HEADER: "nope"})
            assert (bad.status_code, bad.text) == (403, "Bad Token")
            fwd = agent.get(
                get, params={"secretId": name}, headers={**good, "X-Forwarded-For": "1.2.3.4"}
            )
            assert (fwd.status_code, fwd.text) == (400, "Forwarded")
            post = agent.post(get, params={"secretId": name}, headers=good)
            assert (post.status_code, post.text) == (405, "Not allowed")
            assert (
                agent.get("/v2/x", headers=good).status_code,
                agent.get("/v2/x", headers=good).text,
            ) == (404, "Not found")
            for params, message in (
                ({}, "missing parameter secretId"),
                ({"secretId": name, "foo": "1"}, "unknown parameter: foo"),
                ({"secretId": name, "refreshNow": "maybe"}, "invalid refreshNow value"),
            ):
                refused = agent.get(get, params=params, headers=good)
                assert (refused.status_code, refused.text) == (400, message)
            assert agent.get("/v1/", headers=good).text == "missing secret ID"

            # The answer is GetSecretValue's, through either form of the API.
            expected = sm.get_secret_value(SecretId=name)
            by_query = agent.get(get, params={"secretId": name}, headers=good)
            assert by_query.status_code == 200
            body = by_query.json()
            assert body == {
                "ARN": expected["ARN"],
                "Name": name,
                "VersionId": first["VersionId"],
                "SecretString": "v1",
                "VersionStages": ["AWSCURRENT"],
                "CreatedDate": body["CreatedDate"],
            }
            assert abs(float(body["CreatedDate"]) - expected["CreatedDate"].timestamp()) < 0.002
            assert isinstance(body["CreatedDate"], str)
            assert agent.get(f"/v1/{name}", headers=good).json()["SecretString"] == "v1"
            binary = agent.get(f"/v1/{name}-bin", headers={"X-Vault-Token": token}).json()
            assert base64.b64decode(binary["SecretBinary"]) == blob
            assert "SecretString" not in binary

            # Errors: Secrets Manager's, in the Agent's shape; authorization is the listener's.
            missing = agent.get(get, params={"secretId": "app/none"}, headers=good)
            assert missing.status_code == 400
            assert missing.text == (
                '{"__type":"ResourceNotFoundException", "message":'
                '"Secrets Manager can\'t find the specified secret."}'
            )
            denied = agent.get("/v1/other/x", headers=good)
            assert denied.status_code == 400
            assert denied.json()["__type"] == "AccessDeniedException"
            assert "user/agent" in denied.json()["message"]

            # Cache: served from memory until the TTL; refreshNow goes to the server.
            gets, describes = _settled(server)
            second = sm.put_secret_value(SecretId=name, SecretString="v2")
            assert agent.get(f"/v1/{name}", headers=good).json()["SecretString"] == "v1"
            assert _settled(server)[0] == gets  # served from the cache
            fresh = agent.get(f"/v1/{name}", params={"refreshNow": "true"}, headers=good).json()
            assert (fresh["SecretString"], fresh["VersionId"]) == ("v2", second["VersionId"])
            gets, describes = _settled(server)
            previous = agent.get(
                get, params={"secretId": name, "versionStage": "AWSPREVIOUS"}, headers=good
            ).json()
            assert previous["SecretString"] == "v1" and previous["VersionStages"] == ["AWSPREVIOUS"]
            by_id = agent.get(
                get, params={"secretId": name, "versionId": first["VersionId"]}, headers=good
            ).json()
            assert by_id["SecretString"] == "v1"
            gets, describes = _settled(server)

            # After the TTL, unchanged: one DescribeSecret, no GetSecretValue.
            time.sleep(TTL + 0.3)
            assert agent.get(f"/v1/{name}", headers=good).json()["SecretString"] == "v2"
            assert _settled(server) == (gets, describes + 1)
            # After the TTL, changed: DescribeSecret shows it, GetSecretValue fetches it.
            sm.put_secret_value(SecretId=name, SecretString="v3")
            gets, describes = _settled(server)
            time.sleep(TTL + 0.3)
            assert agent.get(f"/v1/{name}", headers=good).json()["SecretString"] == "v3"
            assert _settled(server) == (gets + 1, describes + 1)
    finally:
        server.stop()

    # The standalone command, as on an application host, with the token in the environment.
    plain = ServerProcess(data_dir).start()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "secretsd",
            "agent",
            "--endpoint",
            plain.endpoint,
            "--port",
            "0",
            "--credentials-file",
            str(creds_file),
            "--profile",
            "listener",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=scrubbed_environ({"AWS_TOKEN": token, "PYTHONUNBUFFERED": "1"}),
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        match = AGENT_RE.match(line)
        assert match, line
        answer = httpx.get(
            f"{match.group(1)}/secretsmanager/get",
            params={"secretId": name},
            headers={TOKEN_HEADER: token},
            timeout=30,
        )
        assert answer.status_code == 200 and answer.json()["SecretString"] == "v3"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        if proc.stdout is not None:
            proc.stdout.close()
        plain.stop()


def test_agent_listener_refuses_to_start_without_token_or_credentials(tmp_path: Path) -> None:
    for env, extra in (
        ({}, ["--agent-credentials-file", str(tmp_path / "none")]),
        ({"AWS_TOKEN": "t"}, []),
        ({"AWS_TOKEN": "t"}, ["--agent-credentials-file", str(tmp_path / "none")]),
    ):
        server = ServerProcess(tmp_path / "data", extra_args=["--agent-port", "0", *extra], env=env)
        try:
            server.start()
        except Exception as exc:
            assert "agent" in str(exc) or "credentials" in str(exc)
        else:
            server.stop()
            raise AssertionError(f"started with {env} {extra}")
