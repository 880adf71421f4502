"""The audit trail through real servers: CloudTrail records read back with `aws cloudtrail
lookup-events` and boto3, a denied call recorded with its error, no secret (value, password,
access key secret, session token, KMS plaintext) in the audit table, the JSON lines export or
the server log, `secretsd audit verify` catching edited, deleted and swapped records and a forged
digest, fail-closed refusing a read when records cannot be written, /metrics counting (with two
workers, summed across them)."""

from __future__ import annotations

import base64
import json
import secrets
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from secretsd.audit import verify as verifier
from secretsd.audit.chain import GENESIS, DigestHead, RootKeySigners, record_hash
from secretsd.audit.record import render
from secretsd.store.database import Database
from support import canary
from support.factories import AwsCli, ClientFactory, ServerFactory
from support.names import NameFactory
from support.server import Credentials, ServerProcess, scrubbed_environ

LOOKUP = "cloudtrail"


Statement = tuple[str, Sequence[Any]]


def _connect_and_run(server: ServerProcess, statements: Sequence[Statement], fetch: bool) -> Any:
    if server.database_url is None:
        # On SQLite the audit trail has a file of its own.
        with sqlite3.connect(server.data_dir / "secretsd-audit.db") as conn:
            result = None
            for sql, params in statements:
                result = conn.execute(sql, params).fetchall()
            return result
    with psycopg.connect(server.database_url, autocommit=not fetch) as pg:
        result = None
        for sql, params in statements:
            cursor = pg.execute(sql.replace("?", "%s"), params)  # type: ignore[arg-type]
            result = cursor.fetchall() if fetch else None
        return result


def execute(server: ServerProcess, *statements: Statement) -> None:
    """Statements run straight against the server's database, as someone with write access
    to it (not through secretsd)."""
    _connect_and_run(server, statements, fetch=False)


def rows(server: ServerProcess, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    found: list[tuple[Any, ...]] = _connect_and_run(server, [(sql, params)], fetch=True)
    return found


def records(server: ServerProcess) -> list[dict[str, Any]]:
    """Every stored audit record, oldest first within each chain."""
    found = rows(server, "SELECT records FROM audit_blocks ORDER BY account_id, region, first_seq")
    return [render(line) for (text,) in found for line in str(text).split("\n")]


def audit_cli(server: ServerProcess, *args: str) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", "secretsd", "audit", *args, "--data-dir", str(server.data_dir)]
    if server.database_url is not None:
        argv += ["--database", server.database_url]
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=60, env=scrubbed_environ(), check=False
    )


def wait_for_events(
    lookup: Callable[[], list[dict[str, Any]]], ready: Callable[[list[dict[str, Any]]], bool]
) -> list[dict[str, Any]]:
    """Records are committed in batches (every 50 ms by default): poll briefly."""
    deadline = time.monotonic() + 5
    while True:
        found = lookup()
        if ready(found) or time.monotonic() > deadline:
            return found
        time.sleep(0.05)


