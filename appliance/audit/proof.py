"""One record's place in the hash chain, and whether it verifies: the proof an auditor
reads beside a single record (the whole-log verification is :mod:`appliance.audit.verify`).

Three checks, each with the public key and the stored columns only: the record's hash
recomputes from its columns; it links to the record before it (or to the segment's
genesis); and the Merkle root over its segment's leaves, up to the newest signed
checkpoint that covers it, equals that checkpoint's signed root.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from appliance.audit.checkpoints import Checkpoint
from appliance.audit.merkle import MerkleFrontier, leaf_hash
from appliance.audit.schema import canonical_bytes, genesis_hash


@dataclass(frozen=True, slots=True)
class RecordProof:
    segment_id: str
    seq: int
    leaf_hash: str
    prev_hash: str
    #: The stored columns hash to ``leaf_hash`` (None: purged, only the hash is left).
    content_ok: bool | None
    #: ``prev_hash`` is the leaf hash of record ``seq - 1`` (the genesis hash for seq 0).
    link_ok: bool
    #: The newest signed checkpoint covering the record (None: not yet signed).
    checkpoint: Checkpoint | None
    #: That checkpoint's signature verifies under the trusted public key.
    signature_ok: bool | None
    #: The Merkle root over leaves 0..tree_size-1 equals the signed root.
    root_ok: bool | None

    @property
    def verified(self) -> bool:
        """Every check that applies passed and the record is covered by a signature."""
        return (
            self.content_ok is not False
            and self.link_ok
            and self.checkpoint is not None
            and bool(self.signature_ok)
            and bool(self.root_ok)
        )


def covering_checkpoint(checkpoints: Sequence[Checkpoint], seq: int) -> Checkpoint | None:
    """The newest checkpoint whose tree includes record ``seq``."""
    covering = [cp for cp in checkpoints if cp.tree_size > seq]
    return max(covering, key=lambda cp: cp.tree_size) if covering else None


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    frontier = MerkleFrontier()
    for leaf in leaves:
        frontier.append(leaf)
    return frontier.root()


def prove_record(
    segment_id: str,
    row: Mapping[str, Any],
    previous_leaf: bytes | None,
    checkpoints: Sequence[Checkpoint],
    leaves_up_to: Callable[[int], Sequence[bytes]],
    public: Ed25519PublicKey | None,
) -> RecordProof:
    """Check one raw record (all columns, ``leaf_hash`` and ``prev_hash`` included).

    ``previous_leaf`` is the leaf hash of record ``seq - 1`` (ignored for seq 0);
    ``leaves_up_to(n)`` returns the segment's first ``n`` leaf hashes in order (the caller
    may cache it: it reads a column of the whole segment).
    """
    seq = int(row["seq"])
    stored = bytes(row["leaf_hash"] or b"")
    prev = bytes(row["prev_hash"] or b"")
    content_ok = None if row.get("purged") else leaf_hash(canonical_bytes(segment_id, dict(row))) == stored
    expected_prev = genesis_hash(segment_id) if seq == 0 else previous_leaf
    cp = covering_checkpoint(checkpoints, seq)
    signature_ok = root_ok = None
    if cp is not None:
        signature_ok = public is not None and cp.valid_under(public)
        root_ok = merkle_root(leaves_up_to(cp.tree_size)).hex() == cp.root_hash
    return RecordProof(
        segment_id=segment_id,
        seq=seq,
        leaf_hash=stored.hex(),
        prev_hash=prev.hex(),
        content_ok=content_ok,
        link_ok=expected_prev is not None and prev == expected_prev,
        checkpoint=cp,
        signature_ok=signature_ok,
        root_ok=root_ok,
    )
