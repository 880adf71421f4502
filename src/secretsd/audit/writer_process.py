"""The node's audit writer process: one per `secretsd serve`, beside its workers.

Workers send it their calls' summaries over a Unix socket (`remote.py`, `wire.py`); it gives
them event ids, builds their canonical bytes, chains, signs digests, commits and exports them
with the same AuditWriter a worker uses in-process (`--audit-writer inline`), and publishes the
service events (once per node instead of once per worker). It never holds the root key: the
digest signing key (derived from it) arrives from the workers.

The socket lives in a directory of its own, created 0700 by the supervisor: only the server's
own user can reach it, and that user can already write the trail's database.
`AuditWriterProcess` (the supervisor's side) starts the process, waits until it listens,
restarts it if it dies, and stops it after the workers: its SIGTERM commits what is buffered.
It ignores SIGINT (a terminal's Ctrl-C reaches the whole process group, and the workers'
last batches must still find it) and leaves by itself if its supervisor dies.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import multiprocessing
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from secretsd.audit.chain import DigestSigner
from secretsd.audit.exporters import configured_exporters
from secretsd.audit.wire import Ack, WireError, decode_batch, encode_ack, frame, read_frame
from secretsd.audit.writer import AuditOptions, AuditWriter
from secretsd.clock import SystemClock
from secretsd.logs import configure_logging
from secretsd.process_memory import limit_malloc_arenas
from secretsd.settings import Settings
from secretsd.store.audit_repository import open_trail_database
from secretsd.store.database import Database

log = logging.getLogger("secretsd.audit")

SOCKET_NAME = "writer.sock"
AUDIT_WRITER_COMM = "secretsd-audit"
READY_SECONDS = 30.0
STOP_SECONDS = 15.0
# After a SIGTERM, how long no worker may be connected before the writer leaves: a worker that
# connected just before is still in the listening socket's queue, not yet counted.
IDLE_STOP_SECONDS = 0.2
# The supervisor's check on its writer, and the writer's on its supervisor.
WATCH_SECONDS = 0.5
# A writer that left cleanly was told to: if by a signal to the whole process group, the
# supervisor's own copy of it may not have been handled yet (seen under load: the writer gone
# 53 ms before the supervisor logged its SIGTERM). Its replacement waits this long for that.
CLEAN_EXIT_GRACE_SECONDS = 2.0
SOCKET_DIR_PREFIX = "secretsd-audit-"
# A socket directory younger than this may belong to a writer still starting (not yet listening).
STALE_AFTER_SECONDS = 300.0
GC_THRESHOLD = 100_000


def audit_writer_kind(setting: str, workers: int, cores: int | None = None) -> str:
    """ "process" or "inline" for the `audit_writer` setting. "auto": a writer process only when
    the server may run on at least two cores more than it has workers (its CPU affinity:
    `taskset`, cgroup cpusets). Measured on two cores (docs/benchmarks.md): with as many cores
    as workers the writer takes its CPU from them; with one core to spare it still shares that
    core with everything else on the machine (a client, the network stack, a database), and
    writing inline, with the compact records, cost less."""
    if setting != "auto":
        return setting
    if cores is None:
        cores = len(os.sched_getaffinity(0))
    return "process" if cores >= workers + 2 else "inline"


class SignerSlot:
    """The digest signing key the workers last sent (None until the first one connects)."""

    def __init__(self) -> None:
        self._signer: DigestSigner | None = None

    def current(self) -> DigestSigner | None:
        return self._signer

    def offer(self, key_version: int, seed: bytes) -> None:
        if self._signer is None or self._signer.key_version != key_version:
            self._signer = DigestSigner(key_version, seed)


class WriteCounts:
    """Records committed (failed) since the last ack went out: each ack carries them to a
    worker, whose /metrics count them (summed over the workers, they are the node's)."""

    def __init__(self) -> None:
        self.written = 0
        self.failed = 0

    def add(self, count: int, ok: bool) -> None:
        if ok:
            self.written += count
        else:
            self.failed += count

    def take(self) -> tuple[int, int]:
        taken = (self.written, self.failed)
        self.written = self.failed = 0
        return taken

    def give_back(self, written: int, failed: int) -> None:
        self.written += written
        self.failed += failed


class WriterService:
    """Receives batches on each worker's connection and acks each once committed."""

    def __init__(self, audit: AuditWriter, signers: SignerSlot, counts: WriteCounts) -> None:
        self._audit = audit
        self._signers = signers
        self._counts = counts
        self._handlers: dict[asyncio.Task[Any], asyncio.StreamWriter] = {}

    @property
    def connections(self) -> int:
        return len(self._handlers)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers[task] = writer
        acks: asyncio.Queue[tuple[int, asyncio.Future[bool]] | None] = asyncio.Queue()
        acker = asyncio.get_running_loop().create_task(self._ack(acks, writer))
        try:
            while True:
                batch = decode_batch(await read_frame(reader))
                if batch.signer is not None:
                    self._signers.offer(*batch.signer)
                await acks.put((batch.batch_id, self._audit.enqueue(batch.records)))
        except (asyncio.IncompleteReadError, asyncio.CancelledError):
            # The worker closed its end (shutdown) or died; or this process is stopping (a
            # handler that ends cancelled makes asyncio's stream callback log a traceback).
            pass
        except (OSError, WireError) as exc:
            log.error("audit writer: dropping a worker connection: %s", exc)
        finally:
            acks.put_nowait(None)
            # Acks still owed go out unless this process is stopping (cancelled).
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await asyncio.shield(acker)
            acker.cancel()
            writer.close()
            del self._handlers[task]

    async def close(self) -> None:
        """At shutdown, once the buffer is committed: the acks owed are sent, then the
        connections closed."""
        for writer in list(self._handlers.values()):
            with contextlib.suppress(OSError):
                writer.write_eof()
        handlers = list(self._handlers)
        if handlers:
            await asyncio.wait(handlers, timeout=STOP_SECONDS)
        for task in handlers:
            task.cancel()

    async def _ack(
        self,
        acks: asyncio.Queue[tuple[int, asyncio.Future[bool]] | None],
        writer: asyncio.StreamWriter,
    ) -> None:
        # Batches commit in the order they were received: their acks go out in that order too.
        while (item := await acks.get()) is not None:
            batch_id, committed = item
            ok = await committed
            written, failed = self._counts.take()
            try:
                writer.write(frame(encode_ack(Ack(batch_id, ok, written, failed))))
                await writer.drain()
            except OSError:
                self._counts.give_back(written, failed)
                return


def writer_main(settings: Settings, socket_path: str, ready: Any) -> None:
    """The writer process's entry point (spawned by AuditWriterProcess)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # What `ps -o comm`, top and the benchmark show for it (a spawned child is "python" else).
    with contextlib.suppress(OSError):
        Path("/proc/self/comm").write_text(AUDIT_WRITER_COMM)
    configure_logging(settings.log_level, settings.log_format)
    limit_malloc_arenas()
    # Everything a batch allocates is freed by reference counting (acyclic JSON, tuples): the
    # cyclic collector would only walk it, hundreds of times a second at full load.
    gc.set_threshold(GC_THRESHOLD)
    asyncio.run(_serve(settings, socket_path, ready, os.getppid()))


def _open_databases(settings: Settings) -> tuple[Database, Database]:
    """(the trail's database, the main one the service events are read from)."""
    events = Database(settings.effective_database_url)
    trail = open_trail_database(
        settings.audit_database_url,
        settings.effective_database_url,
        events,
        fail_closed=settings.audit_fail_closed,
    )
    return trail, events


async def _serve(settings: Settings, socket_path: str, ready: Any, parent: int) -> None:
    trail, events = _open_databases(settings)
    signers = SignerSlot()
    counts = WriteCounts()
    audit = AuditWriter(
        trail,
        events,
        SystemClock(settings.clock_offset_seconds),
        signers.current,
        {},
        AuditOptions(
            fail_closed=settings.audit_fail_closed,
            flush_seconds=settings.audit_flush_seconds,
            digest_seconds=settings.audit_digest_seconds,
        ),
        configured_exporters(settings.audit_log_path, settings.audit_syslog_address),
        on_written=counts.add,
    )
    service = WriterService(audit, signers, counts)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(socket_path)  # a previous writer's, which died
    server = await asyncio.start_unix_server(service.handle, socket_path)
    os.chmod(socket_path, 0o600)
    writer_task = loop.create_task(audit.run())
    ready.set()
    stopping_since: float | None = None
    idle_since: float | None = None
    try:
        while True:
            if stop.is_set():
                await asyncio.sleep(0.05)
            else:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(WATCH_SECONDS):
                        await stop.wait()
            if os.getppid() != parent:
                log.error("audit writer: the server that started it is gone; stopping")
                break
            if stop.is_set():
                # A SIGTERM to the whole process group (a terminal, systemd) reaches this
                # process with the workers: it waits for them to send their last batches and
                # close their connections (bounded), as the supervisor's own SIGTERM does.
                now = time.monotonic()
                stopping_since = stopping_since or now
                if service.connections:
                    idle_since = None
                else:
                    idle_since = idle_since or now
                if (
                    idle_since is not None and now - idle_since >= IDLE_STOP_SECONDS
                ) or now - stopping_since > STOP_SECONDS:
                    break
    finally:
        server.close()
        writer_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await writer_task
        audit.stop()
        await service.close()
        for db in {id(trail): trail, id(events): events}.values():
            group = db.group_commit
            if group is not None:
                group.close()


def sweep_stale_socket_dirs(
    parent: str | None = None, *, older_than: float = STALE_AFTER_SECONDS
) -> int:
    """Remove the socket directories of audit writers that are gone; how many were removed.

    A supervisor removes its own at stop, but one killed (SIGKILL, a power cut) cannot: every
    such start left a directory in /tmp. A directory is stale when it is this user's, older than
    `older_than` seconds, and nothing listens on its socket (connecting is refused or there is no
    socket), so a live writer's, another user's or one just being set up is never touched."""
    removed = 0
    now = time.time()
    for entry in Path(parent or tempfile.gettempdir()).glob(SOCKET_DIR_PREFIX + "*"):
        try:
            info = entry.lstat()
        except OSError:
            continue
        if not entry.is_dir() or entry.is_symlink() or info.st_uid != os.getuid():
            continue
        if now - info.st_mtime < older_than or _listening(entry / SOCKET_NAME):
            continue
        shutil.rmtree(entry, ignore_errors=True)
        removed += not entry.exists()
    return removed


def _listening(path: Path) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.settimeout(1.0)
        probe.connect(str(path))
    except (FileNotFoundError, ConnectionRefusedError):
        return False
    except OSError:
        return True  # something is there (busy, no permission): leave it
    finally:
        probe.close()
    return True


class AuditWriterProcess:
    """The supervisor's handle on its node's audit writer process."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        with contextlib.suppress(OSError):
            swept = sweep_stale_socket_dirs()
            if swept:
                log.info("removed %d audit writer socket directories left by killed servers", swept)
        self._dir = tempfile.mkdtemp(prefix=SOCKET_DIR_PREFIX)  # 0700
        self.socket_path = str(Path(self._dir) / SOCKET_NAME)
        self._context = multiprocessing.get_context("spawn")
        self._process: Any = None
        self._stopping = threading.Event()
        self._watcher: threading.Thread | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        self._spawn()
        self._watcher = threading.Thread(
            target=self._watch, name="secretsd-audit-writer-watch", daemon=True
        )
        self._watcher.start()

    def _spawn(self) -> None:
        ready = self._context.Event()
        process = self._context.Process(
            target=writer_main,
            args=(self._settings, self.socket_path, ready),
            name="secretsd-audit-writer",
        )
        process.start()
        deadline = time.monotonic() + READY_SECONDS
        while not ready.wait(0.05):
            if not process.is_alive() or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(
                    f"the audit writer process did not start (exit code {process.exitcode})"
                )
        self._process = process

    def node_stopping(self) -> None:
        """The node was told to stop (its supervisor's SIGTERM or SIGINT; a signal to the whole
        process group reaches the writer too, which leaves once the workers have): a writer that
        exits from now on is not replaced. stop() still waits for it."""
        self._stopping.set()

    def _watch(self) -> None:
        while not self._stopping.wait(WATCH_SECONDS):
            process = self._process
            if process is None or process.is_alive():
                continue
            if process.exitcode == 0 and self._stopping.wait(CLEAN_EXIT_GRACE_SECONDS):
                return
            log.error("audit writer process exited (code %s): starting another", process.exitcode)
            try:
                self._spawn()
            except Exception as exc:
                log.error("audit writer process could not be restarted: %s", exc)

    def stop(self) -> None:
        """After the workers have stopped (their last batches acked)."""
        self._stopping.set()
        if self._watcher is not None:
            self._watcher.join()
        process = self._process
        if process is not None and process.is_alive():
            process.terminate()
            process.join(STOP_SECONDS)
            if process.is_alive():
                log.error("audit writer process did not stop in %ss: killed", STOP_SECONDS)
                process.kill()
                process.join()
        shutil.rmtree(self._dir, ignore_errors=True)
