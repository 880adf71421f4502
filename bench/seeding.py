"""Bench-only bulk loader: many secrets written straight into secretsd's database, in-process.

Creating 1,000,000 secrets through the API takes hours on this machine (one fsync'd transaction
per CreateSecret, ~1,300/s at best). This loader calls secretsd's own `SecretsService.
create_secret` in-process, with the admin's identity, so every row is exactly what the API
would have written (name checks, permission check, the KMS key resolved, the value
envelope-encrypted by the Keyring under its own data key and encryption context, AWSCURRENT
staged); only the transactions differ: `batch` secrets share one outer write transaction
(`Database.transaction` joins an open one on SQLite and nests a savepoint on PostgreSQL), so
the cost is one commit per batch instead of one per secret.

It never runs inside a serving process: the benchmark calls it from its own process, against the
data dir (root key file) and database of a stopped or idle server.
"""

from __future__ import annotations

import multiprocessing
import secrets
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.signing import REGION, read_credentials
from secretsd.auth.principals import PrincipalDirectory
from secretsd.clock import SystemClock
from secretsd.kms.keyring import Keyring
from secretsd.service.authorization import Authorizer, GenerationWatch
from secretsd.service.context import CallContext
from secretsd.service.pagination import TokenCodec
from secretsd.service.secrets import SecretsService
from secretsd.settings import Settings
from secretsd.store.database import Database, Tx

DEFAULT_BATCH = 500
# Names per task of seed_in_parallel: small enough to spread the work and report progress.
PARALLEL_SLICE = 25_000
# The value every seeded secret gets, JSON-looking like a database credential (~100 bytes).
VALUE_BYTES = 100


@dataclass(frozen=True)
class SeedResult:
    created: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.created / self.seconds if self.seconds > 0 else 0.0


def seed_name(prefix: str, index: int) -> str:
    return f"{prefix}{index:07d}"


def _value() -> str:
    head = '{"username":"app","password":"'
    return head + secrets.token_hex(VALUE_BYTES)[: VALUE_BYTES - len(head) - 2] + '"}'


class _Batched:
    """The Database as the service sees it while seeding: inside a batch, `transaction()` joins
    the batch's open transaction (as SQLite's nested transaction() does anyway), so PostgreSQL
    pays no SAVEPOINT/RELEASE round trips per secret; anything else goes to the database."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self.tx: Tx | None = None

    @contextmanager
    def transaction(self, write: bool = False) -> Iterator[Tx]:
        if self.tx is not None:
            yield self.tx
            return
        with self._db.transaction(write=write) as tx:
            yield tx

    def __getattr__(self, name: str) -> Any:
        return getattr(self._db, name)


def seed(
    data_dir: Path,
    database_url: str | None,
    prefix: str,
    start: int,
    count: int,
    *,
    batch: int = DEFAULT_BATCH,
    progress: Callable[[int, float], None] | None = None,
    analyze: bool = True,
) -> SeedResult:
    """Create secrets `prefix + 0000000`-style names `start .. start+count-1`."""
    settings = Settings(data_dir=data_dir, database_url=database_url or "")
    clock = SystemClock()
    db = Database(settings.effective_database_url)
    try:
        # Imported here: the root keys are opened the way a serving process opens them.
        from secretsd.app import live_root_keys

        root_key = live_root_keys(settings, db)
        batched: Any = _Batched(db)
        watch = GenerationWatch(batched)
        authorizer = Authorizer(batched, clock, watch)
        service = SecretsService(
            batched, Keyring(root_key, clock), clock, TokenCodec(root_key), authorizer
        )
        creds = read_credentials(settings.admin_credentials_path)
        principal = PrincipalDirectory(db, root_key, 60.0, watch.current).lookup(creds.access_key)
        if principal is None:
            raise RuntimeError("the admin access key is unknown to this database")
        ctx = CallContext(identity=principal.identity, region=REGION, operation="CreateSecret")
        started = time.perf_counter()
        done = 0
        while done < count:
            size = min(batch, count - done)
            with db.transaction(write=True) as tx:
                batched.tx = tx
                for i in range(start + done, start + done + size):
                    service.create_secret(
                        ctx,
                        name=seed_name(prefix, i),
                        token=secrets.token_hex(16),
                        description=None,
                        kms_key_id=None,
                        secret_string=_value(),
                        secret_binary=None,
                        tags=None,
                    )
            batched.tx = None
            done += size
            if progress is not None:
                progress(done, time.perf_counter() - started)
        if analyze:
            # What autovacuum would do within a minute or so of a bulk load; measured without
            # it, PostgreSQL read secrets by name 10 times slower (see Database.analyze).
            db.analyze()
        return SeedResult(done, time.perf_counter() - started)
    finally:
        db.close()


def seed_in_parallel(
    data_dir: Path,
    database_url: str | None,
    prefix: str,
    start: int,
    count: int,
    *,
    processes: int,
    progress: Callable[[int, float], None] | None = None,
) -> SeedResult:
    """`seed` split over several processes, each creating slices of PARALLEL_SLICE names.

    For PostgreSQL, where one seeder waits on a loopback round trip per statement (about 700
    secrets/s, so 1,000,000 took over 20 minutes) and the server can take several writers at
    once. SQLite has one writer at a time: use `seed` there."""
    if processes <= 1:
        return seed(data_dir, database_url, prefix, start, count, progress=progress)
    started = time.perf_counter()
    slices = [
        (first, min(PARALLEL_SLICE, start + count - first))
        for first in range(start, start + count, PARALLEL_SLICE)
    ]
    done = 0
    # spawn, not fork: the caller may have threads (wrk's readers, server log pumps).
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(processes, mp_context=context) as pool:
        futures = [
            pool.submit(seed, data_dir, database_url, prefix, first, size, analyze=False)
            for first, size in slices
        ]
        for future in as_completed(futures):
            done += future.result().created
            if progress is not None:
                progress(done, time.perf_counter() - started)
    db = Database(
        Settings(data_dir=data_dir, database_url=database_url or "").effective_database_url
    )
    try:
        db.analyze()
    finally:
        db.close()
    return SeedResult(done, time.perf_counter() - started)
