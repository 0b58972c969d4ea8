"""What an attacker holding the database key (but not the signing key) can do to a segment."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import duckdb
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from appliance.audit.checkpoints import Checkpoint, external_path
from appliance.audit.keys import SigningKey, public_key_id
from appliance.audit.merkle import MerkleFrontier, leaf_hash
from appliance.audit.schema import canonical_bytes, genesis_hash
from appliance.audit.segments import AuditPaths, attach, connect
from appliance.config import Config


def open_rw(config: Config, path: Path) -> duckdb.DuckDBPyConnection:
    from appliance.audit.segments import db_key

    conn = connect()
    attach(conn, path, "seg", db_key(config), read_only=False)
    conn.execute("USE seg")
    return conn


def writer_segment(paths: AuditPaths) -> Path:
    (seg,) = [p for p in paths.segment_files() if not p.stem.startswith("admin-")]
    return seg


def flip(value: Any) -> Any:
    """The value with one byte changed."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value ^ 1
    if isinstance(value, float):
        raw = bytearray(struct.pack("<d", value))
        raw[0] ^= 1
        return struct.unpack("<d", bytes(raw))[0]
    if isinstance(value, str):
        i = len(value) // 2
        return value[:i] + chr(ord(value[i]) ^ 1) + value[i + 1 :]
    if isinstance(value, (bytes, bytearray, memoryview)):
        raw = bytearray(bytes(value))
        raw[len(raw) // 2] ^= 1
        return bytes(raw)
    raise TypeError(type(value))


def flip_column(config: Config, paths: AuditPaths, column: str, seq: int) -> None:
    conn = open_rw(config, writer_segment(paths))
    try:
        if column in ("ts_start", "ts_end"):
            conn.execute(f"UPDATE records SET {column} = {column} + INTERVAL 1 MICROSECOND WHERE seq = ?", [seq])
            return
        (value,) = conn.execute(f"SELECT {column} FROM records WHERE seq = ?", [seq]).fetchone()  # type: ignore[misc]
        conn.execute(f"UPDATE records SET {column} = ? WHERE seq = ?", [flip(value), seq])
    finally:
        conn.close()


def first_with_payload(config: Config, paths: AuditPaths) -> int:
    conn = open_rw(config, writer_segment(paths))
    try:
        row = conn.execute("SELECT min(seq) FROM records WHERE payload_ct IS NOT NULL").fetchone()
    finally:
        conn.close()
    assert row is not None and row[0] is not None
    return int(row[0])


def run_sql(config: Config, paths: AuditPaths, *statements: str) -> None:
    conn = open_rw(config, writer_segment(paths))
    try:
        for s in statements:
            conn.execute(s)
    finally:
        conn.close()


def rechain_and_resign(config: Config, paths: AuditPaths, seq: int) -> None:
    """Alter one record, recompute every hash and root, sign with the attacker's own key."""
    path = writer_segment(paths)
    conn = open_rw(config, path)
    try:
        seg_id = conn.execute("SELECT segment_id FROM segment_info").fetchone()[0]  # type: ignore[index]
        rows = conn.execute("SELECT * FROM records ORDER BY seq").fetch_arrow_table().to_pylist()
        rows[seq]["user_id"] = "mallory"
        prev, frontier = genesis_hash(seg_id), MerkleFrontier()
        for row in rows:
            row["prev_hash"] = prev
            h = leaf_hash(canonical_bytes(seg_id, row))
            conn.execute("UPDATE records SET user_id = ?, prev_hash = ?, leaf_hash = ? WHERE seq = ?",
                         [row["user_id"], prev, h, row["seq"]])
            frontier.append(h)
            prev = h
        private = Ed25519PrivateKey.generate()
        key = SigningKey(private, private.public_key(), public_key_id(private.public_key()))
        cp = Checkpoint(seg_id, frontier.size, frontier.root().hex(), 1, True, key.key_id).signed(key)
        conn.execute("DELETE FROM checkpoints")
        conn.execute("INSERT INTO checkpoints VALUES (?, ?, ?, ?, ?, ?)",
                     [cp.tree_size, cp.root_hash, cp.time_us, cp.sealed, cp.key_id, cp.signature])
        external_path(paths.checkpoints, seg_id).write_bytes(cp.to_json() + b"\n")
    finally:
        conn.close()


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``appliance audit ...`` as a subprocess, as an auditor does."""
    return subprocess.run([sys.executable, "-m", "appliance", "audit", *args],
                          capture_output=True, text=True, timeout=300, check=False)


def cli_verify(config: Config, paths: AuditPaths, *extra: str) -> tuple[int, dict[str, Any]]:
    r = cli("verify", "--data-dir", str(config.storage.data_dir), "--public-key", str(paths.public_key),
            "--json", *extra)
    assert r.stdout, r.stderr
    return r.returncode, json.loads(r.stdout.strip().splitlines()[-1])
