"""Structured logs: with `--log-format json` every line the server (supervisor and workers) writes
to stderr is one JSON object with time, level, logger and message, and request records carry
request_id (the x-amzn-RequestId the client got), operation, status and ms. In both formats, at
debug level, no canary value sent or returned in any call, successful or refused, appears in the
log in any encoding."""

from __future__ import annotations

import base64
import json
import secrets
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from support.clients import DEFAULT_REGION
from support.server import ServerProcess

NO_RETRIES = Config(retries={"max_attempts": 0}, connect_timeout=30, read_timeout=30)


def _client(service: str, server: ServerProcess) -> Any:
    creds = server.credentials
    return boto3.session.Session().client(
        service,
        endpoint_url=server.endpoint,
        region_name=DEFAULT_REGION,
        aws_access_key_id=creds.access_key_id,
        aws_secret_access_key=creds.secret_access_key,
        config=NO_RETRIES,
    )


def _needles(marker: bytes) -> list[bytes]:
    return [marker, base64.b64encode(marker), marker.hex().encode()]


@pytest.mark.parametrize("log_format", ["json", "text"])
def test_logs_are_structured_and_never_hold_values(tmp_path: Path, log_format: str) -> None:
    args = ["--workers", "2", "--log-level", "debug", "--log-format", log_format]
    server = ServerProcess(tmp_path / "data", extra_args=args).start()
    canaries: list[bytes] = []

    def canary() -> str:
        value = "canary-" + secrets.token_hex(16)
        canaries.append(value.encode())
        return value

    request_ids: dict[str, int] = {}
    error_codes: dict[str, str] = {}
    try:
        sm = _client("secretsmanager", server)
        kms = _client("kms", server)
        name = f"logs-{secrets.token_hex(4)}"
        created = sm.create_secret(Name=name, SecretString=canary())
        request_ids[created["ResponseMetadata"]["RequestId"]] = 200
        sm.put_secret_value(SecretId=name, SecretString=canary())
        binary = secrets.token_bytes(24)
        canaries.append(binary)
        sm.put_secret_value(SecretId=name, SecretBinary=binary)
        sm.get_secret_value(SecretId=name)
        sm.batch_get_secret_value(SecretIdList=[name])
        sm.update_secret(SecretId=name, SecretString=canary())
        password = sm.get_random_password(PasswordLength=40)["RandomPassword"]
        canaries.append(password.encode())
        key = kms.create_key()["KeyMetadata"]["KeyId"]
        blob = kms.encrypt(KeyId=key, Plaintext=canary().encode())["CiphertextBlob"]
        kms.decrypt(CiphertextBlob=blob)
        generated = kms.generate_data_key(KeyId=key, KeySpec="AES_256")["Plaintext"]
        canaries.append(generated)
        # Refused calls that carry values.
        for call in (
            lambda: sm.put_secret_value(SecretId=f"{name}-missing", SecretString=canary()),
            lambda: sm.create_secret(Name=name, SecretString=canary()),
            lambda: sm.create_secret(Name="bad name!", SecretString=canary()),
            lambda: sm.put_secret_value(SecretId=name, SecretString=canary(), SecretBinary=b"x"),
        ):
            with pytest.raises(ClientError) as refused:
                call()
            meta = refused.value.response["ResponseMetadata"]
            request_ids[meta["RequestId"]] = meta["HTTPStatusCode"]
            error_codes[meta["RequestId"]] = refused.value.response["Error"]["Code"]
        # A body that is not JSON, holding a value.
        bad = httpx.post(
            server.endpoint,
            content=b'{"SecretString": "' + canary().encode() + b'"',
            headers={"X-Amz-Target": "secretsmanager.PutSecretValue"},
        )
        assert bad.status_code == 400
    finally:
        server.stop()

    log = server.log_path.read_bytes()
    assert log.strip(), "the server logged nothing"
    for value in canaries:
        for needle in _needles(value):
            assert needle not in log, "a value reached the log"

    if log_format != "json":
        return
    records = []
    for line in log.decode().splitlines():
        record = json.loads(line)  # every line is one JSON object
        assert isinstance(record, dict)
        assert {"time", "level", "logger", "message"} <= record.keys(), record
        records.append(record)
    # The supervisor's own lines and the workers' (their startup) are JSON too.
    assert any("initialised account" in r["message"] for r in records)
    assert sum("Started server process" in r["message"] for r in records) == 2
    by_id = {r["request_id"]: r for r in records if "request_id" in r}
    for request_id, status in request_ids.items():
        record = by_id[request_id]
        assert record["status"] == status
        assert record["operation"] in ("CreateSecret", "PutSecretValue")
        assert isinstance(record["ms"], float) and record["ms"] >= 0
        assert record["level"] == ("DEBUG" if status < 400 else "INFO")
        assert record["logger"] == "secretsd.request"
        # The error code a client got (absent on success), as in the audit record.
        assert record.get("error_code") == error_codes.get(request_id)
    assert "ResourceNotFoundException" in error_codes.values()
    operations = {r.get("operation") for r in records}
    assert {"GetSecretValue", "Encrypt", "Decrypt", "GenerateDataKey"} <= operations
