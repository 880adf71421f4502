"""TLS: HTTPS for boto3 and the AWS CLI with a private CA, certificates re-read on SIGHUP for new
connections (the listener, open connections and the worker processes stay), a broken pair on
reload keeps the previous certificate, aws:SecureTransport is true only over TLS, and the audit
trail records (and serves) calls made over TLS."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import ssl
import time
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, SSLError
from cryptography import x509

from support.certs import Authority
from support.clients import DEFAULT_REGION, ISOLATED_AWS_ENV, run_aws_cli
from support.server import Credentials, ServerProcess

NO_RETRIES = Config(retries={"max_attempts": 0}, connect_timeout=30, read_timeout=30)
TLS_ONLY = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
            "Resource": "*",
            "Condition": {"Bool": {"aws:SecureTransport": "true"}},
        }
    ],
}


# Clients made by a test, closed before its server stops: a TLS server's graceful stop waits
# (up to the event loop's 30 s SSL shutdown timeout) for each idle keep-alive connection's peer to
# answer close_notify, which a client that is not reading never does.
_OPEN: list[Any] = []


def _close_all() -> None:
    while _OPEN:
        _OPEN.pop().close()


def _client(service: str, endpoint: str, creds: Credentials, verify: str | bool) -> Any:
    client = boto3.session.Session().client(
        service,
        endpoint_url=endpoint,
        region_name=DEFAULT_REGION,
        aws_access_key_id=creds.access_key_id,
        aws_secret_access_key=creds.secret_access_key,
        verify=verify,
        config=NO_RETRIES,
    )
    _OPEN.append(client)
    return client


def _open(port: int, ca: Path) -> ssl.SSLSocket:
    ctx = ssl.create_default_context(cafile=str(ca))
    raw = socket.create_connection(("127.0.0.1", port), timeout=30)
    return ctx.wrap_socket(raw, server_hostname="127.0.0.1")


def _serial(conn: ssl.SSLSocket) -> int:
    der = conn.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def _fresh_serials(port: int, ca: Path, count: int) -> set[int]:
    serials = set()
    for _ in range(count):
        with _open(port, ca) as conn:
            serials.add(_serial(conn))
    return serials


def _health(conn: ssl.SSLSocket) -> bytes:
    conn.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    data = b""
    while b'{"status":"ok"}' not in data:
        chunk = conn.recv(4096)
        if not chunk:
            break
        data += chunk
    return data


def _wait_for_serial(port: int, ca: Path, serial: int, timeout: float = 15.0) -> None:
    """Every one of a run of fresh connections (so reaching every worker) shows `serial`."""
    deadline = time.monotonic() + timeout
    seen: set[int] = set()
    while time.monotonic() < deadline:
        seen = _fresh_serials(port, ca, 12)
        if seen == {serial}:
            return
        time.sleep(0.2)
    raise AssertionError(f"fresh connections still show {seen}, want only {serial}")


def test_tls_with_reload_on_sighup_and_secure_transport(tmp_path: Path) -> None:
    ca = Authority.new()
    ca_path = ca.write(tmp_path / "ca.pem")
    cert, key = tmp_path / "server.crt", tmp_path / "server.key"
    first = ca.issue(cert, key)
    data_dir = tmp_path / "data"
    tls_args = ["--workers", "2", "--tls-cert", str(cert), "--tls-key", str(key)]
    # The Agent listener beside it calls it over TLS, trusting the CA.
    tls_args += ["--agent-port", "0", "--agent-ca-bundle", str(ca_path)]
    tls_args += ["--agent-credentials-file", str(data_dir / "admin.credentials")]
    server = ServerProcess(data_dir, extra_args=tls_args, env={"AWS_TOKEN": "tls-token"}).start()
    try:
        assert server.endpoint.startswith("https://127.0.0.1:")
        admin = server.credentials
        sm = _client("secretsmanager", server.endpoint, admin, str(ca_path))
        name = f"tls-{os.urandom(4).hex()}"
        sm.create_secret(Name=name, SecretString="over-tls")
        assert sm.get_secret_value(SecretId=name)["SecretString"] == "over-tls"

        agent_url = re.search(
            r"agent listening on (http://\S+)", server.stdout_log_path.read_text()
        )
        assert agent_url is not None
        via_agent = httpx.get(
            f"{agent_url.group(1)}/v1/{name}",
            headers={"X-Aws-Parameters-Secrets-Token": "tls-token"},
            timeout=30,
        )
        assert via_agent.status_code == 200, via_agent.text
        assert via_agent.json()["SecretString"] == "over-tls"

        # Without the CA the certificate is not trusted: the client really verifies it.
        untrusting = _client("secretsmanager", server.endpoint, admin, True)
        with pytest.raises(SSLError):
            untrusting.describe_secret(SecretId=name)

        cli = run_aws_cli(
            [
                "--ca-bundle",
                str(ca_path),
                "secretsmanager",
                "get-secret-value",
                "--secret-id",
                name,
            ],
            endpoint=server.endpoint,
            credentials_file=server.credentials_path,
            home=tmp_path,
            env=ISOLATED_AWS_ENV | {"AWS_SHARED_CREDENTIALS_FILE": str(server.credentials_path)},
        )
        assert cli.returncode == 0, cli.stderr
        assert cli.output["SecretString"] == "over-tls"

        # A user whose only permission requires TLS.
        iam = _client("iam", server.endpoint, admin, str(ca_path))
        iam.create_user(UserName="tls-only")
        iam.put_user_policy(
            UserName="tls-only", PolicyName="tls", PolicyDocument=json.dumps(TLS_ONLY)
        )
        made = iam.create_access_key(UserName="tls-only")["AccessKey"]
        user = Credentials(made["AccessKeyId"], made["SecretAccessKey"])
        as_user = _client("secretsmanager", server.endpoint, user, str(ca_path))
        assert as_user.get_secret_value(SecretId=name)["SecretString"] == "over-tls"

        # The audit trail, read over TLS, has the user's call (records are committed in
        # batches: poll briefly).
        trail = _client("cloudtrail", server.endpoint, admin, str(ca_path))
        by_user = [{"AttributeKey": "Username", "AttributeValue": "tls-only"}]
        deadline = time.monotonic() + 5
        events = trail.lookup_events(LookupAttributes=by_user)["Events"]
        while not events and time.monotonic() < deadline:
            time.sleep(0.1)
            events = trail.lookup_events(LookupAttributes=by_user)["Events"]
        assert [e["EventName"] for e in events] == ["GetSecretValue"]

        # Reload: new certificate files, SIGHUP to the supervisor.
        assert _fresh_serials(server.port, ca_path, 8) == {first}
        held = _open(server.port, ca_path)
        assert b"200 OK" in _health(held)
        second = ca.issue(cert, key)
        assert second != first
        os.kill(server.pid, signal.SIGHUP)
        _wait_for_serial(server.port, ca_path, second)
        # The connection opened before the reload still works, with the certificate it began
        # with: nothing was restarted.
        assert _serial(held) == first
        assert b"200 OK" in _health(held)
        held.close()
        assert sm.get_secret_value(SecretId=name)["SecretString"] == "over-tls"

        # A broken pair on reload: logged, and the previous certificate stays in service.
        key.write_bytes(b"-----BEGIN PRIVATE KEY-----\nnot a key\n-----END PRIVATE KEY-----\n")
        os.kill(server.pid, signal.SIGHUP)
        deadline = time.monotonic() + 10
        while server.logs().count("TLS reload failed") < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert server.logs().count("TLS reload failed") == 2  # once per worker
        assert _fresh_serials(server.port, ca_path, 8) == {second}
        assert sm.get_secret_value(SecretId=name)["SecretString"] == "over-tls"
    finally:
        _close_all()
        server.stop()

    # The same data over plain HTTP: aws:SecureTransport is false, the user is refused.
    plain = ServerProcess(data_dir).start()
    try:
        assert plain.endpoint.startswith("http://")
        as_user = _client("secretsmanager", plain.endpoint, user, True)
        with pytest.raises(ClientError) as denied:
            as_user.get_secret_value(SecretId=name)
        assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
        admin_sm = _client("secretsmanager", plain.endpoint, admin, True)
        assert admin_sm.get_secret_value(SecretId=name)["SecretString"] == "over-tls"
    finally:
        plain.stop()


def test_tls_single_worker_reload(tmp_path: Path) -> None:
    ca = Authority.new()
    ca_path = ca.write(tmp_path / "ca.pem")
    cert, key = tmp_path / "server.crt", tmp_path / "server.key"
    first = ca.issue(cert, key)
    server = ServerProcess(
        tmp_path / "data", extra_args=["--tls-cert", str(cert), "--tls-key", str(key)]
    ).start()
    try:
        assert _fresh_serials(server.port, ca_path, 3) == {first}
        second = ca.issue(cert, key)
        os.kill(server.pid, signal.SIGHUP)
        _wait_for_serial(server.port, ca_path, second)
        sm = _client("secretsmanager", server.endpoint, server.credentials, str(ca_path))
        assert sm.list_secrets()["SecretList"] == []
        # The client keeps its connection open and idle: the stop is still prompt and clean.
        started = time.monotonic()
        # (uvicorn re-raises the SIGTERM it caught once it has stopped: -15, not a SIGKILL.)
        assert server.stop() == -signal.SIGTERM
        assert time.monotonic() - started < 8
    finally:
        _close_all()
        server.stop()
