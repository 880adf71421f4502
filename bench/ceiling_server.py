"""Serve bench.ceiling_app the way `secretsd serve` serves secretsd.

Same socket (SO_REUSEADDR, backlog 2048, bound before the workers start), same uvicorn settings
(httptools on secretsd's GatheringHttpToolsProtocol, uvloop, lifespan on, no access log, no
Server header), same Multiprocess supervisor for several workers; the socket set-up mirrors
secretsd.cli.main._bind. Prints
``ceiling: listening on http://HOST:PORT`` when ready.

    python -m bench.ceiling_server --host 127.0.0.1 --port 0 --workers 1
"""

from __future__ import annotations

import argparse
import os
import socket
import sys

import uvicorn
from uvicorn.supervisors import Multiprocess

from secretsd.protocol.gathered_writes import GatheringHttpToolsProtocol

APP = "bench.ceiling_app:app"
BUSY_ENV = "BENCH_CEILING_BUSY_US"  # bench.ceiling_app.BUSY_ENV, not imported: see main()


def bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--busy-us", type=int, default=0, help="CPU to burn per request (control)")
    args = parser.parse_args(argv)
    # Before the app module is imported, here or in a worker process.
    os.environ[BUSY_ENV] = str(args.busy_us)
    sock = bind(args.host, args.port)
    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(
        app=APP,
        workers=args.workers,
        lifespan="on",
        http=GatheringHttpToolsProtocol,
        loop="uvloop",
        access_log=False,
        log_config=None,
        log_level="warning",
        server_header=False,
    )
    print(f"ceiling: listening on http://{host}:{port}", flush=True)
    if args.workers == 1:
        uvicorn.Server(config).run(sockets=[sock])
    else:
        Multiprocess(config, sockets=[sock]).run()
    sys.exit(0)


if __name__ == "__main__":
    main()
