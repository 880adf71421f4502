"""The harness end to end: a real server per backend, boto3 and the AWS CLI against it."""

from __future__ import annotations

import stat
from typing import Any

from support.factories import AwsCli, SecretsManagerFactory
from support.server import ServerProcess


def test_server_starts_with_admin_credentials(server: ServerProcess) -> None:
    assert server.endpoint.startswith("http://127.0.0.1:")
    mode = stat.S_IMODE(server.credentials_path.stat().st_mode)
    assert mode == 0o600
    assert server.credentials.access_key_id
    assert server.credentials.secret_access_key


def test_boto3_lists_secrets(sm: Any) -> None:
    response = sm.list_secrets()
    assert isinstance(response["SecretList"], list)


def test_aws_cli_lists_secrets(aws_cli: AwsCli) -> None:
    returncode, output, stderr = aws_cli("secretsmanager", "list-secrets")
    assert returncode == 0, stderr
    assert isinstance(output["SecretList"], list)


def test_fresh_server_survives_kill9_and_restart(
    fresh_server: ServerProcess, sm_factory: SecretsManagerFactory
) -> None:
    sm_factory(server=fresh_server).list_secrets()
    fresh_server.kill9()
    assert not fresh_server.running
    fresh_server.restart()
    sm_factory(server=fresh_server).list_secrets()
