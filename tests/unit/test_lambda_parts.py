"""Pure parts of Lambda: deployment package safety, REST routing from the model, log filter
patterns, log event ordering, function ARNs."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from secretsd.errors import ServiceError
from secretsd.protocol.model import load_service_model
from secretsd.protocol.rest import RestProtocol
from secretsd.runtime.sandbox import CodeRejected, check_zip, unpack
from secretsd.service.functions import parse_function_arn
from secretsd.service.logs import FilterPattern
from secretsd.store.lambda_repository import new_event_id

LAMBDA_OPERATIONS = ("GetFunction", "Invoke", "RemovePermission", "ListFunctions", "GetPolicy")


def _zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in entries.items():
            archive.writestr(name, data)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "name", ["../evil.py", "a/../../evil.py", "/etc/cron.d/evil", "a\\..\\evil.py"]
)
def test_zip_entries_leaving_the_task_root_are_refused(name: str, tmp_path: Path) -> None:
    package = _zip({"app.py": b"x = 1", name: b"boom"})
    with pytest.raises(CodeRejected):
        check_zip(package)
    root = tmp_path / "task"
    root.mkdir()
    with pytest.raises(CodeRejected):
        unpack(package, root)
    assert not (tmp_path / "evil.py").exists()


def test_unpack_keeps_files_read_only_for_the_function(tmp_path: Path) -> None:
    package = _zip({"app.py": b"x = 1", "pkg/__init__.py": b"", "pkg/mod.py": b"y = 2"})
    assert check_zip(package) == len(b"x = 1") + len(b"y = 2")
    unpack(package, tmp_path)
    assert (tmp_path / "pkg" / "mod.py").read_bytes() == b"y = 2"
    assert (tmp_path / "app.py").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "pkg").stat().st_mode & 0o777 == 0o755


def test_not_a_zip_is_refused() -> None:
    with pytest.raises(CodeRejected):
        check_zip(b"PK\x03\x04 but not really")


def test_rest_routing_follows_the_model() -> None:
    protocol = RestProtocol(load_service_model("lambda"), LAMBDA_OPERATIONS)
    matched = protocol.match("GET", "/2015-03-31/functions/my-fn")
    assert matched is not None and matched[0].name == "GetFunction"
    assert matched[1] == {"FunctionName": "my-fn"}
    arn = "arn%3Aaws%3Alambda%3Aus-east-1%3A123456789012%3Afunction%3Amy-fn"
    matched = protocol.match("POST", f"/2015-03-31/functions/{arn}/invocations")
    assert matched is not None and matched[0].name == "Invoke"
    assert matched[1]["FunctionName"] == "arn:aws:lambda:us-east-1:123456789012:function:my-fn"
    matched = protocol.match("DELETE", "/2015-03-31/functions/f/policy/sid-1")
    assert matched is not None and matched[0].name == "RemovePermission"
    assert matched[0].status == 204
    assert protocol.match("GET", "/2015-03-31/functions/f/versions") is None
    with pytest.raises(ServiceError):
        protocol.match("PATCH", "/2015-03-31/functions/f")


def test_rest_input_from_path_query_headers_and_raw_payload() -> None:
    protocol = RestProtocol(load_service_model("lambda"), LAMBDA_OPERATIONS)
    matched = protocol.match("POST", "/2015-03-31/functions/f/invocations")
    assert matched is not None
    op, uri = matched
    params = protocol.parse(
        op,
        uri,
        b"Qualifier=%24LATEST",
        [(b"x-amz-invocation-type", b"Event"), (b"x-amz-log-type", b"Tail")],
        b'{"raw": true}',
    )
    assert params == {
        "FunctionName": "f",
        "Qualifier": "$LATEST",
        "InvocationType": "Event",
        "LogType": "Tail",
        "Payload": b'{"raw": true}',
    }
    status, headers, body, _ = protocol.response(
        op, {"StatusCode": 200, "FunctionError": "Unhandled", "Payload": b"[1]"}
    )
    assert (status, body) == (200, b"[1]")
    assert (b"x-amz-function-error", b"Unhandled") in headers
    listing = protocol.match("GET", "/2015-03-31/functions/")
    assert listing is not None
    assert protocol.parse(listing[0], listing[1], b"MaxItems=5", [], b"") == {"MaxItems": 5}


@pytest.mark.parametrize(
    ("pattern", "message", "matches"),
    [
        ("", "anything", True),
        ("ERROR", "[ERROR] boom", True),
        ("ERROR", "[error] boom", False),
        ("ERROR boom", "[ERROR] boom", True),
        ("ERROR boom", "[ERROR] bang", False),
        ('"echo says"', "echo says hi", True),
        ('"echo says"', "says echo", False),
        ("?ERROR ?WARN", "WARN x", True),
        ("?ERROR ?WARN", "INFO x", False),
        ("START -REPORT", "START RequestId", True),
        ("START -RequestId", "START RequestId", False),
    ],
)
def test_filter_patterns(pattern: str, message: str, matches: bool) -> None:
    assert FilterPattern(pattern).matches(message) is matches


def test_json_filter_patterns_are_refused_not_ignored() -> None:
    with pytest.raises(ServiceError):
        FilterPattern('{ $.level = "ERROR" }')


@given(
    st.lists(
        st.tuples(st.integers(0, 2**41), st.integers(0, 2**41), st.integers(0, 999_999)),
        min_size=2,
        max_size=20,
    )
)
def test_event_ids_sort_by_timestamp_ingestion_and_sequence(
    keys: list[tuple[int, int, int]],
) -> None:
    ids = {key: new_event_id(*key) for key in keys}
    assert all(len(i) == 56 and i.isdigit() for i in ids.values())
    ordered = sorted(set(keys))
    assert [ids[k] for k in ordered] == sorted(ids[k] for k in ordered)


@pytest.mark.parametrize(
    ("arn", "expected"),
    [
        (
            "arn:aws:lambda:us-east-1:123456789012:function:rot",
            ("123456789012", "us-east-1", "rot"),
        ),
        (
            "arn:aws:lambda:eu-west-1:123456789012:function:rot:$LATEST",
            ("123456789012", "eu-west-1", "rot"),
        ),
        ("arn:aws:lambda:us-east-1:123456789012:function:rot:v1", None),
        ("rot", None),
        ("123456789012:function:rot", None),
    ],
)
def test_function_arns(arn: str, expected: tuple[str, str, str] | None) -> None:
    ref = parse_function_arn(arn)
    assert (None if ref is None else (ref.account_id, ref.region, ref.name)) == expected
