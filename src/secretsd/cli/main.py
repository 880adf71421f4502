"""`secretsd` command line: serve and init (root key commands: `cli/root_keys.py`; backup and
restore: `cli/backup.py`)."""

from __future__ import annotations

import functools
import logging
import os
import shutil
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import click
import uvicorn
from uvicorn.supervisors import Multiprocess

from secretsd.agent.run import (
    DEFAULT_TOKEN_VARIABLES,
    AgentOptions,
    agent_server,
    build_agent,
    start_in_thread,
)
from secretsd.agent.upstream import AgentConfigError
from secretsd.app import build_app, build_server, passphrase_protector, worker_app
from secretsd.audit.writer_process import AuditWriterProcess, audit_writer_kind
from secretsd.bootstrap import InitResult, RootKeyMismatch, initialise
from secretsd.cli import accounts, audit, backup, root_keys
from secretsd.clock import SystemClock
from secretsd.crypto.protectors import ProtectorMismatch, ProtectorUnavailable
from secretsd.kms.root_keys import RootKeyError
from secretsd.logs import FORMATS, configure_logging
from secretsd.protocol.gathered_writes import GatheringHttpToolsProtocol
from secretsd.protocol.sealed import AsgiApp, SealedGate, starting
from secretsd.protocol.throttle import QuotaConfigError, quotas
from secretsd.service.peers import PeerConfigError, parse_peers
from secretsd.settings import Settings
from secretsd.store.database import Database
from secretsd.tls import ReloadingContext, TlsConfigError, new_context

AUDIT_WRITERS = ("auto", "process", "inline")


def _settings(**options: object) -> Settings:
    base = Settings.from_env()
    changes = {k: v for k, v in options.items() if v is not None}
    if "data_dir" in changes:
        changes["data_dir"] = Path(str(changes["data_dir"]))
    return replace(base, **changes)  # type: ignore[arg-type]


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
        _notice(
            settings,
            "secretsd: sealed (a passphrase protects the root keys); unseal with `secretsd unseal`",
        )
    if result.created:
        _notice(
            settings,
            f"secretsd: initialised account {result.account_id}; administrator credentials in"
            f" {settings.admin_credentials_path}",
        )
    return result


