"""AWS's own "create a secret" guide, run verbatim against a fresh server (README command 1)."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path
from typing import Any

from support.server import ServerProcess


def test_create_secret_guide_with_aws_cli(
    fresh_server: ServerProcess, aws_cli: Any, tmp_path: Path
) -> None:
    creds = fresh_server.data_dir / "admin.credentials"
    assert creds.stat().st_mode & 0o777 == 0o600
    assert (fresh_server.data_dir / "root.key").stat().st_mode & 0o777 == 0o600
    mycreds = tmp_path / "mycreds.json"
    mycreds.write_text('{"username":"saanvi","password":"EXAMPLE-PASSWORD"}\n')
    # The guide exports AWS_REGION; the PyPI AWS CLI (v1) reads AWS_DEFAULT_REGION instead, which
    # the harness also sets. AWS CLI v2 and the SDKs honour AWS_REGION.
    result = aws_cli(
        "secretsmanager",
        "create-secret",
        "--name",
        "MySecret",
        "--secret-string",
        f"file://{mycreds}",
        server=fresh_server,
        credentials_file=creds,
        env={"AWS_SHARED_CREDENTIALS_FILE": str(creds), "AWS_REGION": "us-east-1"},
    )
    assert result.returncode == 0, result.stderr
    out = result.output
    assert set(out) == {"ARN", "Name", "VersionId"}
    assert re.fullmatch(
        r"arn:aws:secretsmanager:us-east-1:\d{12}:secret:MySecret-[A-Za-z0-9]{6}", out["ARN"]
    )
    assert out["Name"] == "MySecret"
    uuid.UUID(out["VersionId"])
    got = aws_cli(
        "secretsmanager", "get-secret-value", "--secret-id", "MySecret", server=fresh_server
    )
    assert got.returncode == 0, got.stderr
    assert json.loads(got.output["SecretString"]) == {
        "username": "saanvi",
        "password": "EXAMPLE-PASSWORD",
    }


def test_create_secret_guide_with_boto3(fresh_server: ServerProcess, sm_factory: Any) -> None:
    sm = sm_factory(server=fresh_server)
    out = sm.create_secret(
        Name="MySecret", SecretString='{"username":"saanvi","password":"EXAMPLE-PASSWORD"}'
    )
    assert out["Name"] == "MySecret"
    assert sm.get_secret_value(SecretId="MySecret")["SecretString"].startswith('{"username"')


def test_restart_reuses_everything(fresh_server: ServerProcess, sm_factory: Any) -> None:
    before = fresh_server.credentials
    arn = sm_factory(server=fresh_server).create_secret(Name="kept", SecretString="v")["ARN"]
    fresh_server.restart()
    assert fresh_server.credentials == before
    sm = sm_factory(server=fresh_server)
    assert sm.describe_secret(SecretId="kept")["ARN"] == arn
    assert sm.get_secret_value(SecretId="kept")["SecretString"] == "v"


def test_aws_endpoint_url_is_all_a_client_needs(fresh_server: ServerProcess) -> None:
    """A plain boto3 program, configured only through the environment."""
    creds = fresh_server.data_dir / "admin.credentials"
    import subprocess
    import sys

    from support.server import scrubbed_environ

    code = (
        "import boto3; sm = boto3.client('secretsmanager', region_name='eu-central-1');"
        "print(sm.create_secret(Name='via-env', SecretString='v')['ARN'])"
    )
    env = scrubbed_environ(
        {
            "AWS_ENDPOINT_URL": fresh_server.endpoint,
            "AWS_SHARED_CREDENTIALS_FILE": str(creds),
            "AWS_CONFIG_FILE": "/dev/null",
        }
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert ":eu-central-1:" in proc.stdout
