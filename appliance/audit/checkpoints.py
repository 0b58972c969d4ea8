"""Signed checkpoints: (segment, tree size, root hash, time) signed with Ed25519.

A checkpoint is stored three times: in the segment's own ``checkpoints`` table, in
``<audit dir>/checkpoints/<segment>.jsonl`` and, if configured, in a mirror directory on
another disk. The copies outside the segment are what exposes a truncated or
rolled-back segment file: they remember a larger tree than the file still holds.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from appliance.audit.keys import SigningKey

VERSION = 1


@dataclass(frozen=True, slots=True)
class Checkpoint:
    segment_id: str
    tree_size: int
    root_hash: str  # hex
    time_us: int
    sealed: bool
    key_id: str
    signature: str = ""  # hex

    def message(self) -> bytes:
        doc = {
            "v": VERSION,
            "segment_id": self.segment_id,
            "tree_size": self.tree_size,
            "root_hash": self.root_hash,
            "time_us": self.time_us,
            "sealed": self.sealed,
            "key_id": self.key_id,
        }
        return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS)

    def signed(self, key: SigningKey) -> Checkpoint:
        sig = key.private.sign(self.message()).hex()
        return Checkpoint(**{**asdict(self), "key_id": key.key_id, "signature": sig})

    def valid_under(self, public: Ed25519PublicKey) -> bool:
        try:
            public.verify(bytes.fromhex(self.signature), self.message())
        except (InvalidSignature, ValueError):
            return False
        return True

    def to_json(self) -> bytes:
        return orjson.dumps(asdict(self), option=orjson.OPT_SORT_KEYS)


def external_path(directory: Path, segment_id: str) -> Path:
    return directory / f"{segment_id}.jsonl"


def append_external(directories: Iterable[Path], cp: Checkpoint) -> None:
    """Append ``cp`` to the segment's JSONL file in each directory, durably."""
    line = cp.to_json() + b"\n"
    for directory in directories:
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(external_path(directory, cp.segment_id), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)


def load_external(directory: Path) -> list[Checkpoint]:
    """Every checkpoint found under ``directory`` (a torn last line is ignored)."""
    out: list[Checkpoint] = []
    if not directory.is_dir():
        return out
    for path in sorted(directory.glob("*.jsonl")):
        for line in path.read_bytes().splitlines():
            try:
                out.append(Checkpoint(**orjson.loads(line)))
            except (orjson.JSONDecodeError, TypeError):
                continue
    return out
