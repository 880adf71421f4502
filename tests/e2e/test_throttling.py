"""Throttling as AWS does it: with a low configured quota, boto3 without retries sees AWS's
ThrottlingException (HTTP 400, "Rate exceeded"), boto3 with its standard retries backs off and
every call eventually succeeds, another region has a bucket of its own, and the quota is not
shared with other operations' quotas."""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path
from typing import Any

import boto3
import httpx
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from support.clients import DEFAULT_REGION
from support.server import ServerProcess

RATE = 10  # GetSecretValue and DescribeSecret, combined, per second


def _client(server: ServerProcess, config: Config, region: str = DEFAULT_REGION) -> Any:
    creds = server.credentials
    return boto3.session.Session().client(
        "secretsmanager",
        endpoint_url=server.endpoint,
        region_name=region,
        aws_access_key_id=creds.access_key_id,
        aws_secret_access_key=creds.secret_access_key,
        config=config,
    )


def _assert_audited_as_throttled(server: ServerProcess, request_id: str) -> None:
    creds = server.credentials
    trail = boto3.session.Session().client(
        "cloudtrail",
        endpoint_url=server.endpoint,
        region_name=DEFAULT_REGION,
        aws_access_key_id=creds.access_key_id,
        aws_secret_access_key=creds.secret_access_key,
    )
    by_name = [{"AttributeKey": "EventName", "AttributeValue": "GetSecretValue"}]
    deadline = time.monotonic() + 5
    while True:
        pages = trail.get_paginator("lookup_events").paginate(LookupAttributes=by_name)
        found = [
            record
            for page in pages
            for event in page["Events"]
            if (record := json.loads(event["CloudTrailEvent"]))["requestID"] == request_id
        ]
        if found or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    (record,) = found
    assert record["errorCode"] == "ThrottlingException"
    assert record["errorMessage"] == "Rate exceeded"
    assert record["userIdentity"]["accessKeyId"] == creds.access_key_id


def test_throttling_exception_and_sdk_retries(tmp_path: Path) -> None:
    server = ServerProcess(
        tmp_path / "data",
        extra_args=["--throttle", "--throttle-rates", f"GetSecretValue={RATE}"],
    ).start()
    try:
        bare = _client(server, Config(retries={"max_attempts": 0}))
        name = f"throttled-{secrets.token_hex(4)}"
        bare.create_secret(Name=name, SecretString="v")

        throttled: list[ClientError] = []
        ok = 0
        for _ in range(RATE * 3):
            try:
                bare.get_secret_value(SecretId=name)
                ok += 1
            except ClientError as exc:
                throttled.append(exc)
        assert throttled, "no call was throttled"
        assert ok >= RATE  # the burst went through
        error = throttled[0].response
        assert error["Error"] == {"Code": "ThrottlingException", "Message": "Rate exceeded"}
        assert error["ResponseMetadata"]["HTTPStatusCode"] == 400
        # DescribeSecret shares the quota; ListSecrets has its own.
        with pytest.raises(ClientError, match="ThrottlingException"):
            bare.describe_secret(SecretId=name)
        bare.list_secrets()
        # The same account in another region has its own bucket.
        west = _client(server, Config(retries={"max_attempts": 0}), "eu-west-1")
        with pytest.raises(ClientError, match="ResourceNotFoundException"):
            west.get_secret_value(SecretId=name)
        # Still an API call: the audit trail has it, with its caller and the error (checked
        # after the other calls: the bucket refills meanwhile).
        _assert_audited_as_throttled(server, error["ResponseMetadata"]["RequestId"])

        # botocore treats ThrottlingException as retryable: standard retries back off and
        # every call succeeds, at about the configured rate.
        retrying = _client(server, Config(retries={"mode": "standard", "max_attempts": 10}))
        calls = RATE * 3
        started = time.monotonic()
        for _ in range(calls):
            assert retrying.get_secret_value(SecretId=name)["SecretString"] == "v"
        elapsed = time.monotonic() - started
        assert elapsed >= (calls - RATE) / RATE * 0.8, elapsed
    finally:
        server.stop()


def test_throttling_is_off_by_default_and_bad_rates_refused(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="throttle rate"):
        ServerProcess(
            tmp_path / "bad", extra_args=["--throttle", "--throttle-rates", "Nope=1"]
        ).start()
    server = ServerProcess(tmp_path / "data", extra_args=["--throttle-rates", "GetSecretValue=1"])
    server.start()
    try:
        sm = _client(server, Config(retries={"max_attempts": 0}))
        name = f"free-{secrets.token_hex(4)}"
        sm.create_secret(Name=name, SecretString="v")
        for _ in range(20):
            sm.get_secret_value(SecretId=name)
        assert httpx.get(f"{server.endpoint}/health").status_code == 200
    finally:
        server.stop()
