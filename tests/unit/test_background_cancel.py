"""The worker's background loops stop when cancelled, even when the cancellation arrives just
as their wait ends (Python 3.11's asyncio.wait_for loses such a cancellation: the audit writer,
woken by every batch, then never stopped, and bench/profile_get.py hung)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from secretsd.app import build_app
from secretsd.bootstrap import initialise
from secretsd.clock import SystemClock
from secretsd.settings import Settings
from secretsd.store.database import Database


def test_the_audit_writer_stops_whenever_it_is_cancelled(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    db = Database(settings.effective_database_url)
    initialise(settings, db, SystemClock())
    db.close()
    app = build_app(settings)
    writer = app._audit  # type: ignore[attr-defined]

    async def scenario() -> list[int]:
        stuck = []
        # Cancel 0..5 loop steps after waking the writer: one of them lands between the end of
        # its wait and its return.
        for steps in range(6):
            task = asyncio.create_task(writer.run())
            for _ in range(3):
                await asyncio.sleep(0)
            writer._wake.set()
            for _ in range(steps):
                await asyncio.sleep(0)
            task.cancel()
            done, _ = await asyncio.wait({task}, timeout=2)
            if not done:
                stuck.append(steps)
                task.cancel()
        return stuck

    assert asyncio.run(scenario()) == []
