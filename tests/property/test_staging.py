"""The staging-label state machine: AWS's recorded transitions and invariants under any sequence."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from secretsd.errors import ServiceError
from secretsd.service import staging
from secretsd.service.staging import CURRENT, PENDING, PREVIOUS

LABELS = st.sampled_from([CURRENT, PENDING, "L1", "L2", "L3", PREVIOUS])


def test_put_without_stages_moves_current_and_previous() -> None:
    s = staging.add_version({}, "v1", None)
    s = staging.add_version(s, "v2", None)
    s = staging.add_version(s, "v3", None)
    assert staging.labels_by_version(s) == {"v3": [CURRENT], "v2": [PREVIOUS]}


def test_custom_labels_do_not_move_current() -> None:
    s = staging.add_version({}, "v1", None)
    s = staging.add_version(s, "v2", ["SAMPLESTAGE1", "SAMPLESTAGE0"])
    assert s[CURRENT] == "v1"
    s = staging.add_version(s, "v3", ["SAMPLESTAGE1", "SAMPLESTAGE0"])
    assert staging.labels_by_version(s) == {"v1": [CURRENT], "v3": ["SAMPLESTAGE0", "SAMPLESTAGE1"]}


def test_current_with_custom_label() -> None:
    s = staging.add_version({}, "v1", None)
    s = staging.add_version(s, "v2", [CURRENT, "PUT0"])
    assert staging.labels_by_version(s) == {"v2": [CURRENT, "PUT0"], "v1": [PREVIOUS]}


def test_labels_not_named_stay() -> None:
    s = staging.add_version({}, "v1", ["one", "two", "three"])
    s = staging.add_version(s, "v2", ["one", "two", "four"])
    assert staging.labels_by_version(s) == {"v1": ["three"], "v2": ["four", "one", "two"]}


def test_pending_moves_like_any_label() -> None:
    s = staging.add_version({}, "v1", [CURRENT, PENDING])
    s = staging.add_version(s, "v2", [PENDING])
    assert staging.labels_by_version(s) == {"v1": [CURRENT], "v2": [PENDING]}


def test_recorded_pending_disappears_when_current_replaced() -> None:
    # aws-behaviour.md §5: v1 [AWSPREVIOUS], v2 [AWSCURRENT, AWSPENDING]; put without stages.
    s = {PREVIOUS: "v1", CURRENT: "v2", PENDING: "v2"}
    s = staging.add_version(s, "v3", None)
    assert staging.labels_by_version(s) == {"v3": [CURRENT], "v2": [PREVIOUS]}


def test_move_current_requires_remove_from() -> None:
    s = {CURRENT: "v1"}
    with pytest.raises(ServiceError) as err:
        staging.move_stage(s, CURRENT, "v2", None, {"v1", "v2"})
    assert err.value.code == "InvalidParameterException"
    assert err.value.message == (
        "The parameter RemoveFromVersionId can't be empty. Staging label AWSCURRENT is currently"
        " attached to version v1, so you must explicitly reference that version in"
        " RemoveFromVersionId."
    )


def test_move_current_gives_previous_and_keeps_other_labels() -> None:
    s = {CURRENT: "v1", PREVIOUS: "v0", "PUT0": "v0", "PENDING": "v2"}
    s = staging.move_stage(s, CURRENT, "v2", "v1", {"v0", "v1", "v2"})
    assert staging.labels_by_version(s) == {
        "v2": [CURRENT, "PENDING"],
        "v1": [PREVIOUS],
        "v0": ["PUT0"],
    }


def test_remove_label() -> None:
    s = {CURRENT: "v1", "X": "v1"}
    assert staging.move_stage(s, "X", None, "v1", {"v1"}) == {CURRENT: "v1"}
    with pytest.raises(ServiceError):
        staging.move_stage(s, "X", None, "v2", {"v1", "v2"})


def test_at_most_twenty_labels() -> None:
    s = staging.add_version({}, "v1", [f"L{i}" for i in range(20)])
    with pytest.raises(ServiceError) as err:
        staging.add_version(s, "v2", ["L20"])
    assert err.value.code == "LimitExceededException"


@given(st.integers(min_value=0, max_value=300), st.integers(min_value=0, max_value=3))
def test_retention_keeps_newest_hundred_and_recent(count: int, labelled_old: int) -> None:
    now = 10 * 86_400_000
    # newest first: one version per hour going back
    versions = [(f"v{i}", now - i * 3_600_000) for i in range(count)]
    stages = {f"L{i}": versions[-1 - i][0] for i in range(min(labelled_old, count))}
    doomed = set(staging.versions_to_purge(versions, stages, now))
    for index, (vid, created) in enumerate(versions):
        keep = index < 100 or vid in stages.values() or now - created < 86_400_000
        assert (vid in doomed) != keep


class StagingMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.stages: dict[str, str] = {}
        self.versions: list[str] = []

    @rule(requested=st.none() | st.lists(LABELS, min_size=1, max_size=4))
    def put(self, requested: list[str] | None) -> None:
        vid = f"v{len(self.versions)}"
        before = dict(self.stages)
        self.stages = staging.add_version(self.stages, vid, requested)
        self.versions.append(vid)
        named = set(requested) if requested is not None else {CURRENT}
        for label in named:
            assert self.stages[label] == vid
        if CURRENT in named and PREVIOUS not in named and before.get(CURRENT) not in (None, vid):
            assert self.stages[PREVIOUS] == before[CURRENT]
        for label, holder in before.items():
            if label not in named and label not in (PREVIOUS, PENDING):
                assert self.stages[label] == holder

    @precondition(lambda self: len(self.versions) >= 1)
    @rule(data=st.data(), label=LABELS)
    def move(self, data: st.DataObject, label: str) -> None:
        target = data.draw(st.sampled_from(self.versions))
        holder = self.stages.get(label)
        new = staging.move_stage(self.stages, label, target, holder, set(self.versions))
        assert new[label] == target
        if label == CURRENT and holder not in (None, target):
            assert new[PREVIOUS] == holder
        self.stages = new

    @precondition(lambda self: bool(self.stages))
    @rule(data=st.data())
    def remove(self, data: st.DataObject) -> None:
        label = data.draw(st.sampled_from(sorted(self.stages)))
        new = staging.move_stage(self.stages, label, None, self.stages[label], set(self.versions))
        assert label not in new
        self.stages = new

    @invariant()
    def each_label_on_one_existing_version(self) -> None:
        by_version = staging.labels_by_version(self.stages)
        assert sum(len(v) for v in by_version.values()) == len(self.stages)
        assert set(self.stages.values()) <= set(self.versions)
        assert len(self.stages) <= staging.MAX_LABELS_PER_SECRET


TestStagingMachine = StagingMachine.TestCase
TestStagingMachine.settings = settings(max_examples=200, stateful_step_count=30, deadline=None)
