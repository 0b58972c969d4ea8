"""Transparency-log style mutation tests: every kind of tampering is named by `audit verify`."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from appliance.audit.rows import admin_row
from appliance.audit.segments import AuditPaths, SegmentFile, db_key, signer
from appliance.config import Config
from tests.audit._tamper import (
    cli_verify,
    first_with_payload,
    flip_column,
    rechain_and_resign,
    run_sql,
    writer_segment,
)
from tests.audit.conftest import audit_config

LogCopy = Callable[[], tuple[Config, AuditPaths]]


def test_untouched_log_verifies(log_copy: LogCopy) -> None:
    config, paths = log_copy()
    rc, out = cli_verify(config, paths)  # `python -m appliance audit verify`
    assert rc == 0 and out["ok"], out
    assert sum(s["records"] for s in out["segments"]) == 40


@pytest.mark.parametrize(
    ("column", "seq"),
    [
        ("request_id", 0), ("tenant", 5), ("user_id", 39), ("decision", 17), ("pii_counts", 8),
        ("total_tokens", 11), ("cost_usd", 22), ("ts_start", 30), ("status", 2), ("risk_class", 13),
        ("stages", 14), ("payload_ct", -1), ("payload_nonce", -1), ("kind", 1), ("seq", 25),
    ],
)
def test_flipped_byte_in_a_record_is_named(log_copy: LogCopy, column: str, seq: int) -> None:
    config, paths = log_copy()
    if seq < 0:  # a record that stores an encrypted payload
        seq = first_with_payload(config, paths)
    flip_column(config, paths, column, seq)
    rc, out = cli_verify(config, paths)
    assert rc == 1
    assert out["first_broken"]["seq"] == seq, out


def test_flipped_chain_link_is_named(log_copy: LogCopy) -> None:
    config, paths = log_copy()
    flip_column(config, paths, "prev_hash", 9)
    rc, out = cli_verify(config, paths)
    assert rc == 1 and out["first_broken"]["seq"] == 9, out


def test_flipped_stored_hash_is_caught(log_copy: LogCopy) -> None:
    config, paths = log_copy()
    flip_column(config, paths, "leaf_hash", 9)
    rc, out = cli_verify(config, paths)
    assert rc == 1 and out["first_broken"]["seq"] == 9, out


@pytest.mark.parametrize(
    ("name", "statements", "named"),
    [
        ("delete", ["DELETE FROM records WHERE seq = 10"], {10}),
        ("reorder", ["UPDATE records SET seq = -1 WHERE seq = 7", "UPDATE records SET seq = 7 WHERE seq = 8",
                     "UPDATE records SET seq = 8 WHERE seq = -1"], {7}),
        ("insert duplicate", ["INSERT INTO records SELECT * REPLACE ('req_forged' AS request_id) FROM records WHERE seq = 20"],
         {20, 21}),
        ("insert shifted", ["UPDATE records SET seq = seq + 1 WHERE seq >= 15",
                            "INSERT INTO records SELECT * REPLACE (15 AS seq, 'req_forged' AS request_id) FROM records WHERE seq = 16"],
         {15, 16}),
        ("truncate tail", ["DELETE FROM records WHERE seq >= 35"], {35}),
        ("truncate tail and its checkpoints", ["DELETE FROM records WHERE seq >= 35", "DELETE FROM checkpoints"], {35}),
        ("purge without a signed purge record", ["UPDATE records SET request_id = NULL, purged = true WHERE seq = 4"], {4}),
    ],
)
def test_structural_tampering_is_named(log_copy: LogCopy, name: str, statements: list[str], named: set[int]) -> None:
    config, paths = log_copy()
    run_sql(config, paths, *statements)
    rc, out = cli_verify(config, paths)
    assert rc == 1, name
    assert out["first_broken"]["seq"] in named, out


def test_resigned_with_another_key_is_caught(log_copy: LogCopy) -> None:
    config, paths = log_copy()
    rechain_and_resign(config, paths, seq=12)
    rc, out = cli_verify(config, paths)
    assert rc == 1
    assert "not signed by the trusted key" in out["problems"][0], out


def test_rollback_to_an_older_copy_is_caught(tmp_path: Path) -> None:
    config = audit_config(tmp_path / "data")
    paths = AuditPaths.from_config(config)
    key, sign = db_key(config), signer(config, paths)
    seg = SegmentFile.create(paths, key, "seg-host-1-20260101T000000000000Z")
    seg.append([admin_row("recover", "t", {"i": i}) for i in range(10)])
    seg.checkpoint(sign, paths.checkpoint_dirs())
    seg.close()
    old = tmp_path / "old.duckdb"
    shutil.copy(seg.path, old)
    seg = SegmentFile.open_existing(paths, key, seg.path)
    seg.append([admin_row("recover", "t", {"i": i}) for i in range(10, 25)])
    seg.checkpoint(sign, paths.checkpoint_dirs(), sealed=True)
    seg.close()
    assert cli_verify(config, paths)[0] == 0
    shutil.copy(old, seg.path)
    rc, out = cli_verify(config, paths)
    assert rc == 1 and out["first_broken"]["seq"] == 10, out
    assert "rolled back" in out["problems"][0]


def test_deleted_segment_file_is_caught(log_copy: LogCopy) -> None:
    config, paths = log_copy()
    writer_segment(paths).unlink()
    rc, out = cli_verify(config, paths)
    assert rc == 1 and "missing" in out["problems"][0], out


def test_raw_byte_flips_in_the_file_are_caught(log_copy: LogCopy) -> None:
    config, paths = log_copy()
    path = writer_segment(paths)
    data = bytearray(path.read_bytes())
    # DuckDB's encrypted blocks are authenticated (AES-GCM): flip one byte in each block
    # the log occupies and every flip must break verification.
    detected = 0
    blocks = range(4096 * 3, len(data), 262_144)
    for offset in blocks:
        mutated = bytearray(data)
        mutated[offset + 100] ^= 0x01
        path.write_bytes(bytes(mutated))
        rc, out = cli_verify(config, paths)
        detected += rc == 1
        if rc == 1:
            assert out["first_broken"]["segment_id"] == path.stem
    path.write_bytes(bytes(data))
    assert detected >= 1
    assert cli_verify(config, paths)[0] == 0
