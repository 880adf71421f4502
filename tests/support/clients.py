"""boto3 clients and AWS CLI runs against a test server, isolated from the outer AWS setup."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import boto3
from botocore.config import Config

from support.server import Credentials, scrubbed_environ

DEFAULT_REGION = "us-east-1"
# No retries: a failing call should surface its first error, not a retried one seconds later.
BASE_CONFIG = Config(
    retries={"max_attempts": 0, "mode": "standard"},
    connect_timeout=5,
    read_timeout=60,
)
# What makes the outer environment's AWS configuration invisible to boto3 and the CLI.
ISOLATED_AWS_ENV = {
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}


def make_client(
    session: boto3.session.Session,
    service: str,
    endpoint: str,
    credentials: Credentials,
    region: str = DEFAULT_REGION,
    config: Config | None = None,
) -> Any:
    return session.client(
        service,
        endpoint_url=endpoint,
        region_name=region,
        aws_access_key_id=credentials.access_key_id,
        aws_secret_access_key=credentials.secret_access_key,
        aws_session_token=credentials.session_token,
        config=BASE_CONFIG.merge(config) if config is not None else BASE_CONFIG,
    )


class CliResult(NamedTuple):
    returncode: int
    # Parsed JSON when stdout is JSON, the text otherwise, None when stdout is empty.
    output: Any
    stderr: str


def run_aws_cli(
    args: Sequence[str],
    *,
    endpoint: str,
    credentials_file: Path,
    region: str = DEFAULT_REGION,
    home: Path,
    input: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 120,
) -> CliResult:
    """``python -m awscli --endpoint-url ... --region ... --output json ARGS``."""
    full_env = scrubbed_environ(
        {
            **ISOLATED_AWS_ENV,
            "AWS_SHARED_CREDENTIALS_FILE": str(credentials_file),
            "AWS_DEFAULT_REGION": region,
            "AWS_REGION": region,
            "AWS_PAGER": "",
            "HOME": str(home),
            **(env or {}),
        }
    )
    argv = [sys.executable, "-m", "awscli", "--endpoint-url", endpoint, "--region", region]
    argv += ["--output", "json", *args]
    proc = subprocess.run(
        argv,
        input=input,
        capture_output=True,
        text=True,
        env=full_env,
        timeout=timeout,
        stdin=None if input is not None else subprocess.DEVNULL,
    )
    return CliResult(proc.returncode, _parse_output(proc.stdout), proc.stderr)


def _parse_output(stdout: str) -> Any:
    if not stdout.strip():
        return None
    try:
        return json.loads(stdout)
    except ValueError:
        return stdout
