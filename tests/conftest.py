"""Session-wide fixtures: real `secretsd serve` processes on SQLite and PostgreSQL, and clients.

`backend` is parametrised (`sqlite`, `postgres`), so every test that uses `server`, `sm`,
`aws_cli`, `fresh_server` or `server_factory` runs once per backend; `-k sqlite` selects one.
PostgreSQL is only started when a postgres-backed test actually runs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest

from support import failure_logs
from support.clients import ISOLATED_AWS_ENV
from support.factories import (
    AwsCli,
    ClientFactory,
    SecretsManagerFactory,
    ServerFactory,
    new_database,
)
from support.names import NameFactory
from support.postgres import PostgresServer, PostgresUnavailable, postgres_required
from support.server import SCRUBBED_ENV_PREFIXES, ServerProcess

if TYPE_CHECKING:
    from support.browser import Screenshots

BACKENDS = ("sqlite", "postgres")
_STARTED = pytest.StashKey[float]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    item.stash[_STARTED] = time.time()
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failed test's report carries what its servers logged at warning level and above."""
    report = yield
    if report.failed and isinstance(item, pytest.Function):
        servers = [v for v in item.funcargs.values() if isinstance(v, ServerProcess)]
        factory = item.funcargs.get("server_factory")
        if isinstance(factory, ServerFactory):
            servers += factory.started
        since = item.stash.get(_STARTED, call.start)
        report.sections.extend(failure_logs.sections(dict.fromkeys(servers), since))
    return report


@pytest.fixture(scope="session", autouse=True)
def _isolated_aws_environment() -> Iterator[None]:
    """No AWS_* setting of the machine running the tests (profile, keys, endpoint, region...)
    may reach a boto3 client created in the test process."""
    with pytest.MonkeyPatch.context() as mp:
        for name in list(os.environ):
            if name.startswith(SCRUBBED_ENV_PREFIXES) and not name.startswith("SECRETSD_"):
                mp.delenv(name)
        for name, value in ISOLATED_AWS_ENV.items():
            mp.setenv(name, value)
        yield


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """The PostgreSQL server for the session (SECRETSD_TEST_DATABASE_URL or a private cluster)."""
    try:
        server = PostgresServer.from_environment()
    except PostgresUnavailable as exc:
        message = f"PostgreSQL-backed tests cannot run: {exc}"
        if postgres_required():
            pytest.fail(message)
        pytest.skip(f"SKIPPING POSTGRESQL TESTS. {message}")
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session", params=BACKENDS, ids=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    param: str = request.param
    return param


@pytest.fixture(scope="session")
def server(
    request: pytest.FixtureRequest, backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """One server per backend for the whole session, shared by tests: don't stop or kill it."""
    process = ServerProcess(
        tmp_path_factory.mktemp(f"server-{backend}"),
        new_database(request, backend, "shared"),
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def server_factory(
    request: pytest.FixtureRequest, backend: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerFactory]:
    factory = ServerFactory(request, backend, tmp_path_factory)
    try:
        yield factory
    finally:
        factory.stop_all()


@pytest.fixture
def fresh_server(server_factory: ServerFactory) -> ServerProcess:
    """A server of this test's own (data dir, database) that it may stop, kill9 and restart."""
    return server_factory()


@pytest.fixture(scope="session")
def boto_session(_isolated_aws_environment: None) -> boto3.session.Session:
    # One session for all clients so service models are loaded once.
    return boto3.session.Session()


@pytest.fixture
def client_factory(
    request: pytest.FixtureRequest, backend: str, boto_session: boto3.session.Session
) -> Iterator[ClientFactory]:
    # Depends on `backend` so that tests using it are parametrised even though the `server`
    # fixture is only looked up (lazily) when no explicit server is passed.
    factory = ClientFactory(request, boto_session)
    try:
        yield factory
    finally:
        factory.close_all()


@pytest.fixture
def sm_factory(client_factory: ClientFactory) -> SecretsManagerFactory:
    return SecretsManagerFactory(client_factory)


@pytest.fixture
def sm(sm_factory: SecretsManagerFactory, server: ServerProcess) -> Any:
    """A secretsmanager client (us-east-1, admin credentials) for the shared `server`."""
    return sm_factory(server=server)


@pytest.fixture(scope="session")
def _cli_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("aws-cli-home")


@pytest.fixture
def aws_cli(request: pytest.FixtureRequest, backend: str, _cli_home: Path) -> AwsCli:
    # Depends on `backend` for the same reason as `client_factory`.
    return AwsCli(request, _cli_home)


@pytest.fixture
def unique_name(request: pytest.FixtureRequest) -> NameFactory:
    """`unique_name()` / `unique_name("suffix")`: a secret name no other test uses."""
    return NameFactory(request.node.name)


@pytest.fixture(scope="session")
def shot(tmp_path_factory: pytest.TempPathFactory) -> Screenshots:
    """The browser tests' screenshots: into docs/console/ with SECRETSD_UPDATE_SCREENSHOTS=1,
    else into a temporary directory (a test run leaves the committed ones alone)."""
    # Imported here: only the browser tests need Playwright.
    from support.browser import DOCS_SCREENSHOTS, Screenshots, updating_docs_screenshots

    if updating_docs_screenshots():
        return Screenshots(DOCS_SCREENSHOTS)
    return Screenshots(tmp_path_factory.mktemp("screenshots"))
