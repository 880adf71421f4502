"""The rotation service in-process on SQLite and PostgreSQL with a hand-driven clock: due
rotations claimed once by several nodes racing for them, a manual value counting as a rotation
for AutomaticallyAfterDays, a claim taken over after its holder went silent."""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from secretsd.auth.identity import Identity
from secretsd.clock import DAY_MS, FixedClock
from secretsd.crypto import aead
from secretsd.crypto.rootkey import RootKeyring
from secretsd.errors import ServiceError
from secretsd.kms.keyring import Keyring
from secretsd.service import rotation as rotation_module
from secretsd.service.authorization import Authorizer, GenerationWatch
from secretsd.service.context import CallContext
from secretsd.service.invocation import Invocation
from secretsd.service.pagination import TokenCodec
from secretsd.service.rotation import CLAIM_TTL_MS, RotationService
from secretsd.service.secrets import SecretsService
from secretsd.store.database import Database, StoreUnavailable
from secretsd.store.events import EventRepository
from support.factories import new_database

ACCOUNT = "111122223333"
CTX = CallContext(
    Identity(
        account_id=ACCOUNT,
        arn=f"arn:aws:iam::{ACCOUNT}:root",
        principal_arn=f"arn:aws:iam::{ACCOUNT}:root",
        principal_type="Account",
        userid=ACCOUNT,
        owner_kind="root",
        owner_name="",
        access_key_id="AKIAEXAMPLEROOT00000",
    ),
    "us-east-1",
)
FUNCTION = f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:rotator"
# Midnight UTC, January 2027.
START_MS = 1_484_438_400_000 + 10 * 365 * DAY_MS + 3 * DAY_MS


class TemplateFunction:
    """A rotation function doing what AWS's templates do to the secret, in-process."""

    def __init__(self, secrets: SecretsService) -> None:
        self.secrets = secrets
        self.steps: list[str] = []
        self.block: asyncio.Event | None = None
        self.crash_at: str | None = None

    def check_service_may_invoke(
        self, function_arn: str, *, principal: str, source_account: str, source_arn: str
    ) -> None:
        return None

    async def invoke_as_service(
        self,
        function_arn: str,
        payload: bytes,
        *,
        principal: str,
        source_account: str,
        source_arn: str,
    ) -> Invocation:
        event = json.loads(payload)
        arn, token, step = event["SecretId"], event["ClientRequestToken"], event["Step"]
        self.steps.append(step)
        if self.block is not None:
            await self.block.wait()
        if step == self.crash_at:
            raise RuntimeError("a bug in secretsd, not in the function")
        if step == "createSecret":
            self.secrets.put_secret_value(
                CTX,
                secret_id=arn,
                token=token,
                secret_string=f"rotated {token}",
                secret_binary=None,
                version_stages=["AWSPENDING"],
            )
        elif step == "finishSecret":
            current = self.secrets.describe_secret(CTX, secret_id=arn).stages["AWSCURRENT"]
            if current != token:
                self.secrets.update_secret_version_stage(
                    CTX,
                    secret_id=arn,
                    version_stage="AWSCURRENT",
                    move_to=token,
                    remove_from=current,
                )
        return Invocation(b"null", None)


class Node:
    def __init__(self, url: str, root_key: RootKeyring, clock: FixedClock) -> None:
        self.db = Database(url)
        authorizer = Authorizer(self.db, clock, GenerationWatch(self.db))
        self.secrets = SecretsService(
            self.db, Keyring(root_key, clock), clock, TokenCodec(root_key), authorizer
        )
        self.function = TemplateFunction(self.secrets)
        self.rotation = RotationService(self.db, clock, self.secrets, authorizer, self.function)

    async def run_due(self) -> int:
        started = self.rotation.start_due()
        await asyncio.gather(*self.rotation._tasks)
        return started


