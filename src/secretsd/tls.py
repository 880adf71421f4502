"""TLS for the listener, with the certificate re-read on SIGHUP without closing the socket.

OpenSSL copies an SSL_CTX's certificate and key into each connection when the connection is
created, so loading a new chain into the *same* context changes what every later handshake
presents while connections already open keep the one they began with. Each serving process
(the single server, or every uvicorn worker: the supervisor forwards SIGHUP to them) owns its
context and reloads it in place; nothing is restarted and the listening socket stays open.
"""

from __future__ import annotations

import logging
import signal
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from types import FrameType
from typing import Any

log = logging.getLogger("secretsd.tls")


class TlsConfigError(Exception):
    pass


def new_context(cert_path: str, key_path: str) -> ssl.SSLContext:
    """A server context (TLS 1.2+, Python's default ciphers) holding the chain and key."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    load_chain(ctx, cert_path, key_path)
    return ctx


def load_chain(ctx: ssl.SSLContext, cert_path: str, key_path: str) -> None:
    try:
        ctx.load_cert_chain(cert_path, key_path)
    except (OSError, ssl.SSLError) as exc:
        raise TlsConfigError(
            f"cannot load the TLS certificate {cert_path} with key {key_path}: {exc}"
        ) from exc


@dataclass(frozen=True)
class ReloadingContext:
    """uvicorn's `ssl_context_factory`: picklable (it travels to spawned workers with the
    config), called once in each serving process, where it installs the SIGHUP handler."""

    cert_path: str
    key_path: str

    def __call__(self, config: Any, default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
        ctx = new_context(self.cert_path, self.key_path)

        def on_hup(signum: int, frame: FrameType | None) -> None:
            self.reload(ctx)

        # uvicorn builds the context in the process's main thread, from Server.serve.
        signal.signal(signal.SIGHUP, on_hup)
        return ctx

    def reload(self, ctx: ssl.SSLContext) -> bool:
        """Load the files into `ctx`; on any error keep serving the previous certificate.

        The pair is checked in a scratch context first: load_cert_chain on the live one could
        otherwise leave it holding a new certificate with the old key."""
        try:
            new_context(self.cert_path, self.key_path)
            load_chain(ctx, self.cert_path, self.key_path)
        except TlsConfigError as exc:
            log.error("TLS reload failed, still serving the previous certificate: %s", exc)
            return False
        log.info("TLS certificate reloaded from %s", self.cert_path)
        return True
