"""IAM and STS (AWS query protocol): no request, however malformed, gets a 5xx or a hang.

Inputs are generated from botocore's iam and sts models (mostly near-valid, often wrong: missing,
mistyped or out-of-range members, junk members), flattened into form bodies the way the query
protocol does (``Tags.member.1.Key=...``), properly signed so they reach parsing, validation and
the handlers; plus raw junk bodies and odd Actions. Every answer must be 200 or 4xx XML with a
RequestId, and errors must be ``<ErrorResponse><Error><Code>`` with a code the model or the
protocol knows. The test runs against a server of its own: the generated calls change IAM.
"""

from __future__ import annotations

import base64
import secrets
from typing import Any
from urllib.parse import urlencode
from xml.etree import ElementTree

import botocore.session
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support.factories import ServerFactory
from support.model_inputs import ModelInputs
from support.server import ServerProcess
from support.signing import RawClient, RawRequest, Signer

FORM = "application/x-www-form-urlencoded; charset=utf-8"
SESSION = botocore.session.get_session()
MODELS = {name: SESSION.get_service_model(name) for name in ("iam", "sts")}
VERSIONS = {"iam": "2010-05-08", "sts": "2011-06-15"}
# The query protocol's own errors, SigV4's and the edge's, besides each model's error shapes.
PROTOCOL_ERRORS = frozenset(
    {
        "AccessDenied",
        "ExpiredToken",
        "IncompleteSignature",
        "InvalidAction",
        "InvalidClientTokenId",
        "InvalidParameterCombination",
        "InvalidParameterValue",
        "MalformedInput",
        "MissingAction",
        "MissingAuthenticationToken",
        "MissingParameter",
        "RequestEntityTooLarge",
        "ServiceUnavailable",
        "SignatureDoesNotMatch",
        "ValidationError",
    }
)
KNOWN_ERRORS = PROTOCOL_ERRORS | {
    str(shape.metadata.get("error", {}).get("code", shape.name))
    for model in MODELS.values()
    for shape in model.error_shapes
}


def flatten(value: Any, prefix: str, out: list[tuple[str, str]]) -> None:
    """The query protocol's flattening: structures by member name, lists as `member.N`,
    maps as `entry.N.key`/`entry.N.value`; junk (any JSON-ish value) is flattened alike."""
    if isinstance(value, dict):
        for name, member in value.items():
            flatten(member, f"{prefix}.{name}" if prefix else str(name), out)
    elif isinstance(value, list):
        for index, item in enumerate(value, 1):
            flatten(item, f"{prefix}.member.{index}", out)
    elif isinstance(value, bool):
        out.append((prefix, "true" if value else "false"))
    elif isinstance(value, bytes):
        out.append((prefix, base64.b64encode(value).decode()))
    elif value is None:
        out.append((prefix, ""))
    else:
        out.append((prefix, str(value)))


def form_body(service: str, action: str, params: dict[str, Any]) -> bytes:
    pairs = [("Action", action), ("Version", VERSIONS[service])]
    flatten(params, "", pairs)
    # Lone surrogates travel as their (invalid) UTF-8 bytes, as a careless client would send.
    raw = [
        (k.encode("utf-8", "surrogatepass"), v.encode("utf-8", "surrogatepass")) for k, v in pairs
    ]
    return urlencode(raw).encode()


def assert_query_shaped(response: httpx.Response) -> None:
    what = f"{response.request.content[:120]!r} -> {response.status_code}"
    assert response.status_code == 200 or 400 <= response.status_code < 500, (
        f"{what}: {response.content[:500]!r}"
    )
    try:
        root = ElementTree.fromstring(response.content)  # noqa: S314 - our own server's answer
    except ElementTree.ParseError:
        pytest.fail(f"{what}: not XML: {response.content[:500]!r}")
    texts = {el.tag.rsplit("}", 1)[-1]: (el.text or "") for el in root.iter()}
    assert texts.get("RequestId"), f"{what}: no RequestId"
    if response.status_code != 200:
        assert root.tag.rsplit("}", 1)[-1] == "ErrorResponse", f"{what}: {response.content!r}"
        assert texts.get("Code") in KNOWN_ERRORS, f"{what}: {response.content!r}"
        assert "Message" in texts, f"{what}: {response.content!r}"


@pytest.fixture
def own_server(server_factory: ServerFactory) -> ServerProcess:
    return server_factory()


def test_generated_iam_and_sts_requests_never_5xx(own_server: ServerProcess) -> None:
    prefix = "fuzz" + secrets.token_hex(3)
    inputs = {
        name: ModelInputs(model, names=[prefix + "-user"], prefix=prefix, marker="MARKER")
        for name, model in MODELS.items()
    }
    clients = {
        name: RawClient(
            own_server.endpoint, Signer(own_server.credentials, region="us-east-1", service=name)
        )
        for name in MODELS
    }

    @st.composite
    def requests(draw: st.DrawFn) -> tuple[str, bytes]:
        service = draw(st.sampled_from(sorted(MODELS)))
        kind = draw(st.sampled_from(["model"] * 8 + ["junk", "odd-action"]))
        if kind == "junk":
            return service, draw(st.binary(max_size=300))
        if kind == "odd-action":
            action = draw(
                st.sampled_from(["", "createUser", "CreateUser ", "NoSuchAction", "__init__"])
            )
            return service, form_body(service, action, {})
        operation = draw(st.sampled_from(MODELS[service].operation_names))
        params = draw(inputs[service].inputs(operation))
        return service, form_body(service, operation, params)

    @settings(
        max_examples=250,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(requests())
    def check(request: tuple[str, bytes]) -> None:
        service, body = request
        response = clients[service].send(RawRequest(body=body, target=None, content_type=FORM))
        assert_query_shaped(response)

    try:
        check()
    finally:
        for client in clients.values():
            client.close()
    log = own_server.logs()
    assert "Traceback" not in log, log[-3000:]
    assert own_server.running