@pytest.fixture
def database_url(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> str:
    return new_database(request, backend, "rotation") or f"sqlite:///{tmp_path / 'rot.db'}"


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START_MS)


@pytest.fixture
def nodes(database_url: str, clock: FixedClock) -> Iterator[list[Node]]:
    Database(database_url).migrate()
    root_key = RootKeyring({1: aead.new_key()}, 1)
    made = [Node(database_url, root_key, clock) for _ in range(3)]
    yield made
    for node in made:
        node.db.close()


def create(node: Node, name: str) -> str:
    return node.secrets.create_secret(
        CTX,
        name=name,
        token=str(uuid.uuid4()),
        description=None,
        kms_key_id=None,
        secret_string="initial",
        secret_binary=None,
        tags=None,
    ).arn


async def configure(node: Node, arn: str, days: int) -> None:
    node.rotation.rotate_secret(
        CTX,
        secret_id=arn,
        token=str(uuid.uuid4()),
        lambda_arn=FUNCTION,
        rules={"AutomaticallyAfterDays": days},
        rotate_immediately=False,
    )
    # RotateSecret answered at once; its rotation is this loop's only task.
    assert len(node.rotation._tasks) == 1
    await asyncio.gather(*node.rotation._tasks)


def events(node: Node, arn: str) -> list[str]:
    """The secret's events, sorted by name (events of one fixed-clock millisecond have no
    order)."""
    with node.db.transaction() as tx:
        return sorted(e.event_name for e in EventRepository(tx).for_resource(arn))


