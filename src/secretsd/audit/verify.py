"""`secretsd audit verify`: recompute every chain and check every signed digest.

Finds a record changed (its hash), removed or reordered (block sizes, the sequence and the
previous-hash links), records cut from the end (the chain head), a block whose time range (what
LookupEvents selects on) does not cover its records, and digests that are forged, re-signed by
another key, unlinked from their
predecessor, or that no longer match the records they cover. Someone able to rewrite the whole
database can recompute hashes, but not sign: records after the last digest are therefore reported
as not yet covered by a signature.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from secretsd.audit.chain import GENESIS, DigestHead, load_public_key, record_hash, signature_valid
from secretsd.audit.record import NotARecord, render
from secretsd.store.audit_repository import AuditRepository, StoredBlock, StoredDigest
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


def _blocks(db: Database, account: str, region: str, batch: int = 200) -> Iterator[StoredBlock]:
    after = -1
    while True:
        with db.transaction() as tx:
            found = AuditRepository(tx).blocks_page(account, region, after, batch)
        yield from found
        if len(found) < batch:
            return
        after = found[-1].first_seq


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
    stored_at: dict[int, str] = {}
    # Each record's hash is checked over its own contents, its sequence number and the
    # previous record's hash; links, the head and the digests against the stored hashes.
    expected, prev = 1, GENESIS
    at_head = GENESIS if head.seq == 0 else None
    for block in _blocks(db, account, region):
        lines, hashes = block.lines(), block.hash_list()
        where = f"records {block.first_seq}..{block.last_seq}"
        if block.first_seq > expected:
            report.problem(f"record {expected}..{block.first_seq - 1} missing (removed)")
        elif block.first_seq < expected:
            report.problem(f"{where}: out of sequence (reordered or duplicated)")
        if not (len(lines) == len(hashes) == block.last_seq - block.first_seq + 1):
            report.problem(
                f"{where}: {len(lines)} records and {len(hashes)} hashes where"
                f" {block.last_seq - block.first_seq + 1} belong (removed or added)"
            )
        if block.prev_hash != prev:
            report.problem(f"{where}: previous-hash link broken (removed or reordered)")
        link = block.prev_hash
        for offset, (line, stored) in enumerate(zip(lines, hashes, strict=False)):
            seq = block.first_seq + offset
            report.records += 1
            if record_hash(seq, link, line.encode()) != stored:
                report.problem(f"record {seq}: contents or position changed (hash mismatch)")
            _check_time(report, seq, line, block)
            if seq in wanted:
                stored_at[seq] = stored
            link = stored
            if seq == head.seq:
                at_head = stored
        expected, prev = block.last_seq + 1, link
    # A live server appends while the blocks are read, each page in a transaction of its own:
    # the chain must reach the head read first, and not pass the head as it is now.
    with db.transaction() as tx:
        now_head = AuditRepository(tx).head(account, region)
    last = expected - 1
    if last < head.seq or at_head != head.head_hash:
        report.problem(
            f"chain head (record {head.seq}) does not match the records"
            f" (last record {last}): records removed or changed at the end"
        )
    elif now_head is None or last > now_head.seq:
        report.problem(f"records after the chain head (record {head.seq}): added")
    _check_digests(report, digests, stored_at, head.digest_signature, trusted)
    report.digests = len(digests)
    report.unsigned_tail = head.seq - (digests[-1].seq if digests else 0)
    return report


def _check_time(report: ChainReport, seq: int, line: str, block: StoredBlock) -> None:
    """The block's time range (LookupEvents' index) must cover its records' times, or a
    lookup could be made to miss them."""
    try:
        body = render(line)
        seconds = calendar.timegm(time.strptime(body["eventTime"], "%Y-%m-%dT%H:%M:%SZ"))
    except (NotARecord, KeyError, TypeError, ValueError):
        report.problem(f"record {seq}: not a CloudTrail record")
        return
    if not block.first_ms // 1000 <= seconds <= block.last_ms // 1000:
        report.problem(f"record {seq}: outside its block's time range (hidden from lookups)")


def _check_digests(
    report: ChainReport,
    digests: list[StoredDigest],
    stored_at: dict[int, str],
    head_signature: str,
    trusted: TrustedKeys,
) -> None:
    previous = ""
    for d in digests:
        where = f"digest at record {d.seq}"
        key_text = trusted(d.key_version)
        if key_text is None:
            report.problem(
                f"{where}: no trusted public key for root key version {d.key_version} (retired"
                " by a rotation? verify with --public-keys exported before it)"
            )
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
        if stored_at.get(d.seq) != d.head_hash:
            report.problem(f"{where}: the records it covers have changed since it was signed")
        previous = d.signature
    if head_signature != previous:
        report.problem("the chain head names a different last digest (digest removed)")
