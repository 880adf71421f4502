"""`secretsd` command line: serve and init (root key commands: `cli/root_keys.py`; backup and
restore: `cli/backup.py`)."""

from __future__ import annotations

import functools
import logging
import os
import shutil
import signal
import socket
import ssl
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import click
import uvicorn
from uvicorn.supervisors import Multiprocess

from secretsd.app import build_app, build_server, passphrase_protector, worker_app
from secretsd.bootstrap import InitResult, RootKeyMismatch, initialise
from secretsd.cli import accounts, audit, backup, root_keys
from secretsd.cli.logs import configure_logging
from secretsd.clock import SystemClock
from secretsd.crypto.protectors import ProtectorMismatch, ProtectorUnavailable
from secretsd.kms.root_keys import RootKeyError
from secretsd.protocol.sealed import AsgiApp, SealedGate, starting
from secretsd.service.peers import PeerConfigError, parse_peers
from secretsd.settings import Settings
from secretsd.store.database import Database


def _settings(**options: object) -> Settings:
    base = Settings.from_env()
    changes = {k: v for k, v in options.items() if v is not None}
    if "data_dir" in changes:
        changes["data_dir"] = Path(str(changes["data_dir"]))
    return replace(base, **changes)  # type: ignore[arg-type]


def _configure_logging(level: str, log_format: str = "text") -> None:
    configure_logging(level, log_format)


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _init(settings: Settings) -> InitResult:
    db = Database(settings.effective_database_url)
    try:
        result = initialise(settings, db, SystemClock(settings.clock_offset_seconds))
    except (RootKeyMismatch, RootKeyError, ProtectorMismatch, ProtectorUnavailable) as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        db.close()
    if result.sealed:
        click.echo(
            "secretsd: sealed (a passphrase protects the root keys); unseal with `secretsd unseal`",
            err=True,
        )
    if result.created:
        click.echo(
            f"secretsd: initialised account {result.account_id}; administrator credentials in"
            f" {settings.admin_credentials_path}",
            err=True,
        )
    return result


@click.group()
def main() -> None:
    """secretsd: a self-hosted server speaking the AWS Secrets Manager API."""


_data_dir = click.option(
    "--data-dir",
    type=click.Path(file_okay=False),
    help="Root key, credentials and (by default) the SQLite database. [./secretsd-data]",
)
_database = click.option(
    "--database",
    "database_url",
    help="sqlite:///path or postgresql://user@host:port/db. [SQLite in the data dir]",
)


@main.command()
@_data_dir
@_database
def init(data_dir: str | None, database_url: str | None) -> None:
    """Initialise a data directory and database (serve does this on first start)."""
    settings = _settings(data_dir=data_dir, database_url=database_url)
    _configure_logging(settings.log_level)
    _init(settings)


@main.command()
@click.option("--host", help="Address to listen on. [127.0.0.1]")
@click.option("--port", type=int, help="Port to listen on; 0 picks a free one. [8566]")
@_data_dir
@_database
@click.option("--workers", type=click.IntRange(min=1), help="Worker processes. [1]")
@click.option("--log-level", type=click.Choice(["debug", "info", "warning", "error"]))
@click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    help="json: one JSON object per line, request lines with request_id. [text]",
)
@click.option(
    "--purge-interval",
    "purge_interval_seconds",
    type=float,
    help="Seconds between looks for secrets whose recovery window ended. [60]",
)
@click.option(
    "--tls-cert",
    "tls_cert_path",
    type=click.Path(dir_okay=False, exists=True),
    help="Serve HTTPS with this PEM certificate (chain); re-read on SIGHUP. [HTTP]",
)
@click.option(
    "--tls-key",
    "tls_key_path",
    type=click.Path(dir_okay=False, exists=True),
    help="The certificate's PEM private key.",
)
@click.option(
    "--clock-offset",
    "clock_offset_seconds",
    type=float,
    hidden=True,
    help="Shift the server clock (drills and tests only).",
)
@click.option(
    "--replication-peer",
    "replication_peers",
    multiple=True,
    metavar="REGION=URL",
    help="A region another secretsd deployment serves (repeatable; docs/replication.md).",
)
@click.option(
    "--replication-credentials",
    type=click.Path(dir_okay=False),
    help="AWS-style credentials file for the peers: a [REGION] (or [default]) section each.",
)
def serve(**options: object) -> None:
    """Run the server (initialising the data directory on first start)."""
    peers = options.pop("replication_peers")
    if isinstance(peers, tuple) and peers:
        options["replication_peers"] = ",".join(str(p) for p in peers)
    settings = _settings(**options)
    try:
        parse_peers(settings.replication_peers, settings.replication_credentials)
    except PeerConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    _configure_logging(settings.log_level, settings.log_format)
    if bool(settings.tls_cert_path) != bool(settings.tls_key_path):
        raise click.ClickException("--tls-cert and --tls-key go together")
    sealed = _init(settings).sealed
    sock = _bind(settings.host, settings.port)
    host, port = sock.getsockname()[:2]
    settings = replace(settings, port=port, data_dir=settings.data_dir.resolve())
    if settings.workers > 1 and settings.metrics_enabled:
        settings = replace(settings, metrics_multiprocess_dir=str(_metrics_dir(settings)))
    if settings.workers == 1:
        config = _uvicorn_config(settings, app=_server_app(settings))
        server = uvicorn.Server(config)
        if settings.tls_cert_path:
            _reload_tls_on_sighup(settings, config)
        _announce(host, port, settings)
        server.run(sockets=[sock])
        return
    if sealed:
        _announce(host, port, settings)
        wrapping_key = _unseal_before_workers(settings, sock)
        if wrapping_key is None:
            return
        # The derived key reaches the (spawned) workers pickled through multiprocessing's
        # pipe, with the app factory: never through the environment or a file.
        config = _uvicorn_config(
            settings,
            app=functools.partial(worker_app, settings, wrapping_key),
            factory=True,
            workers=settings.workers,
        )
        Multiprocess(config, sockets=[sock]).run()
        return
    build_app(settings)  # fail here, once, rather than in every worker
    # Workers are fresh processes: they rebuild the same Settings from the environment.
    os.environ.update(settings.to_env())
    config = _uvicorn_config(
        settings, app="secretsd.app:app_from_environment", factory=True, workers=settings.workers
    )
    # With several workers, uvicorn's supervisor answers SIGHUP by restarting them: each new
    # worker reads the certificate afresh.
    _announce(host, port, settings)
    Multiprocess(config, sockets=[sock]).run()


