"""`secretsd audit verify`: recompute every chain and check every signed digest.

Finds a record changed (its hash), removed or reordered (the sequence and the previous-hash
links), records cut from the end (the chain head), LookupEvents columns that disagree with the
record they index, and digests that are forged, re-signed by another key, unlinked from their
predecessor, or that no longer match the records they cover. Someone able to rewrite the whole
database can recompute hashes, but not sign: records after the last digest are therefore reported
as not yet covered by a signature.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import orjson

from secretsd.audit.chain import GENESIS, DigestHead, load_public_key, record_hash, signature_valid
from secretsd.store.audit_repository import AuditRepository, StoredDigest, StoredEvent
from secretsd.store.database import Database

MAX_PROBLEMS = 50
# version -> the public key text that version's root key derives (None if not available).
TrustedKeys = Callable[[int], str | None]


@dataclass
class ChainReport:
    account_id: str
    region: str
    records: int = 0
    digests: int = 0
    unsigned_tail: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def problem(self, text: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(text)


def chains(db: Database) -> list[tuple[str, str]]:
    with db.transaction() as tx:
        return AuditRepository(tx).chains()


def _events(db: Database, account: str, region: str, batch: int = 1000) -> Iterator[StoredEvent]:
    after = 0
    while True:
        with db.transaction() as tx:
            found = AuditRepository(tx).events_page(account, region, after, batch)
        yield from found
        if len(found) < batch:
            return
        after = found[-1].seq


def verify_chain(db: Database, account: str, region: str, trusted: TrustedKeys) -> ChainReport:
    report = ChainReport(account, region)
    with db.transaction() as tx:
        repo = AuditRepository(tx)
        head = repo.head(account, region)
        digests = repo.digests(account, region)
    if head is None:
        report.problem("no chain head: the chain's head row was removed")
        return report
    wanted = {d.seq for d in digests}
    computed_at: dict[int, str] = {}
    # Each record's hash is checked over its own contents and the previous record's hash;
    # the links, the head and the digests are then checked against the stored hashes.
    expected, prev = 1, GENESIS
    for ev in _events(db, account, region):
        report.records += 1
        if ev.seq > expected:
            missing = f"{expected}..{ev.seq - 1}" if ev.seq - 1 > expected else str(expected)
            report.problem(f"record {missing} missing (removed)")
        elif ev.seq < expected:
            report.problem(f"record {ev.seq} out of sequence")
        if ev.prev_hash != prev:
            report.problem(f"record {ev.seq}: previous-hash link broken (removed or reordered)")
        if record_hash(ev.seq, ev.prev_hash, ev.record.encode()) != ev.hash:
            report.problem(f"record {ev.seq}: contents or position changed (hash mismatch)")
        _check_columns(report, ev)
        if ev.seq in wanted:
            computed_at[ev.seq] = ev.hash
        expected, prev = ev.seq + 1, ev.hash
    if expected - 1 != head.seq or prev != head.head_hash:
        report.problem(
            f"chain head (record {head.seq}) does not match the records"
            f" (last record {expected - 1}): records removed or changed at the end"
        )
    _check_digests(report, digests, computed_at, head.digest_signature, trusted)
    report.digests = len(digests)
    report.unsigned_tail = head.seq - (digests[-1].seq if digests else 0)
    return report


def _check_columns(report: ChainReport, ev: StoredEvent) -> None:
    try:
        body = orjson.loads(ev.record)
    except orjson.JSONDecodeError:
        report.problem(f"record {ev.seq}: not valid JSON")
        return
    if not isinstance(body, dict) or (
        body.get("eventID") != ev.event_id
        or body.get("eventName") != ev.event_name
        or body.get("eventSource") != ev.event_source
        or body.get("readOnly") != ev.read_only
    ):
        report.problem(f"record {ev.seq}: lookup columns disagree with the record")


def _check_digests(
    report: ChainReport,
    digests: list[StoredDigest],
    computed_at: dict[int, str],
    head_signature: str,
    trusted: TrustedKeys,
) -> None:
    previous = ""
    for d in digests:
        where = f"digest at record {d.seq}"
        key_text = trusted(d.key_version)
        if key_text is None:
            report.problem(f"{where}: no trusted public key for root key version {d.key_version}")
        elif key_text != d.public_key:
            report.problem(f"{where}: signed by a key that is not secretsd's (forged)")
        else:
            head = DigestHead(
                d.account_id, d.region, d.seq, d.head_hash, d.created_ms, d.previous_signature
            )
            if not signature_valid(load_public_key(key_text), head, d.signature):
                report.problem(f"{where}: signature invalid (forged or changed digest)")
        if d.previous_signature != previous:
            report.problem(f"{where}: does not follow the previous digest (digest removed)")
        if computed_at.get(d.seq) != d.head_hash:
            report.problem(f"{where}: the records it covers have changed since it was signed")
        previous = d.signature
    if head_signature != previous:
        report.problem("the chain head names a different last digest (digest removed)")
