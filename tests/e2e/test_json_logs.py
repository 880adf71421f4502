"""`--log-format json`: every log line of the server and of its worker processes is one JSON
object, and a request's line carries its request id, operation, status and error code."""

from __future__ import annotations

import json
import time

import pytest
from botocore.exceptions import ClientError

from support.factories import ClientFactory, ServerFactory


def test_json_log_lines_carry_request_ids(
    server_factory: ServerFactory, client_factory: ClientFactory
) -> None:
    server = server_factory(extra_args=["--log-format", "json", "--workers", "2"])
    sm = client_factory("secretsmanager", server=server)
    with pytest.raises(ClientError) as missing:
        sm.get_secret_value(SecretId="no-such-secret")
    request_id = missing.value.response["ResponseMetadata"]["RequestId"]
    deadline = time.monotonic() + 5
    while request_id not in server.logs() and time.monotonic() < deadline:
        time.sleep(0.05)
    lines = [
        line
        for line in server.log_path.read_text().splitlines()
        # The command line's own notices (before logging starts) are plain text.
        if line and not line.startswith("secretsd:")
    ]
    parsed = [json.loads(line) for line in lines]
    assert all({"time", "level", "logger", "message"} <= entry.keys() for entry in parsed)
    (request,) = [entry for entry in parsed if entry.get("request_id") == request_id]
    assert request["operation"] == "GetSecretValue"
    assert request["status"] == 400
    assert request["error_code"] == "ResourceNotFoundException"
    assert request["level"] == "INFO" and request["logger"] == "secretsd.request"