def _notice(settings: Settings, text: str) -> None:
    """A line for the operator on stderr: a log record when the log is JSON, so that every line
    there stays one JSON object."""
    if settings.log_format == "json":
        logging.getLogger("secretsd").warning(text)
    else:
        click.echo(text, err=True)


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
    configure_logging(settings.log_level, settings.log_format)
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
    type=click.Choice(FORMATS),
    help="text lines, or one JSON object per line (time, level, logger, message, request_id,"
    " operation, status, ms, error_code). [text]",
)
@click.option(
    "--purge-interval",
    "purge_interval_seconds",
    type=float,
    help="Seconds between looks for secrets whose recovery window ended. [60]",
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
@click.option(
    "--tls-cert",
    type=click.Path(dir_okay=False),
    help="PEM certificate chain: serve HTTPS (with --tls-key). SIGHUP re-reads both.",
)
@click.option("--tls-key", type=click.Path(dir_okay=False), help="PEM private key for --tls-cert.")
@click.option(
    "--throttle/--no-throttle",
    default=None,
    help="Apply AWS's Secrets Manager request rate quotas per account and region. [off]",
)
@click.option(
    "--throttle-rates",
    help="Override quotas: Operation=rate[,...] (requests per second for the operation's quota).",
)
@click.option(
    "--audit-writer",
    type=click.Choice(AUDIT_WRITERS),
    help="process: one audit writer process chains and commits the workers' records;"
    " inline: each worker does, on its event loop; auto: process when the server may use two"
    " cores more than it has workers, else inline. [auto]",
)
@click.option(
    "--agent-port",
    type=click.IntRange(min=0),
    help="Also serve the Secrets Manager Agent's HTTP API on this port (loopback). [off]",
)
@click.option("--agent-host", help="Address of the Agent listener. [127.0.0.1]")
@click.option(
    "--agent-credentials-file",
    type=click.Path(dir_okay=False),
    help="Shared credentials file holding the Agent listener's own credentials.",
)
@click.option("--agent-profile", help="Profile of --agent-credentials-file to use. [default]")
@click.option("--agent-region", help="Region the Agent listener reads secrets in. [us-east-1]")
@click.option(
    "--agent-ca-bundle",
    type=click.Path(dir_okay=False),
    help="CA bundle the Agent listener verifies this server's TLS certificate with.",
)
@click.option(
    "--agent-ttl-seconds",
    type=click.IntRange(0, 3600),
    help="How long the Agent listener serves a cached value; 0 disables its cache. [300]",
)
def serve(**options: object) -> None:
    """Run the server (initialising the data directory on first start)."""
    peers = options.pop("replication_peers")
    if isinstance(peers, tuple) and peers:
        options["replication_peers"] = ",".join(str(p) for p in peers)
    settings = _settings(**options)
    if settings.audit_writer not in AUDIT_WRITERS:
        raise click.UsageError(
            f"audit writer must be one of {', '.join(AUDIT_WRITERS)}, not {settings.audit_writer!r}"
        )
    # Checked before anything else happens (logging configured, data dir created).
    _check_tls(settings)
    try:
        quotas(settings.throttle_rates, settings.workers)
    except QuotaConfigError as exc:
        raise click.UsageError(str(exc)) from exc
    try:
        parse_peers(settings.replication_peers, settings.replication_credentials)
    except PeerConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    configure_logging(settings.log_level, settings.log_format)
    sealed = _init(settings).sealed
    sock = _bind(settings.host, settings.port)
    host, port = sock.getsockname()[:2]
    settings = replace(settings, port=port, data_dir=settings.data_dir.resolve())
    if settings.workers > 1 and settings.metrics_enabled:
        settings = replace(settings, metrics_multiprocess_dir=str(_metrics_dir(settings)))
    if settings.agent_port >= 0:
        _start_agent_beside(settings, host, port)
    writer = None
    if audit_writer_kind(settings.audit_writer, settings.workers) == "process":
        writer = AuditWriterProcess(settings)
        writer.start()
        settings = replace(settings, audit_writer_socket=writer.socket_path)
    try:
        _serve_workers(settings, sock, sealed, host, port, writer)
    finally:
        # After the workers: their shutdown sent the last records and waited for the acks.
        if writer is not None:
            writer.stop()


def _serve_workers(
    settings: Settings,
    sock: socket.socket,
    sealed: bool,
    host: str,
    port: int,
    writer: AuditWriterProcess | None = None,
) -> None:
    on_stop = writer.node_stopping if writer is not None else None
    if settings.workers == 1:
        server = uvicorn.Server(_uvicorn_config(settings, app=_server_app(settings)))
        _announce(settings, host, port)
        server.run(sockets=[sock])
        return
    if sealed:
        _announce(settings, host, port)
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
        ForwardingMultiprocess(config, sockets=[sock], on_stop=on_stop).run()
        return
    build_app(settings)  # fail here, once, rather than in every worker
    # Workers are fresh processes: they rebuild the same Settings from the environment.
    os.environ.update(settings.to_env())
    config = _uvicorn_config(
        settings, app="secretsd.app:app_from_environment", factory=True, workers=settings.workers
    )
    _announce(settings, host, port)
    ForwardingMultiprocess(config, sockets=[sock], on_stop=on_stop).run()


class ForwardingMultiprocess(Multiprocess):
    """uvicorn's supervisor, except that SIGHUP goes on to the workers (each re-reads its TLS
    certificate in place) instead of replacing them, and that SIGTERM and SIGINT also tell
    `on_stop` (the audit writer's handle) that the node is stopping."""

    def __init__(
        self,
        config: uvicorn.Config,
        sockets: list[socket.socket],
        on_stop: Callable[[], None] | None = None,
    ) -> None:
        super().__init__(config, sockets=sockets)
        self._on_stop = on_stop

    def handle_term(self) -> None:
        if self._on_stop is not None:
            self._on_stop()
        super().handle_term()

    def handle_int(self) -> None:
        if self._on_stop is not None:
            self._on_stop()
        super().handle_int()

    def handle_hup(self) -> None:
        if self.config.ssl_context_factory is None:
            return  # workers without TLS install no handler: SIGHUP would end them
        for process in self.processes:
            if process.pid is None:
                continue
            try:
                os.kill(process.pid, signal.SIGHUP)
            except ProcessLookupError:
                pass  # exited meanwhile: its replacement loads the files afresh anyway


def _start_agent_beside(settings: Settings, host: str, port: int) -> None:
    """The Agent listener in a thread of this (supervising) process, calling this server."""
    scheme = "https" if settings.tls_cert else "http"
    # A wildcard listen address is reached over loopback.
    local = "127.0.0.1" if host in ("0.0.0.0", "") else ("::1" if host == "::" else host)  # noqa: S104
    shown = f"[{local}]" if ":" in local else local
    options = AgentOptions(
        endpoint=f"{scheme}://{shown}:{port}",
        credentials_file=settings.agent_credentials_file,
        profile=settings.agent_profile,
        region=settings.agent_region,
        ttl_seconds=settings.agent_ttl_seconds,
        cache_size=settings.agent_cache_size,
        token_variables=settings.agent_token_variables,
        ca_bundle=settings.agent_ca_bundle,
    )
    try:
        app = build_agent(options)
    except AgentConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    sock = _bind(settings.agent_host, settings.agent_port)
    agent_host, agent_port = sock.getsockname()[:2]
    start_in_thread(agent_server(app, settings.log_level), sock)
    agent_shown = f"[{agent_host}]" if ":" in agent_host else agent_host
    click.echo(f"secretsd: agent listening on http://{agent_shown}:{agent_port}")


@main.command()
@click.option("--endpoint", required=True, help="URL of the secretsd server to read from.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(min=0), default=2773, show_default=True)
@click.option(
    "--credentials-file",
    type=click.Path(dir_okay=False),
    required=True,
    help="Shared credentials file holding the listener's own credentials.",
)
@click.option("--profile", default="default", show_default=True)
@click.option("--region", default="us-east-1", show_default=True)
@click.option("--ttl-seconds", type=click.IntRange(0, 3600), default=300, show_default=True)
@click.option("--cache-size", type=click.IntRange(1, 1000), default=1000, show_default=True)
@click.option(
    "--token-variables",
    default=DEFAULT_TOKEN_VARIABLES,
    show_default=True,
    help="Environment variables holding the SSRF token (first set wins; file://PATH allowed).",
)
@click.option(
    "--ca-bundle", type=click.Path(dir_okay=False), help="CA bundle for an https endpoint."
)
@click.option(
    "--log-level", type=click.Choice(["debug", "info", "warning", "error"]), default="info"
)
@click.option("--log-format", type=click.Choice(FORMATS), default="text")
def agent(**options: Any) -> None:
    """Run only the Secrets Manager Agent compatible listener, reading from a secretsd server
    (on an application host, as the AWS Secrets Manager Agent runs beside an application)."""
    configure_logging(options["log_level"], options["log_format"])
    agent_options = AgentOptions(
        endpoint=options["endpoint"],
        credentials_file=options["credentials_file"],
        profile=options["profile"],
        region=options["region"],
        ttl_seconds=options["ttl_seconds"],
        cache_size=options["cache_size"],
        token_variables=options["token_variables"],
        ca_bundle=options["ca_bundle"] or "",
    )
    try:
        app = build_agent(agent_options)
    except AgentConfigError as exc:
        raise click.ClickException(str(exc)) from exc
    sock = _bind(options["host"], options["port"])
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    click.echo(f"secretsd: agent listening on http://{shown}:{port}")
    sys.stdout.flush()
    agent_server(app, options["log_level"]).run(sockets=[sock])


def _check_tls(settings: Settings) -> None:
    """Both or neither, and loadable: refuse to start rather than fail in every worker."""
    if bool(settings.tls_cert) != bool(settings.tls_key):
        raise click.UsageError("--tls-cert and --tls-key go together")
    if settings.tls_cert:
        try:
            new_context(settings.tls_cert, settings.tls_key)
        except TlsConfigError as exc:
            raise click.ClickException(str(exc)) from exc


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


TLS_GRACEFUL_STOP_SECONDS = 5


def _uvicorn_config(settings: Settings, **app: Any) -> uvicorn.Config:
    if settings.tls_cert:
        # Absolute paths: workers and reloads must find the same files whatever their cwd.
        tls = ReloadingContext(
            str(Path(settings.tls_cert).resolve()), str(Path(settings.tls_key).resolve())
        )
        app["ssl_context_factory"] = tls
        # On stop, an idle keep-alive TLS connection is closed with close_notify, and the event
        # loop waits up to 30 s for the peer's answer, which a client that is not reading never
        # sends: bound the whole graceful stop instead (requests here take milliseconds).
        app["timeout_graceful_shutdown"] = TLS_GRACEFUL_STOP_SECONDS
    return uvicorn.Config(
        **app,
        lifespan="on",
        # httptools; under load each answer goes out in one system call on the loop's next
        # turn (protocol/gathered_writes.py, ADR 0011).
        http=GatheringHttpToolsProtocol,
        loop="uvloop",
        access_log=False,
        log_config=None,
        log_level=settings.log_level,
        server_header=False,
    )


def _announce(settings: Settings, host: str, port: int) -> None:
    shown = f"[{host}]" if ":" in host else host
    scheme = "https" if settings.tls_cert else "http"
    click.echo(f"secretsd: listening on {scheme}://{shown}:{port}")
    sys.stdout.flush()


root_keys.register(main, _settings, _data_dir, _database)
accounts.register(main, _settings, _data_dir, _database)
backup.register(main, _settings, _data_dir, _database)
audit.register(main, _settings, _data_dir, _database)

if __name__ == "__main__":
    main()
