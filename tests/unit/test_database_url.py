"""Database URLs: a PostgreSQL cluster as one libpq multi-host URL, also for the migrations."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given
from hypothesis import strategies as st
from psycopg.conninfo import conninfo_to_dict
from yoyo.connections import parse_uri

from secretsd.store.database import DatabaseUrl

CLUSTER = (
    "postgresql://secretsd:p%40ss%2Fword@10.0.0.1:5432,10.0.0.2:5433,db3.internal/secrets"
    "?target_session_attrs=read-write&connect_timeout=3"
)


def test_multi_host_url_is_kept_for_libpq() -> None:
    parsed = DatabaseUrl.parse(CLUSTER)
    assert parsed.dialect == "postgres"
    params = conninfo_to_dict(parsed.url)
    assert params["host"] == "10.0.0.1,10.0.0.2,db3.internal"
    assert params["port"] == "5432,5433,"
    assert params["target_session_attrs"] == "read-write"


def test_yoyo_url_carries_every_host_and_parameter() -> None:
    yoyo = DatabaseUrl.parse(CLUSTER).yoyo_url()
    uri = parse_uri(yoyo)  # what yoyo itself does with it; a multi-host netloc would not parse
    assert uri.scheme == "postgresql+psycopg"
    assert uri.database == "secrets"
    assert uri.hostname is None and uri.port is None
    assert uri.args == {
        "user": "secretsd",
        "password": "p@ss/word",
        "host": "10.0.0.1,10.0.0.2,db3.internal",
        "port": "5432,5433,",
        "target_session_attrs": "read-write",
        "connect_timeout": "3",
    }


@given(
    hosts=st.lists(
        st.tuples(
            st.from_regex(r"[a-z][a-z0-9-]{0,10}(\.[a-z]{2,5})?", fullmatch=True),
            st.integers(1, 65535),
        ),
        min_size=1,
        max_size=4,
    ),
    dbname=st.from_regex(r"[a-z_][a-z0-9_]{0,20}", fullmatch=True),
)
def test_yoyo_url_round_trips_any_host_list(hosts: list[tuple[str, int]], dbname: str) -> None:
    netloc = ",".join(f"{host}:{port}" for host, port in hosts)
    url = f"postgresql://postgres@{netloc}/{dbname}?target_session_attrs=read-write"
    yoyo = DatabaseUrl.parse(url).yoyo_url()
    query = {k: v[0] for k, v in parse_qs(urlsplit(yoyo).query).items()}
    assert query["host"] == ",".join(host for host, _ in hosts)
    assert query["port"] == ",".join(str(port) for _, port in hosts)
    assert parse_uri(yoyo).database == dbname


@pytest.mark.parametrize("url", ["mysql://x/y", "sqlite://", "file:///tmp/x"])
def test_other_schemes_are_refused(url: str) -> None:
    with pytest.raises(ValueError):
        DatabaseUrl.parse(url)
