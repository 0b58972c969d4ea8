"""Verification of the whole log with the public key and the database key only.

Per segment: every record's position (``seq``), its link to the previous record, its
hash recomputed from the stored columns, the Merkle root at every signed checkpoint, the
signature of every checkpoint under the given public key, and the checkpoints kept
outside the file (data dir, mirror) against what the file still holds, which exposes a
truncated or rolled-back file. Purged records must be covered by a signed purge record.
A segment whose file is gone must have been dropped by a signed purge.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import duckdb
import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from appliance.audit.checkpoints import Checkpoint, load_external
from appliance.audit.keys import public_key_id
from appliance.audit.merkle import MerkleFrontier, leaf_hash
from appliance.audit.reader import AuditReader, attach_all
from appliance.audit.schema import canonical_bytes, genesis_hash
from appliance.config import Config


@dataclass(frozen=True)
class Problem:
    segment_id: str
    seq: int | None
    message: str
    #: The replica that wrote the segment (fleet verification).
    replica: str | None = None

    def __str__(self) -> str:
        where = f"{self.segment_id} record seq {self.seq}" if self.seq is not None else self.segment_id
        if self.replica is not None:
            where = f"replica {self.replica}: {where}"
        return f"{where}: {self.message}"


@dataclass
class SegmentResult:
    segment_id: str
    records: int = 0
    purged: int = 0
    checkpoints_checked: int = 0
    signed_size: int = 0
    sealed: bool = False


@dataclass
class VerifyReport:
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    segments: list[SegmentResult] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def first(self) -> Problem | None:
        return self.problems[0] if self.problems else None


@dataclass
class _PurgeCoverage:
    ranges: dict[str, list[tuple[int, int]]] = field(default_factory=dict)
    dropped: set[str] = field(default_factory=set)

    def add(self, extra: dict[str, Any]) -> None:
        for seg, spans in dict(extra.get("segments") or {}).items():
            self.ranges.setdefault(seg, []).extend((int(a), int(b)) for a, b in spans)
        self.dropped.update(extra.get("dropped") or [])

    def covers(self, segment_id: str, seq: int) -> bool:
        return segment_id in self.dropped or any(a <= seq <= b for a, b in self.ranges.get(segment_id, ()))


def _checkpoints_for(
    reader: AuditReader, alias: str, segment_id: str, external: list[Checkpoint]
) -> list[Checkpoint]:
    inside = reader.conn.execute(
        f"SELECT tree_size, root_hash, time_us, sealed, key_id, signature FROM {alias}.checkpoints"
    ).fetchall()
    cps = [
        Checkpoint(segment_id, int(r[0]), str(r[1]), int(r[2]), bool(r[3]), str(r[4]), str(r[5]))
        for r in inside
    ]
    cps.extend(cp for cp in external if cp.segment_id == segment_id)
    unique = {(cp.tree_size, cp.root_hash, cp.signature): cp for cp in cps}
    return sorted(unique.values(), key=lambda cp: cp.tree_size)


def _verify_segment(
    reader: AuditReader,
    segment_id: str,
    alias: str,
    public: Ed25519PublicKey,
    external: list[Checkpoint],
    coverage: _PurgeCoverage,
    report: VerifyReport,
) -> SegmentResult:
    res = SegmentResult(segment_id)

    def fail(seq: int | None, msg: str) -> SegmentResult:
        report.problems.append(Problem(segment_id, seq, msg))
        return res

    info = reader.conn.execute(f"SELECT segment_id, genesis_hash FROM {alias}.segment_info").fetchall()
    if len(info) != 1 or info[0][0] != segment_id:
        return fail(None, "segment_info does not name this segment (file renamed or replaced)")
    if bytes(info[0][1]) != genesis_hash(segment_id):
        return fail(None, "genesis hash does not match the segment id")

    cps = _checkpoints_for(reader, alias, segment_id, external)
    by_size: dict[int, Checkpoint] = {}
    for cp in cps:
        if not cp.valid_under(public):
            return fail(
                cp.tree_size - 1 if cp.tree_size else None,
                f"checkpoint at tree size {cp.tree_size} is not signed by the trusted key "
                f"(signed by key id {cp.key_id}, trusted {public_key_id(public)})",
            )
        other = by_size.get(cp.tree_size)
        if other is not None and other.root_hash != cp.root_hash:
            return fail(cp.tree_size - 1, f"two signed checkpoints disagree at tree size {cp.tree_size} (fork)")
        by_size[cp.tree_size] = cp
    sizes = sorted(by_size)
    res.signed_size = sizes[-1] if sizes else 0
    res.sealed = any(cp.sealed for cp in cps)

    frontier = MerkleFrontier()
    prev = genesis_hash(segment_id)
    next_cp = 0
    last_cp_size = 0
    cur = reader.conn.cursor()
    batches = cur.execute(f"SELECT * FROM {alias}.records ORDER BY seq").fetch_record_batch(4096)
    expected = 0
    for batch in batches:
        for row in batch.to_pylist():
            seq = row["seq"]
            if seq != expected:
                if seq is not None and seq > expected:
                    return fail(expected, f"missing (deleted or reordered): found seq {seq} in its place")
                return fail(expected, f"out of place (inserted or reordered): carries seq {seq}")
            if row["prev_hash"] is None or bytes(row["prev_hash"]) != prev:
                return fail(seq, "does not link to the previous record (inserted, deleted or reordered)")
            stored = bytes(row["leaf_hash"] or b"")
            if row.get("purged"):
                res.purged += 1
                if not coverage.covers(segment_id, seq):
                    return fail(seq, "content removed without a signed purge record")
            elif leaf_hash(canonical_bytes(segment_id, row)) != stored:
                return fail(seq, "content does not match its hash (altered)")
            frontier.append(stored)
            prev = stored
            expected += 1
            while next_cp < len(sizes) and sizes[next_cp] == frontier.size:
                cp = by_size[sizes[next_cp]]
                if frontier.root().hex() != cp.root_hash:
                    return fail(
                        last_cp_size,
                        f"Merkle root at tree size {cp.tree_size} differs from the signed checkpoint: "
                        f"a record in seq {last_cp_size}..{cp.tree_size - 1} was altered",
                    )
                res.checkpoints_checked += 1
                last_cp_size = cp.tree_size
                next_cp += 1
    res.records = expected
    if sizes and sizes[-1] > expected:
        return fail(
            expected,
            f"missing: a signed checkpoint covers {sizes[-1]} records but the file holds {expected} "
            "(tail truncated or file rolled back to an older copy)",
        )
    if res.signed_size < expected:
        report.warnings.append(
            f"{segment_id}: {expected - res.signed_size} records after the last signed checkpoint "
            "(writer still running or crashed before sealing; `appliance audit checkpoint` seals it)"
        )
    return res


def verify(
    config: Config,
    public: Ed25519PublicKey,
    *,
    extra_checkpoint_dirs: Iterable[Path] = (),
    fresh: bool = True,
) -> VerifyReport:
    """Verify every segment under ``config``'s data dir; see the module docstring."""
    report = VerifyReport()
    with attach_all(config, fresh=fresh) as reader:
        external: list[Checkpoint] = []
        for d in [*reader.checkpoint_dirs(), *extra_checkpoint_dirs]:
            external.extend(load_external(d))
        for replica in reader.silent:
            report.warnings.append(
                f"replica {replica} did not seal and ship on request: its newest records are not verified"
            )
        for name, why in reader.skipped.items():
            if why.startswith("unreadable"):
                report.problems.append(
                    Problem(name, None, f"segment file cannot be read with the database key ({why}): "
                            "bytes changed or the file is damaged")
                )
            else:
                report.warnings.append(f"{name}: not verified, {why}")
        coverage = _PurgeCoverage()
        # Purge records first: they license removed content elsewhere. Their own
        # segments are verified below like every other segment.
        for (extra,) in reader.sql("SELECT extra FROM records WHERE kind = 'purge' AND extra IS NOT NULL"):
            coverage.add(orjson.loads(extra))
        for segment_id, alias in sorted(reader.segments.items()):
            try:
                report.segments.append(
                    _verify_segment(reader, segment_id, alias, public, external, coverage, report)
                )
            except duckdb.Error as e:
                report.problems.append(
                    Problem(segment_id, None, f"segment cannot be read ({type(e).__name__}): damaged or altered")
                )
        present = set(reader.segments) | set(reader.skipped)
        for seg in sorted({cp.segment_id for cp in external} - present):
            if seg in coverage.dropped:
                continue
            size = max(cp.tree_size for cp in external if cp.segment_id == seg)
            report.problems.append(
                Problem(seg, 0, f"segment file is missing: signed checkpoints cover {size} records and no purge dropped it")
            )
        if reader.replicas:
            report.problems = [replace(p, replica=reader.replicas.get(p.segment_id)) for p in report.problems]
    return report
