"""The replication peer list (service/peers.py): parsing and what it refuses."""

from __future__ import annotations

from pathlib import Path

import pytest

from secretsd.service.peers import PeerConfigError, parse_peers


def creds(tmp_path: Path, text: str) -> str:
    path = tmp_path / "peers"
    path.write_text(text)
    return str(path)


def test_peers_with_a_section_each_or_the_default(tmp_path: Path) -> None:
    file = creds(
        tmp_path,
        "[us-west-2]\naws_access_key_id = AKIAWEST\naws_secret_access_key = west-secret\n"
        "[default]\naws_access_key_id = AKIADEF\naws_secret_access_key = def-secret\n",
    )
    peers = parse_peers(
        "us-west-2=https://west.example:8566/, eu-west-1=http://10.0.0.5:8566", file
    )
    assert set(peers) == {"us-west-2", "eu-west-1"}
    west, eu = peers["us-west-2"], peers["eu-west-1"]
    assert (west.url, west.access_key_id, west.secret_access_key) == (
        "https://west.example:8566",
        "AKIAWEST",
        "west-secret",
    )
    assert (eu.url, eu.access_key_id) == ("http://10.0.0.5:8566", "AKIADEF")
    # The secret key never shows in a repr (logs, tracebacks).
    assert "west-secret" not in repr(west) and "west-secret" not in repr(peers)


def test_no_peers_needs_no_file() -> None:
    assert parse_peers("", "") == {}
    assert parse_peers(" , ", "") == {}


@pytest.mark.parametrize(
    ("spec", "text", "needle"),
    [
        ("us-west-2=https://w", None, "credentials file"),
        ("us-west-2", "[default]\n", "expected REGION=http(s)://"),
        ("us-west-2=ftp://w", "[default]\n", "expected REGION=http(s)://"),
        ("us-west-2=file:///etc/passwd", "[default]\n", "expected REGION=http(s)://"),
        ("us-west-2=https://w", "[eu-west-1]\naws_access_key_id = a\n", "no credentials"),
        ("us-west-2=https://w", "[us-west-2]\naws_access_key_id = a\n", "incomplete"),
    ],
)
def test_bad_peer_lists_are_refused(
    tmp_path: Path, spec: str, text: str | None, needle: str
) -> None:
    file = creds(tmp_path, text) if text is not None else ""
    with pytest.raises(PeerConfigError) as exc:
        parse_peers(spec, file)
    assert needle in str(exc.value)