def metrics(server: ServerProcess, token: str | None = None) -> dict[str, float]:
    request = urllib.request.Request(server.endpoint + "/metrics")  # noqa: S310 (http only)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        text = response.read().decode()
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def test_lookup_events_finds_create_and_get_with_cloudtrail_fields(
    aws_cli: AwsCli, client_factory: ClientFactory, server: ServerProcess, unique_name: NameFactory
) -> None:
    sm = client_factory("secretsmanager", server=server)
    name = unique_name()
    created = sm.create_secret(Name=name, SecretString="not in the trail " + secrets.token_hex(8))
    got = sm.get_secret_value(SecretId=name)
    me = client_factory("sts", server=server).get_caller_identity()

    def lookup() -> list[dict[str, Any]]:
        result = aws_cli(
            LOOKUP,
            "lookup-events",
            "--lookup-attributes",
            f"AttributeKey=ResourceName,AttributeValue={created['ARN']}",
            server=server,
        )
        assert result.returncode == 0, result.stderr
        events: list[dict[str, Any]] = result.output["Events"]
        return events

    events = wait_for_events(lookup, lambda found: len(found) >= 2)
    assert [e["EventName"] for e in events] == ["GetSecretValue", "CreateSecret"]  # newest first
    get_event, create_event = events
    for event in events:
        assert event["EventSource"] == "secretsmanager.amazonaws.com"
        assert event["Username"] == "admin"
        assert event["AccessKeyId"] == server.credentials.access_key_id
        assert event["Resources"] == [
            {"ResourceType": "AWS::SecretsManager::Secret", "ResourceName": created["ARN"]}
        ]
    assert (get_event["ReadOnly"], create_event["ReadOnly"]) == ("true", "false")

    record = json.loads(get_event["CloudTrailEvent"])
    assert record["eventID"] == get_event["EventId"]
    assert record["eventVersion"] == "1.09"
    assert record["eventType"] == "AwsApiCall"
    assert record["eventCategory"] == "Management"
    assert record["managementEvent"] is True
    assert record["readOnly"] is True
    assert record["awsRegion"] == "us-east-1"
    assert record["recipientAccountId"] == me["Account"]
    assert record["requestID"] == got["ResponseMetadata"]["RequestId"]
    assert record["sourceIPAddress"] == "127.0.0.1"
    assert record["userAgent"].startswith("Boto3/")
    assert record["requestParameters"] == {"secretId": name}
    assert record["responseElements"] is None  # as CloudTrail records GetSecretValue
    assert record["userIdentity"] == {
        "type": "IAMUser",
        "principalId": me["UserId"],
        "arn": me["Arn"],
        "accountId": me["Account"],
        "accessKeyId": server.credentials.access_key_id,
        "userName": "admin",
    }
    assert "errorCode" not in record

    record = json.loads(create_event["CloudTrailEvent"])
    assert record["requestID"] == created["ResponseMetadata"]["RequestId"]
    assert record["requestParameters"]["name"] == name
    assert record["requestParameters"]["secretString"] == "HIDDEN_DUE_TO_SECURITY_REASONS"
    assert record["responseElements"] == {
        "arn": created["ARN"],
        "name": name,
        "versionId": created["VersionId"],
    }

    # Attribute filters, time range and pagination, through boto3's paginator.
    trail = client_factory(LOOKUP, server=server)
    by_name = trail.lookup_events(
        LookupAttributes=[{"AttributeKey": "EventName", "AttributeValue": "CreateSecret"}],
        MaxResults=50,
    )["Events"]
    assert by_name and {e["EventName"] for e in by_name} == {"CreateSecret"}
    assert create_event["EventId"] in {e["EventId"] for e in by_name} or len(by_name) == 50
    by_id = trail.lookup_events(
        LookupAttributes=[{"AttributeKey": "EventId", "AttributeValue": get_event["EventId"]}]
    )["Events"]
    assert [e["EventId"] for e in by_id] == [get_event["EventId"]]
    pages = list(
        trail.get_paginator("lookup_events").paginate(
            LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": created["ARN"]}],
            PaginationConfig={"PageSize": 1},
        )
    )
    assert [e["EventId"] for p in pages for e in p["Events"]] == [
        get_event["EventId"],
        create_event["EventId"],
    ]
    future = trail.lookup_events(StartTime=time.time() + 3600, EndTime=time.time() + 7200)
    assert future["Events"] == []
    with pytest.raises(ClientError) as refused:
        trail.lookup_events(StartTime=time.time(), EndTime=time.time() - 3600)
    assert refused.value.response["Error"]["Code"] == "InvalidTimeRangeException"
    with pytest.raises(ClientError) as refused:
        trail.lookup_events(
            LookupAttributes=[
                {"AttributeKey": "EventName", "AttributeValue": "CreateSecret"},
                {"AttributeKey": "ReadOnly", "AttributeValue": "false"},
            ]
        )
    assert refused.value.response["Error"]["Code"] == "InvalidLookupAttributesException"