def _metrics_dir(settings: Settings) -> Path:
    """A fresh directory for prometheus-client's per-worker files: the library reads
    PROMETHEUS_MULTIPROC_DIR when the (spawned) workers import it, so it is set before they
    start; left over from an earlier run, its counts would be summed in, so it starts empty."""
    path = settings.data_dir / "metrics"
    if path.exists():
        shutil.rmtree(path)
    path.mkdir(mode=0o700)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    return path


def _server_app(settings: Settings) -> AsgiApp:
    try:
        return build_server(settings)
    except (RootKeyError, ProtectorMismatch, ProtectorUnavailable) as exc:
        raise click.ClickException(str(exc)) from exc


def _unseal_before_workers(settings: Settings, sock: socket.socket) -> bytes | None:
    """Several workers, passphrase-protected root keys: the supervisor answers on the socket,
    sealed, until the right passphrase arrives, then hands over to the workers.

    An unseal call could otherwise reach only one of several worker processes. None when the
    server was stopped while still sealed."""
    found: list[bytes] = []
    server: uvicorn.Server | None = None

    def unseal(passphrase: str) -> AsgiApp:
        protector = passphrase_protector(settings, passphrase)
        found.append(protector.wrapping_key)
        assert server is not None
        server.should_exit = True
        return starting

    gate = SealedGate(unseal, {"workers": settings.workers})
    server = uvicorn.Server(_uvicorn_config(settings, app=gate))
    # uvicorn closes the sockets it serves on when it stops: give it a duplicate, so that the
    # listening socket (and connections queued on it) carry over to the workers.
    duplicate = socket.socket(fileno=os.dup(sock.fileno()))
    server.run(sockets=[duplicate])
    return found[0] if found else None


def _reload_tls_on_sighup(settings: Settings, config: uvicorn.Config) -> None:
    """One process: SIGHUP loads the certificate and key again into the live SSL context, so
    new connections get the new certificate and open ones carry on."""

    def reload(signum: int, frame: object) -> None:
        if config.ssl is None:
            return
        try:
            config.ssl.load_cert_chain(settings.tls_cert_path, settings.tls_key_path)
        except (OSError, ssl.SSLError) as exc:
            logging.getLogger("secretsd").error("TLS certificate not reloaded: %s", exc)
            return
        logging.getLogger("secretsd").info("TLS certificate reloaded")

    signal.signal(signal.SIGHUP, reload)


def _uvicorn_config(settings: Settings, **app: Any) -> uvicorn.Config:
    if settings.tls_cert_path:
        app = {
            **app,
            "ssl_certfile": settings.tls_cert_path,
            "ssl_keyfile": settings.tls_key_path,
        }
    return uvicorn.Config(
        **app,
        lifespan="on",
        http="httptools",
        loop="uvloop",
        access_log=False,
        log_config=None,
        log_level=settings.log_level,
        server_header=False,
    )


def _announce(host: str, port: int, settings: Settings) -> None:
    shown = f"[{host}]" if ":" in host else host
    scheme = "https" if settings.tls_cert_path else "http"
    click.echo(f"secretsd: listening on {scheme}://{shown}:{port}")
    sys.stdout.flush()


root_keys.register(main, _settings, _data_dir, _database)
accounts.register(main, _settings, _data_dir, _database)
backup.register(main, _settings, _data_dir, _database)
audit.register(main, _settings, _data_dir, _database)

if __name__ == "__main__":
    main()
