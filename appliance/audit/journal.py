"""The segment journal: where a record becomes durable before it reaches DuckDB.

A DuckDB commit of one encrypted 48-column row costs about 6 ms of CPU, and a request
must not be acknowledged before its record is durable. So the writer first appends the
chained rows to this journal (AES-GCM sealed, one ``write`` and one ``fdatasync`` per
group commit, well under a millisecond), acknowledges them, and inserts them into the
segment in larger, cheaper batches later. Once a batch is committed to DuckDB the
journal is truncated; a writer that dies leaves its journal, and recovery replays the
frames the segment does not hold yet (``seq`` at or above the segment's size).

Frame: ``length u32 | seq u64 | nonce 12 | AES-GCM(row)``, the segment id and seq bound
as associated data so a frame cannot be replayed into another segment or position. A
torn last frame (the process died inside ``write``) was never acknowledged and is
ignored; a bad frame anywhere else is tampering and stops recovery.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from appliance.audit.schema import COLUMNS

_HEAD = struct.Struct(">IQ12s")  # frame length (after this field), seq, nonce
_BLOBS = frozenset(i for i, c in enumerate(COLUMNS) if c.kind == "blob")
_NAMES = tuple(c.name for c in COLUMNS)


class JournalCorrupt(Exception):
    """A frame before the end does not authenticate: the journal was altered."""


def journal_key(db_key: str) -> bytes:
    """The journal's AES key, derived from (never equal to) the database key."""
    return hashlib.sha256(b"appliance-audit-journal|" + db_key.encode()).digest()


def journal_path(segment_path: Path) -> Path:
    return segment_path.with_suffix(".journal")


def _encode(row: dict[str, Any]) -> bytes:
    values = [row.get(name) for name in _NAMES]
    for i in _BLOBS:
        v = values[i]
        if v is not None:
            values[i] = bytes(v).hex()
    return orjson.dumps(values)


def _decode(data: bytes) -> dict[str, Any]:
    values = orjson.loads(data)
    for i in _BLOBS:
        if values[i] is not None:
            values[i] = bytes.fromhex(values[i])
    return dict(zip(_NAMES, values, strict=True))


class Journal:
    """The append side, owned by one writer thread."""

    def __init__(self, path: Path, segment_id: str, key: bytes) -> None:
        self.path = path
        self._aad = segment_id.encode() + b"|"
        self._aes = AESGCM(key)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        self._size = os.fstat(self._fd).st_size

    def append(self, rows: list[dict[str, Any]]) -> None:
        """Seal ``rows`` (already chained: ``seq`` set) and make them durable, or raise
        with the journal as it was."""
        frames = []
        for row in rows:
            seq = int(row["seq"])
            nonce = os.urandom(12)
            ct = self._aes.encrypt(nonce, _encode(row), self._aad + seq.to_bytes(8, "big"))
            frames.append(_HEAD.pack(8 + 12 + len(ct), seq, nonce) + ct)
        data = b"".join(frames)
        try:
            written = os.write(self._fd, data)
            if written != len(data):
                raise OSError("short write to the audit journal")
            os.fdatasync(self._fd)
        except BaseException:
            os.ftruncate(self._fd, self._size)  # no half frame before the next append
            raise
        self._size += len(data)

    def truncate(self) -> None:
        """Everything journaled is in the segment now."""
        os.ftruncate(self._fd, 0)
        self._size = 0

    def close(self, *, remove: bool) -> None:
        os.close(self._fd)
        if remove:
            self.path.unlink(missing_ok=True)


def read_frames(path: Path, segment_id: str, key: bytes, from_seq: int) -> Iterator[dict[str, Any]]:
    """The rows journaled with ``seq >= from_seq``, in order, for recovery."""
    data = path.read_bytes()
    aes = AESGCM(key)
    aad = segment_id.encode() + b"|"
    pos = 0
    while pos + 4 <= len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        end = pos + 4 + length
        if length < 20 or end > len(data):
            return  # torn tail: never acknowledged
        _, seq, nonce = _HEAD.unpack_from(data, pos)
        ct = data[pos + _HEAD.size : end]
        if seq >= from_seq:
            try:
                plain = aes.decrypt(nonce, ct, aad + seq.to_bytes(8, "big"))
            except InvalidTag:
                if end == len(data):
                    return  # torn tail
                raise JournalCorrupt(f"{path.name}: frame for seq {seq} does not authenticate") from None
            yield _decode(plain)
        pos = end
