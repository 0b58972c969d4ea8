"""The data a report rests on: segments, signed checkpoints, and the verification result.

A report only counts records that a checkpoint with a valid Ed25519 signature covers
(``coverage``); the checkpoints of the segments that hold the report's records are
listed on the report and folded into one digest, so two exports that show the same
digest were computed from the same signed data.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from appliance.audit.checkpoints import Checkpoint, load_external
from appliance.audit.reader import AuditReader


@dataclass(frozen=True)
class SegmentBasis:
    segment_id: str
    records: int
    first_record: dt.datetime | None
    last_record: dt.datetime | None
    checkpoint: Checkpoint

    def as_dict(self) -> dict[str, object]:
        cp = self.checkpoint
        return {
            "segment_id": self.segment_id,
            "records_in_report": self.records,
            "checkpoint_tree_size": cp.tree_size,
            "checkpoint_root_hash": cp.root_hash,
            "checkpoint_time": iso(dt.datetime.fromtimestamp(cp.time_us / 1e6, dt.UTC)),
            "checkpoint_sealed": cp.sealed,
            "checkpoint_key_id": cp.key_id,
            "checkpoint_signature": cp.signature,
        }


@dataclass(frozen=True)
class Verification:
    """Outcome of the full chain verification (appliance.audit.verify)."""

    ok: bool
    segments: int
    records: int
    problems: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, object]:
        return {
            "performed": True,
            "ok": self.ok,
            "segments_verified": self.segments,
            "records_verified": self.records,
            "problems": list(self.problems),
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class Basis:
    public_key_id: str
    segments: tuple[SegmentBasis, ...]
    #: Records of the period left out because no signed checkpoint covers them yet.
    not_covered: int
    #: Segments that could not be read (being written, damaged): name -> reason.
    skipped: Mapping[str, str] = field(default_factory=dict)
    verification: Verification | None = None

    @property
    def records(self) -> int:
        return sum(s.records for s in self.segments)

    @property
    def checkpoint_digest(self) -> str:
        return checkpoint_digest(s.checkpoint for s in self.segments)

    def as_dict(self) -> dict[str, object]:
        return {
            "records": self.records,
            "checkpoint_digest": self.checkpoint_digest,
            "public_key_id": self.public_key_id,
            "segments": [s.as_dict() for s in self.segments],
            "records_not_covered": self.not_covered,
            "segments_skipped": dict(self.skipped),
            "verification": self.verification.as_dict()
            if self.verification is not None
            else {"performed": False},
        }


def iso(value: dt.datetime | None) -> str | None:
    """ISO 8601 in UTC with a trailing Z; naive values are UTC already (as stored)."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value.isoformat() + "Z"


def checkpoint_digest(checkpoints: Iterable[Checkpoint]) -> str:
    """SHA-256 over the sorted signed checkpoints: one value to compare two exports by."""
    lines = sorted(
        f"{cp.segment_id}|{cp.tree_size}|{cp.root_hash}|{cp.signature}" for cp in checkpoints
    )
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def signed_checkpoints(
    reader: AuditReader, public: Ed25519PublicKey, extra_dirs: Iterable[Path] = ()
) -> dict[str, Checkpoint]:
    """Newest checkpoint with a valid signature, per segment (inside copies and outside ones)."""
    found: list[Checkpoint] = [
        Checkpoint(str(r[0]), int(r[1]), str(r[2]), int(r[3]), bool(r[4]), str(r[5]), str(r[6]))
        for r in reader.sql(
            "SELECT segment_id, tree_size, root_hash, time_us, sealed, key_id, signature"
            " FROM checkpoints WHERE segment_id IS NOT NULL"
        )
    ]
    for directory in [*reader.paths.checkpoint_dirs(), *extra_dirs]:
        found.extend(load_external(directory))
    best: dict[str, Checkpoint] = {}
    for cp in found:
        if cp.segment_id not in reader.segments or not cp.valid_under(public):
            continue
        held = best.get(cp.segment_id)
        if held is None or (cp.tree_size, cp.time_us) > (held.tree_size, held.time_us):
            best[cp.segment_id] = cp
    return best