def test_denied_calls_are_recorded_and_lookup_is_authorized(
    client_factory: ClientFactory, server: ServerProcess, unique_name: NameFactory
) -> None:
    admin = server.credentials
    iam = client_factory("iam", server=server, credentials=admin)
    sm = client_factory("secretsmanager", server=server, credentials=admin)
    name = unique_name()
    arn = sm.create_secret(Name=name, SecretString="x")["ARN"]
    user = unique_name("nobody")
    iam.create_user(UserName=user)
    key = iam.create_access_key(UserName=user)["AccessKey"]
    nobody = Credentials(key["AccessKeyId"], key["SecretAccessKey"])

    with pytest.raises(ClientError) as denied:
        client_factory("secretsmanager", server=server, credentials=nobody).get_secret_value(
            SecretId=arn
        )
    assert denied.value.response["Error"]["Code"] == "AccessDeniedException"
    with pytest.raises(ClientError) as denied_lookup:
        client_factory(LOOKUP, server=server, credentials=nobody).lookup_events()
    assert denied_lookup.value.response["Error"]["Code"] == "AccessDeniedException"
    assert "cloudtrail:LookupEvents" in denied_lookup.value.response["Error"]["Message"]

    trail = client_factory(LOOKUP, server=server, credentials=admin)
    events = wait_for_events(
        lambda: trail.lookup_events(
            LookupAttributes=[
                {"AttributeKey": "AccessKeyId", "AttributeValue": nobody.access_key_id}
            ]
        )["Events"],
        lambda found: len(found) >= 2,
    )
    by_name = {e["EventName"]: json.loads(e["CloudTrailEvent"]) for e in events}
    record = by_name["GetSecretValue"]
    assert record["errorCode"] == "AccessDenied"
    assert record["errorMessage"] == denied.value.response["Error"]["Message"]
    assert record["userIdentity"]["userName"] == user
    assert record["requestParameters"] == {"secretId": arn}
    assert record["responseElements"] is None
    assert by_name["LookupEvents"]["eventSource"] == "cloudtrail.amazonaws.com"
    assert by_name["LookupEvents"]["errorCode"] == "AccessDenied"

    # Allowed by a policy naming the action, the same user can read the trail.
    iam.put_user_policy(
        UserName=user,
        PolicyName="trail",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [
                    {"Effect": "Allow", "Action": "cloudtrail:LookupEvents", "Resource": "*"}
                ],
            }
        ),
    )
    found = client_factory(LOOKUP, server=server, credentials=nobody).lookup_events(
        LookupAttributes=[{"AttributeKey": "Username", "AttributeValue": user}]
    )["Events"]
    assert {"GetSecretValue", "LookupEvents"} <= {e["EventName"] for e in found}

    # A request refused at SigV4 (wrong secret) is recorded with what is known: the key it named.
    forged = Credentials(nobody.access_key_id, "x" * 40)
    with pytest.raises(ClientError) as bad_signature:
        client_factory("secretsmanager", server=server, credentials=forged).list_secrets()
    assert bad_signature.value.response["Error"]["Code"] == "InvalidSignatureException"
    request_id = bad_signature.value.response["ResponseMetadata"]["RequestId"]
    deadline = time.monotonic() + 5
    while True:
        refused = [
            r
            for r in records(server)
            if r["eventName"] == "ListSecrets"
            and r["userIdentity"].get("accessKeyId") == nobody.access_key_id
        ]
        if refused or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert [r["requestID"] for r in refused] == [request_id]
    assert refused[0]["errorCode"] == "InvalidSignatureException"
    assert refused[0]["userIdentity"] == {"type": "Unknown", "accessKeyId": nobody.access_key_id}


