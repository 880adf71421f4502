"""Staging labels as a pure state machine: `stage -> version id`, so each label is on one version.

The transitions follow what AWS was recorded doing (shared/reference/aws-behaviour.md §5, §7);
the store only persists the resulting map.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from secretsd.errors import ServiceError, invalid_parameter

CURRENT = "AWSCURRENT"
PREVIOUS = "AWSPREVIOUS"
PENDING = "AWSPENDING"
MAX_LABELS_PER_SECRET = 20

Stages = Mapping[str, str]


def labels_by_version(stages: Stages) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for stage in sorted(stages):
        out.setdefault(stages[stage], []).append(stage)
    return out


def _check_label_count(stages: Stages) -> None:
    if len(stages) > MAX_LABELS_PER_SECRET:
        raise ServiceError(
            "LimitExceededException",
            f"You can attach at most {MAX_LABELS_PER_SECRET} staging labels to the versions of a"
            " secret.",
        )


def _move_current(stages: dict[str, str], to_version: str) -> None:
    """AWSCURRENT moves; the version losing it becomes AWSPREVIOUS (taking that label over)."""
    old = stages.get(CURRENT)
    stages[CURRENT] = to_version
    if old is not None and old != to_version:
        stages[PREVIOUS] = old


def add_version(
    stages: Stages,
    version_id: str,
    requested: Sequence[str] | None,
    *,
    first_version: bool = False,
) -> dict[str, str]:
    """Labels after a new version is stored (CreateSecret, PutSecretValue, UpdateSecret).

    AWS's PutSecretValue reference: "If this operation creates the first version for the secret,
    then Secrets Manager automatically attaches the staging label AWSCURRENT to it", whatever
    labels were requested (a secret's first value is what GetSecretValue returns)."""
    new = dict(stages)
    labels = list(dict.fromkeys(requested)) if requested is not None else [CURRENT]
    if first_version and CURRENT not in labels:
        labels.append(CURRENT)
    # AWSCURRENT first: its side effect (AWSPREVIOUS for the old version) must not override a
    # label the caller named explicitly.
    labels.sort(key=lambda label: label != CURRENT)
    for label in labels:
        if label == CURRENT:
            old = new.get(CURRENT)
            _move_current(new, version_id)
            # Recorded: a version losing AWSCURRENT to a brand-new version also loses AWSPENDING
            # (an unfinished rotation is superseded by the new value).
            if old is not None and old != version_id and new.get(PENDING) == old:
                del new[PENDING]
        else:
            new[label] = version_id
    _check_label_count(new)
    return new


def move_stage(
    stages: Stages,
    stage: str,
    move_to: str | None,
    remove_from: str | None,
    existing_versions: set[str],
) -> dict[str, str]:
    """UpdateSecretVersionStage."""
    for version in (move_to, remove_from):
        if version is not None and version not in existing_versions:
            raise invalid_parameter(
                f"Secrets Manager can't find the specified secret version: {version}"
            )
    holder = stages.get(stage)
    new = dict(stages)
    if move_to is None:
        if remove_from is None:
            raise invalid_parameter(
                "You must specify either MoveToVersionId or RemoveFromVersionId, or both."
            )
        if holder != remove_from:
            raise invalid_parameter(
                f"The staging label {stage} is not attached to version {remove_from}."
            )
        del new[stage]
        return new
    if holder is not None and holder != move_to:
        if remove_from is None:
            raise invalid_parameter(
                f"The parameter RemoveFromVersionId can't be empty. Staging label {stage} is"
                f" currently attached to version {holder}, so you must explicitly reference that"
                " version in RemoveFromVersionId."
            )
        if remove_from != holder:
            raise invalid_parameter(
                f"The parameter RemoveFromVersionId doesn't match. Staging label {stage} is"
                f" currently attached to version {holder}, so you must explicitly reference that"
                " version in RemoveFromVersionId."
            )
    elif remove_from is not None and remove_from != move_to and holder != remove_from:
        raise invalid_parameter(
            f"The staging label {stage} is not attached to version {remove_from}."
        )
    if stage == CURRENT:
        _move_current(new, move_to)
    else:
        new[stage] = move_to
    _check_label_count(new)
    return new


def versions_to_purge(
    versions_newest_first: Sequence[tuple[str, int]],
    stages: Stages,
    now_ms: int,
    keep_newest: int = 100,
    keep_younger_than_ms: int = 86_400_000,
) -> list[str]:
    """Deprecated versions AWS would delete: beyond the newest 100 and older than 24 hours."""
    labelled = set(stages.values())
    return [
        version_id
        for index, (version_id, created_ms) in enumerate(versions_newest_first)
        if index >= keep_newest
        and version_id not in labelled
        and now_ms - created_ms >= keep_younger_than_ms
    ]
