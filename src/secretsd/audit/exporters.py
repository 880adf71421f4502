"""Copies of committed audit records: a JSON lines file and syslog.

They run after the record is committed to the database (the chain is the record of truth; an
exporter that fails logs and carries on). Each line is the record exactly as stored and hashed.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import socket
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit

log = logging.getLogger("secretsd.audit")


class Exporter(Protocol):
    def export(self, records: Sequence[bytes]) -> None: ...


class JsonLinesExporter:
    """Appends one record per line. Several workers append to the same file: each batch is one
    write(2) on an O_APPEND descriptor, so lines of different workers never interleave."""

    def __init__(self, path: Path) -> None:
        self._path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def export(self, records: Sequence[bytes]) -> None:
        if records:
            os.write(self._fd, b"".join(r + b"\n" for r in records))

    def close(self) -> None:
        os.close(self._fd)


class SyslogExporter:
    """One syslog message per record (facility LOG_AUTHPRIV, tag `secretsd-audit`).

    `address`: a socket path (/dev/log), or udp://host:port or tcp://host:port."""

    def __init__(self, address: str) -> None:
        target: str | tuple[str, int]
        kind = socket.SOCK_DGRAM
        if "://" in address:
            parts = urlsplit(address)
            target = (parts.hostname or "127.0.0.1", parts.port or 514)
            if parts.scheme == "tcp":
                kind = socket.SOCK_STREAM
        else:
            target = address
        self._handler = logging.handlers.SysLogHandler(
            address=target,
            facility=logging.handlers.SysLogHandler.LOG_AUTHPRIV,
            socktype=kind,
        )
        self._handler.ident = "secretsd-audit: "
        self._handler.append_nul = False

    def export(self, records: Sequence[bytes]) -> None:
        for record in records:
            self._handler.emit(
                logging.LogRecord(
                    "secretsd.audit", logging.INFO, "", 0, record.decode(), None, None
                )
            )

    def close(self) -> None:
        self._handler.close()


def configured_exporters(log_path: str, syslog_address: str) -> list[Exporter]:
    """The exporters the settings name (`audit_log_path`, `audit_syslog_address`)."""
    exporters: list[Exporter] = []
    if log_path:
        exporters.append(JsonLinesExporter(Path(log_path)))
    if syslog_address:
        exporters.append(SyslogExporter(syslog_address))
    return exporters