def _canary_calls(server: ServerProcess, clients: ClientFactory, name: str) -> list[bytes]:
    """Calls whose requests or responses carry secrets; returns those secrets."""
    sm = clients("secretsmanager", server=server)
    kms = clients("kms", server=server)
    iam = clients("iam", server=server)
    sts = clients("sts", server=server)
    value = "canary-" + secrets.token_hex(24)
    binary = secrets.token_bytes(48)
    sm.create_secret(Name=name, SecretString=value)
    sm.put_secret_value(SecretId=name, SecretBinary=binary)
    sm.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")
    sm.batch_get_secret_value(SecretIdList=[name])
    password = sm.get_random_password(PasswordLength=40)["RandomPassword"]
    key_id = kms.create_key()["KeyMetadata"]["KeyId"]
    data_key = kms.generate_data_key(KeyId=key_id, KeySpec="AES_256")
    plaintext = secrets.token_bytes(32)
    blob = kms.encrypt(KeyId=key_id, Plaintext=plaintext)["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == plaintext
    iam.create_user(UserName=name)
    access_key = iam.create_access_key(UserName=name)["AccessKey"]
    session = sts.get_session_token()["Credentials"]
    # A refused write whose value is in the request: still never recorded.
    with pytest.raises(ClientError):
        sm.put_secret_value(SecretId=name + "-missing", SecretString=value + "-refused")
    return [
        value.encode(),
        binary,
        password.encode(),
        data_key["Plaintext"],
        plaintext,
        access_key["SecretAccessKey"].encode(),
        session["SecretAccessKey"].encode(),
        session["SessionToken"].encode()[:64],
    ]


def test_no_secret_in_the_audit_table_export_or_log(
    server_factory: ServerFactory, client_factory: ClientFactory, tmp_path: Path
) -> None:
    exported = tmp_path / "audit.jsonl"
    server = server_factory(env={"SECRETSD_AUDIT_LOG_PATH": str(exported)})
    canaries = _canary_calls(server, client_factory, "canary-" + secrets.token_hex(4))
    scanner = canary.Scanner()
    for i, raw in enumerate(canaries):
        for form, needle in canary.encodings(raw):
            scanner.add(needle, f"canary {i} {form}")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if len(records(server)) >= 15:
            break
        time.sleep(0.05)
    table = "\n".join(str(r[0]) for r in rows(server, "SELECT records FROM audit_blocks")).encode()
    names = {render(r)["eventName"] for r in table.decode().splitlines()}
    assert {
        "CreateSecret",
        "PutSecretValue",
        "GetSecretValue",
        "BatchGetSecretValue",
        "GetRandomPassword",
        "GenerateDataKey",
        "Encrypt",
        "Decrypt",
        "CreateAccessKey",
        "GetSessionToken",
    } <= names
    server.stop()
    lines = exported.read_bytes().splitlines()
    assert len(lines) == len(table.splitlines())
    # The export holds CloudTrail's records, those the stored (compact) lines render.
    by_id = {r["eventID"]: r for r in map(render, table.decode().splitlines())}
    assert {r["eventID"]: r for r in map(json.loads, lines)} == by_id
    assert all(r["eventVersion"] == "1.09" for r in by_id.values())
    assert b"HIDDEN_DUE_TO_SECURITY_REASONS" in table
    assert scanner.scan_bytes(table, Path("audit_blocks")) == []
    assert scanner.scan_files([exported, server.log_path, server.stdout_log_path]) == []


@dataclass(frozen=True)
class Block:
    first_seq: int
    last_seq: int
    records: str
    hashes: str
    prev_hash: str

    @property
    def lines(self) -> list[str]:
        return self.records.split("\n")


def _verify(server: ServerProcess) -> tuple[int, str]:
    result = audit_cli(server, "verify")
    return result.returncode, result.stdout + result.stderr


def _problems(server: ServerProcess, account: str) -> list[str]:
    """The same check as `secretsd audit verify`, in-process (a CLI start costs seconds)."""
    db = Database(server.database_url or f"sqlite:///{server.data_dir / 'secretsd-audit.db'}")
    try:
        ring = canary.root_keys(server.database_url, server.data_dir)
        return verifier.verify_chain(
            db, account, "us-east-1", RootKeySigners(ring).public_key
        ).problems
    finally:
        db.close()


def test_verify_detects_edited_deleted_swapped_records_and_forged_digests(
    server_factory: ServerFactory, client_factory: ClientFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = server_factory(env={"SECRETSD_AUDIT_DIGEST_SECONDS": "0"})
    sm = client_factory("secretsmanager", server=server)
    account = client_factory("sts", server=server).get_caller_identity()["Account"]
    sm.create_secret(Name="audited", SecretString="v")
    for _ in range(3):
        time.sleep(0.08)  # separate batches, so there are several digests
        sm.get_secret_value(SecretId="audited")
    with ThreadPoolExecutor(4) as pool:  # several records in one batch
        list(pool.map(lambda _: sm.get_secret_value(SecretId="audited"), range(8)))
    server.stop()  # the shutdown flushes the last batch
    blocks = [
        Block(int(first), int(last), str(text), str(hashes), str(prev))
        for first, last, text, hashes, prev in rows(
            server,
            "SELECT first_seq, last_seq, records, hashes, prev_hash FROM audit_blocks"
            " WHERE account_id = ? AND region = 'us-east-1' ORDER BY first_seq",
            account,
        )
    ]
    assert sum(len(b.lines) for b in blocks) == 13  # GetCallerIdentity, CreateSecret, 11 reads
    assert (
        len(
            rows(
                server,
                "SELECT seq FROM audit_digests WHERE account_id = ? AND region = 'us-east-1'",
                account,
            )
        )
        >= 3
    )
    assert _problems(server, account) == []
    big = max(blocks, key=lambda b: len(b.lines))
    assert len(big.lines) >= 3

    def set_records(block: Block, lines: list[str]) -> Statement:
        return (
            "UPDATE audit_blocks SET records = ? WHERE account_id = ? AND region = 'us-east-1' AND first_seq = ?",
            ("\n".join(lines), account, block.first_seq),
        )

    # Edited: a record's contents.
    edited = list(big.lines)
    edited[1] = edited[1].replace('"GetSecretValue"', '"PutSecretValue"')
    assert edited[1] != big.lines[1]
    execute(server, set_records(big, edited))
    assert _problems(server, account) == [
        f"record {big.first_seq + 1}: contents or position changed (hash mismatch)"
    ]
    execute(server, set_records(big, big.lines))
    assert _problems(server, account) == []

    # Removed: a record from the middle of a block, and a whole block.
    execute(server, set_records(big, big.lines[:1] + big.lines[2:]))
    found = _problems(server, account)
    assert any("records and" in p and "(removed or added)" in p for p in found), found
    execute(server, set_records(big, big.lines))
    second = blocks[1]
    saved = rows(
        server,
        "SELECT * FROM audit_blocks WHERE account_id = ? AND region = 'us-east-1' AND first_seq = ?",
        account,
        second.first_seq,
    )[0]
    execute(
        server,
        (
            "DELETE FROM audit_blocks WHERE account_id = ? AND region = 'us-east-1' AND first_seq = ?",
            (account, second.first_seq),
        ),
    )
    found = _problems(server, account)
    assert f"record {second.first_seq}..{second.last_seq} missing (removed)" in found, found
    marks = ", ".join("?" * len(saved))
    execute(server, (f"INSERT INTO audit_blocks VALUES ({marks})", saved))  # noqa: S608
    assert _problems(server, account) == []

    # Reordered: two records swapped.
    swapped = list(big.lines)
    swapped[0], swapped[1] = swapped[1], swapped[0]
    execute(server, set_records(big, swapped))
    found = _problems(server, account)
    assert f"record {big.first_seq}: contents or position changed (hash mismatch)" in found
    execute(server, set_records(big, big.lines))
    assert _problems(server, account) == []

    # Cut from the end: the last block removed.
    last = blocks[-1]
    saved = rows(
        server,
        "SELECT * FROM audit_blocks WHERE account_id = ? AND region = 'us-east-1' AND first_seq = ?",
        account,
        last.first_seq,
    )[0]
    remove_last: Statement = (
        "DELETE FROM audit_blocks WHERE account_id = ? AND region = 'us-east-1' AND first_seq = ?",
        (account, last.first_seq),
    )
    execute(server, remove_last)
    found = _problems(server, account)
    assert (
        f"chain head (record {last.last_seq}) does not match the records (last record"
        f" {last.first_seq - 1}): records removed or changed at the end"
    ) in found, found
    execute(server, (f"INSERT INTO audit_blocks VALUES ({marks})", saved))  # noqa: S608

    # Appended by the live server while the blocks are read (the head was read first): no
    # problem. Added after the head without moving it (forged, or the head rolled back): one.
    line, tail = last.lines[-1], last.hashes.split(" ")[-1]
    appended: Statement = (
        "INSERT INTO audit_blocks (account_id, region, first_seq, last_seq, first_ms, last_ms,"
        " records, hashes, prev_hash) SELECT account_id, region, last_seq + 1, last_seq + 1,"
        " first_ms, last_ms, ?, ?, ? FROM audit_blocks WHERE account_id = ?"
        " AND region = 'us-east-1' AND first_seq = ?",
        (
            line,
            record_hash(last.last_seq + 1, tail, line.encode()),
            tail,
            account,
            last.first_seq,
        ),
    )
    head_moved: Statement = (
        "UPDATE audit_chains SET seq = ?, head_hash = ? WHERE account_id = ?"
        " AND region = 'us-east-1'",
        (
            last.last_seq + 1,
            record_hash(last.last_seq + 1, tail, line.encode()),
            account,
        ),
    )
    reading = verifier._blocks

    def append_then_read(*args: Any, **kwargs: Any) -> Iterator[Any]:
        execute(server, appended, head_moved)
        return reading(*args, **kwargs)

    monkeypatch.setattr(verifier, "_blocks", append_then_read)
    assert _problems(server, account) == []
    monkeypatch.undo()
    head_back: Statement = (
        "UPDATE audit_chains SET seq = ?, head_hash = ? WHERE account_id = ?"
        " AND region = 'us-east-1'",
        (last.last_seq, tail, account),
    )
    execute(server, head_back)
    assert _problems(server, account) == [
        f"records after the chain head (record {last.last_seq}): added"
    ]
    after_head: Statement = (
        "DELETE FROM audit_blocks WHERE account_id = ? AND region = 'us-east-1' AND first_seq = ?",
        (account, last.last_seq + 1),
    )
    execute(server, after_head)
    assert _problems(server, account) == []

    # Rewritten: a record edited, every hash after it recomputed, the digests re-signed with a
    # key of the forger's own: the chain is consistent again, the signatures are not secretsd's.
    updates: list[Statement] = []
    hashes: dict[int, str] = {}
    prev = GENESIS
    for block in blocks:
        lines = [
            line.replace('"GetSecretValue"', '"PutSecretValue"') if block is big else line
            for line in block.lines
        ]
        block_prev = prev
        new_hashes = []
        for offset, line in enumerate(lines):
            prev = hashes[block.first_seq + offset] = record_hash(
                block.first_seq + offset, prev, line.encode()
            )
            new_hashes.append(prev)
        updates.append(
            (
                "UPDATE audit_blocks SET records = ?, hashes = ?, prev_hash = ?"
                " WHERE account_id = ? AND region = 'us-east-1' AND first_seq = ?",
                ("\n".join(lines), " ".join(new_hashes), block_prev, account, block.first_seq),
            )
        )
    forger = Ed25519PrivateKey.generate()
    previous_signature = ""
    for seq, created in rows(
        server,
        "SELECT seq, created_ms FROM audit_digests WHERE account_id = ? AND region = 'us-east-1' ORDER BY seq",
        account,
    ):
        head = DigestHead(
            account, "us-east-1", int(seq), hashes[int(seq)], int(created), previous_signature
        )
        signature = base64.b64encode(forger.sign(head.payload())).decode()
        updates.append(
            (
                "UPDATE audit_digests SET head_hash = ?, signature = ?, previous_signature = ?"
                " WHERE account_id = ? AND region = 'us-east-1' AND seq = ?",
                (head.head_hash, signature, previous_signature, account, seq),
            )
        )
        previous_signature = signature
    updates.append(
        (
            "UPDATE audit_chains SET head_hash = ?, digest_signature = ? WHERE account_id = ? AND region = 'us-east-1'",
            (prev, previous_signature, account),
        )
    )
    execute(server, *updates)
    code, out = _verify(server)
    assert code == 1 and "signature invalid (forged or changed digest)" in out, out
    assert f"{account} us-east-1: FAILED (13 records" in out
    assert "contents or position changed" not in out  # the chain itself was made consistent

    # Verifying against exported public keys (no root key needed) gives the same verdict.
    keys = audit_cli(server, "public-key")
    assert keys.returncode == 0, keys.stderr
    key_file = server.data_dir / "audit-keys.json"
    key_file.write_text(keys.stdout)
    result = audit_cli(server, "verify", "--public-keys", str(key_file), "--json")
    assert result.returncode == 1
    report = {(r["accountId"], r["region"]): r for r in json.loads(result.stdout)}
    assert not report[(account, "us-east-1")]["ok"]


def _block_audit_inserts(server: ServerProcess) -> Sequence[Statement]:
    if server.database_url is None:
        return (
            (
                "CREATE TRIGGER audit_blocked BEFORE INSERT ON audit_blocks"
                " BEGIN SELECT RAISE(ABORT, 'audit store unwritable'); END;",
                (),
            ),
        )
    return (
        (
            "CREATE FUNCTION audit_blocked() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN RAISE EXCEPTION 'audit store unwritable'; END $$",
            (),
        ),
        (
            "CREATE TRIGGER audit_blocked BEFORE INSERT ON audit_blocks"
            " FOR EACH ROW EXECUTE FUNCTION audit_blocked()",
            (),
        ),
    )


def test_fail_closed_refuses_calls_whose_record_cannot_be_written_and_metrics_count(
    server_factory: ServerFactory, client_factory: ClientFactory
) -> None:
    token = secrets.token_hex(16)
    server = server_factory(
        env={"SECRETSD_AUDIT_FAIL_CLOSED": "true", "SECRETSD_METRICS_TOKEN": token},
        extra_args=["--workers", "2"],
    )
    sm = client_factory("secretsmanager", server=server)
    sm.create_secret(Name="guarded", SecretString="v")
    calls = 10
    for _ in range(calls):
        assert sm.get_secret_value(SecretId="guarded")["SecretString"] == "v"
    # Fail-closed: each acknowledged call's record is already committed.
    assert sum(r["eventName"] == "GetSecretValue" for r in records(server)) == calls

    with pytest.raises(urllib.error.HTTPError) as unauthorized:
        metrics(server)
    assert unauthorized.value.code == 401
    unauthorized.value.close()
    before = metrics(server, token)
    key = (
        'secretsd_requests_total{code="",operation="GetSecretValue",'
        'service="secretsmanager",status="200"}'
    )
    assert before[key] == calls  # summed over both workers

    execute(server, *_block_audit_inserts(server))
    with pytest.raises(ClientError) as refused:
        sm.get_secret_value(SecretId="guarded")
    assert refused.value.response["Error"]["Code"] == "InternalServiceError"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
    after = metrics(server, token)
    assert after[key] == calls
    assert after['secretsd_audit_records_total{result="failed"}'] >= 1
    assert (
        after[
            'secretsd_requests_total{code="InternalServiceError",operation="GetSecretValue",'
            'service="secretsmanager",status="500"}'
        ]
        == 1
    )
    on_table = "" if server.database_url is None else " ON audit_blocks"
    execute(server, ("DROP TRIGGER audit_blocked" + on_table, ()))
    assert sm.get_secret_value(SecretId="guarded")["SecretString"] == "v"
    assert metrics(server, token)[key] == calls + 1
    assert not [k for k in after if "guarded" in k]  # no secret names in labels
    code, out = _verify(server)
    assert code == 0, out


def test_fail_closed_refuses_a_write_before_it_runs_once_the_store_fails(
    server_factory: ServerFactory, client_factory: ClientFactory
) -> None:
    server = server_factory(env={"SECRETSD_AUDIT_FAIL_CLOSED": "true"})
    # No retries: each attempt is seen alone.
    sm = client_factory("secretsmanager", server=server, config=Config(retries={"max_attempts": 1}))
    sm.create_secret(Name="guarded", SecretString="v")
    execute(server, *_block_audit_inserts(server))
    with pytest.raises(ClientError) as refused:
        sm.get_secret_value(SecretId="guarded")  # ran, but its record failed: refused after
    assert refused.value.response["Error"]["Code"] == "InternalServiceError"
    with pytest.raises(ClientError) as refused_write:
        sm.put_secret_value(SecretId="guarded", SecretString="never-stored")
    assert refused_write.value.response["Error"]["Code"] == "InternalServiceError"
    on_table = "" if server.database_url is None else " ON audit_blocks"
    execute(server, ("DROP TRIGGER audit_blocked" + on_table, ()))
    # The write never ran: one version, the old value (reads go through at once: a read whose
    # record is committed reopens the gate for writes).
    assert len(sm.list_secret_version_ids(SecretId="guarded")["Versions"]) == 1
    assert sm.get_secret_value(SecretId="guarded")["SecretString"] == "v"
    assert sm.put_secret_value(SecretId="guarded", SecretString="v2")["VersionId"]
    trail = records(server)
    puts = [r for r in trail if r["eventName"] == "PutSecretValue"]
    assert [p.get("errorCode") for p in puts] == [None]  # the refused one left no record
    code, out = _verify(server)
    assert code == 0, out


def test_service_events_are_published_as_aws_service_events(
    client_factory: ClientFactory, server: ServerProcess, unique_name: NameFactory
) -> None:
    sm = client_factory("secretsmanager", server=server)
    arn = sm.create_secret(
        Name=unique_name(), SecretString="v", AddReplicaRegions=[{"Region": "eu-west-1"}]
    )["ARN"]
    trail = client_factory(LOOKUP, server=server)
    events = wait_for_events(
        lambda: trail.lookup_events(
            LookupAttributes=[{"AttributeKey": "ResourceName", "AttributeValue": arn}]
        )["Events"],
        lambda found: any(e["EventName"] == "ReplicationSucceeded" for e in found),
    )
    (event,) = [e for e in events if e["EventName"] == "ReplicationSucceeded"]
    record = json.loads(event["CloudTrailEvent"])
    assert record["eventType"] == "AwsServiceEvent"
    assert record["eventSource"] == "secretsmanager.amazonaws.com"
    assert record["userIdentity"]["invokedBy"] == "secretsmanager.amazonaws.com"
    assert record["serviceEventDetails"] == {"replicaRegion": "eu-west-1"}
    assert record["resources"][0]["ARN"] == arn
    assert "Username" not in event and "AccessKeyId" not in event


def test_lambda_and_logs_calls_are_recorded_without_variables(
    client_factory: ClientFactory, server: ServerProcess, unique_name: NameFactory
) -> None:
    lam = client_factory("lambda", server=server)
    logs = client_factory("logs", server=server)
    name = unique_name()
    canary_value = "lambda-variable-" + secrets.token_hex(16)
    lam.list_functions()
    with pytest.raises(ClientError) as refused:
        lam.create_function(
            FunctionName=name,
            Runtime="python3.11",
            Role="arn:aws:iam::000000000000:role/none",
            Handler="app.handler",
            Code={"ZipFile": b"not a zip"},
            Environment={"Variables": {"TOKEN": canary_value}},
        )
    code = refused.value.response["Error"]["Code"]
    with pytest.raises(ClientError):
        lam.get_function(FunctionName=name)
    logs.describe_log_groups(logGroupNamePrefix="/aws/lambda/" + name)

    def ours() -> list[dict[str, Any]]:
        return [
            r
            for r in records(server)
            if r.get("eventSource") in ("lambda.amazonaws.com", "logs.amazonaws.com")
            and (r.get("eventName") == "ListFunctions" or name in json.dumps(r))
        ]

    deadline = time.monotonic() + 5
    found = ours()
    while len({r["eventName"] for r in found}) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)
        found = ours()
    by_name = {r["eventName"]: r for r in found}
    assert set(by_name) >= {"ListFunctions", "CreateFunction", "GetFunction", "DescribeLogGroups"}
    create = by_name["CreateFunction"]
    assert create["errorCode"] == code
    assert create["requestParameters"]["functionName"] == name
    assert create["requestParameters"]["environment"]["variables"] == (
        "HIDDEN_DUE_TO_SECURITY_REASONS"
    )
    assert by_name["GetFunction"]["errorCode"] == "ResourceNotFoundException"
    assert by_name["GetFunction"]["readOnly"] is True
    assert by_name["DescribeLogGroups"]["eventSource"] == "logs.amazonaws.com"
    assert canary_value not in json.dumps(found)
    assert canary_value not in "\n".join(json.dumps(r) for r in records(server))