def test_nodes_racing_for_a_window_rotate_once(nodes: list[Node], clock: FixedClock) -> None:
    arns = [create(nodes[0], f"race-{i}") for i in range(4)]
    for arn in arns:
        asyncio.run(configure(nodes[0], arn, 1))
    clock.advance(DAY_MS / 1000 + 3600)  # inside tomorrow's window

    barrier = threading.Barrier(len(nodes))
    started: list[int] = []

    def race(node: Node) -> None:
        barrier.wait()
        started.append(asyncio.run(node.run_due()))

    threads = [threading.Thread(target=race, args=(n,)) for n in nodes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sum(started) == len(arns), started
    for arn in arns:
        assert events(nodes[0], arn) == [
            "RotationStarted",
            "RotationSucceeded",
            "TestRotationStarted",
            "TestRotationSucceeded",
        ]
    # Later passes in the same window find nothing to do.
    assert sum(asyncio.run(n.run_due()) for n in nodes) == 0


def test_a_manual_value_counts_as_a_rotation(nodes: list[Node], clock: FixedClock) -> None:
    node = nodes[0]
    arn = create(node, "manual")
    asyncio.run(configure(node, arn, 2))  # window: the day after tomorrow
    clock.advance(DAY_MS / 1000 + 60)
    node.secrets.put_secret_value(
        CTX,
        secret_id=arn,
        token=str(uuid.uuid4()),
        secret_string="by hand",
        secret_binary=None,
        version_stages=None,
    )
    clock.advance(DAY_MS / 1000)  # the original window: no rotation, it moved
    assert asyncio.run(node.run_due()) == 0
    assert node.rotation.info_for([arn])[arn].next_rotation_ms == START_MS + 4 * DAY_MS - 1000
    clock.advance(DAY_MS / 1000 * 2)
    assert asyncio.run(node.run_due()) == 1
    value = node.secrets.get_secret_value(CTX, secret_id=arn, version_id=None, version_stage=None)
    assert value.string is not None and value.string.startswith("rotated ")


def test_a_silent_holder_loses_its_rotation(nodes: list[Node], clock: FixedClock) -> None:
    first, second = nodes[0], nodes[1]
    arn = create(first, "silent")
    asyncio.run(configure(first, arn, 1))
    clock.advance(DAY_MS / 1000 + 60)

    async def start_and_hang() -> None:
        first.function.block = asyncio.Event()
        assert first.rotation.start_due() == 1
        await asyncio.sleep(0.05)  # in createSecret, never to return: the worker "died"
        for task in first.rotation._tasks:
            task.cancel()

    asyncio.run(start_and_hang())
    assert asyncio.run(second.run_due()) == 0  # the claim is still live
    clock.advance(CLAIM_TTL_MS / 1000 + 1)
    assert asyncio.run(second.run_due()) == 1
    assert second.function.steps == ["createSecret", "setSecret", "testSecret", "finishSecret"]
    stages = second.secrets.describe_secret(CTX, secret_id=arn).stages
    assert set(stages) == {"AWSCURRENT", "AWSPREVIOUS"}
    assert events(second, arn) == [
        "RotationStarted",
        "RotationStarted",
        "RotationSucceeded",
        "TestRotationStarted",
        "TestRotationSucceeded",
    ]


def test_a_rotation_that_fails_inside_secretsd_ends_as_a_failed_attempt(
    nodes: list[Node], clock: FixedClock
) -> None:
    """Not left claimed and silent (until the claim ran out, then started again): a
    RotationFailed event, the claim released, and RotateSecret's reattempt runs at once."""
    node, other = nodes[0], nodes[1]
    arn = create(node, "crash")
    asyncio.run(configure(node, arn, 30))
    node.function.crash_at = "setSecret"
    token = str(uuid.uuid4())

    async def rotate() -> None:
        node.rotation.rotate_secret(
            CTX, secret_id=arn, token=token, lambda_arn=None, rules=None, rotate_immediately=None
        )
        await asyncio.gather(*node.rotation._tasks)

    asyncio.run(rotate())
    with node.db.transaction() as tx:
        failed = EventRepository(tx).latest_for_resource(arn, ["RotationFailed"])
    assert failed is not None
    assert failed.details == {"step": "setSecret", "errorType": "InternalFailure"}
    assert node.secrets.describe_secret(CTX, secret_id=arn).stages["AWSPENDING"] == token

    node.function.crash_at = None
    with pytest.raises(ServiceError, match="previous rotation isn't complete"):
        asyncio.run(rotate())  # the claim was released, so this reattempts at once
    assert asyncio.run(other.run_due()) == 1
    assert other.secrets.describe_secret(CTX, secret_id=arn).stages["AWSCURRENT"] == token
    assert events(node, arn).count("RotationStarted") == 2


def test_a_failed_claim_renewal_is_retried_at_the_next_heartbeat(
    nodes: list[Node], clock: FixedClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A renewal that fails (the database, for a moment) does not end the heartbeat: the claim
    would run out under a step still running, and another worker start the rotation over."""
    node = nodes[0]
    arn = create(node, "heartbeat")
    monkeypatch.setattr(rotation_module, "CLAIM_TTL_MS", 150)  # a heartbeat every 50 ms
    renew = node.rotation._renew
    calls: list[int] = []

    def flaky_renew(run: Any) -> bool:
        calls.append(1)
        if len(calls) == 2:  # the first heartbeat's
            raise StoreUnavailable("connection lost")
        return renew(run)

    monkeypatch.setattr(node.rotation, "_renew", flaky_renew)

    async def rotate() -> int:
        node.function.block = asyncio.Event()
        node.rotation.rotate_secret(
            CTX,
            secret_id=arn,
            token=str(uuid.uuid4()),
            lambda_arn=FUNCTION,
            rules={"AutomaticallyAfterDays": 30},
            rotate_immediately=True,
        )
        await asyncio.sleep(0.6)  # createSecret blocked: only heartbeats renew
        during = len(calls)
        node.function.block.set()
        await asyncio.gather(*node.rotation._tasks)
        return during

    # One renewal before the step, then heartbeats that go on past the failed one.
    assert asyncio.run(rotate()) >= 4
    assert sorted(events(node, arn)) == ["RotationStarted", "RotationSucceeded"]
