"""The callables behind the `server_factory`, `client_factory`, `sm_factory` and `aws_cli`
fixtures; importable so tests can annotate them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from support.clients import DEFAULT_REGION, CliResult, make_client, run_aws_cli
from support.postgres import PostgresServer
from support.server import Credentials, ServerProcess


def new_database(request: pytest.FixtureRequest, backend: str, hint: str) -> str | None:
    """A fresh database for `backend`; None for SQLite, where the server's default file inside its
    data dir is already fresh."""
    if backend == "sqlite":
        return None
    pg: PostgresServer = request.getfixturevalue("pg_server")
    return pg.create_database(hint)


class ServerFactory:
    """`server_factory(...)` starts (by default) a new server with its own data dir and, unless a
    `database_url` is given (e.g. another server's, to run two nodes), its own database."""

    def __init__(
        self, request: pytest.FixtureRequest, backend: str, tmp: pytest.TempPathFactory
    ) -> None:
        self._request = request
        self.backend = backend
        self._tmp = tmp
        self.started: list[ServerProcess] = []

    def __call__(
        self,
        *,
        database_url: str | None = None,
        data_dir: Path | None = None,
        extra_args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        start: bool = True,
    ) -> ServerProcess:
        if database_url is None:
            database_url = new_database(self._request, self.backend, self._request.node.name)
        process = ServerProcess(
            data_dir or self._tmp.mktemp(f"fresh-{self.backend}"),
            database_url,
            extra_args=extra_args,
            env=env,
        )
        self.started.append(process)
        return process.start() if start else process

    def stop_all(self) -> None:
        for process in self.started:
            process.stop()


class ClientFactory:
    """`client_factory(service, server=..., region=..., credentials=..., config=...)`: a boto3
    client for the `server` fixture's server unless another is given, with its admin
    credentials unless others are given; no retries."""

    def __init__(self, request: pytest.FixtureRequest, session: boto3.session.Session) -> None:
        self._request = request
        self._session = session
        self._clients: list[Any] = []

    def __call__(
        self,
        service: str,
        *,
        server: ServerProcess | None = None,
        region: str = DEFAULT_REGION,
        credentials: Credentials | None = None,
        config: Config | None = None,
    ) -> Any:
        target: ServerProcess = server or self._request.getfixturevalue("server")
        client = make_client(
            self._session,
            service,
            target.endpoint,
            credentials or target.credentials,
            region,
            config,
        )
        self._clients.append(client)
        return client

    def close_all(self) -> None:
        for client in self._clients:
            client.close()


class SecretsManagerFactory:
    """`sm_factory(region="us-east-1", *, server=None, credentials=None, config=None)`."""

    def __init__(self, clients: ClientFactory) -> None:
        self._clients = clients

    def __call__(
        self,
        region: str = DEFAULT_REGION,
        *,
        server: ServerProcess | None = None,
        credentials: Credentials | None = None,
        config: Config | None = None,
    ) -> Any:
        return self._clients(
            "secretsmanager",
            server=server,
            region=region,
            credentials=credentials,
            config=config,
        )


class AwsCli:
    """`aws_cli("secretsmanager", "list-secrets", region=..., server=..., credentials_file=...,
    input=..., env=...)` -> CliResult(returncode, output, stderr); `output` is parsed JSON."""

    def __init__(self, request: pytest.FixtureRequest, home: Path) -> None:
        self._request = request
        self._home = home

    def __call__(
        self,
        *args: str,
        region: str = DEFAULT_REGION,
        server: ServerProcess | None = None,
        credentials_file: Path | None = None,
        input: str | None = None,
        env: Mapping[str, str] | None = None,
    ) -> CliResult:
        target: ServerProcess = server or self._request.getfixturevalue("server")
        return run_aws_cli(
            args,
            endpoint=target.endpoint,
            credentials_file=credentials_file or target.credentials_path,
            region=region,
            home=self._home,
            input=input,
            env=env,
        )
