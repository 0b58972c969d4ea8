"""Several writer processes, each with its own segment; the mirror checkpoint copy."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from appliance.audit.reader import open_reader
from appliance.audit.rows import admin_row
from appliance.audit.segments import AuditPaths, SegmentFile, db_key, lock_path, signer
from tests.audit._tamper import cli_verify, run_sql, writer_segment
from tests.audit.conftest import audit_config, make_ctx, record_all

WRITER = """
import sys
from pathlib import Path

import pytest
from tests.audit.conftest import audit_config, make_ctx, record_all
record_all(audit_config(Path(sys.argv[1])), [make_ctx(i, tenant=sys.argv[2]) for i in range(150)])
"""


def test_concurrent_writer_processes_each_write_a_segment(tmp_path: Path) -> None:
    data = tmp_path / "data"
    record_all(audit_config(data), [make_ctx(0)])  # keys exist before the writers race
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(data), f"t{n}"], cwd=Path(__file__).parents[2])
        for n in range(3)
    ]
    assert [p.wait(300) for p in procs] == [0, 0, 0]
    config = audit_config(data)
    paths = AuditPaths.from_config(config)
    assert len([p for p in paths.segment_files() if p.stem.startswith("seg-")]) == 4
    assert not list(paths.segments.glob("seg-*.lock"))  # sealed segments keep no lock file
    rc, out = cli_verify(config, paths)
    assert rc == 0, out
    with open_reader(config) as reader:
        assert reader.sql("SELECT count(DISTINCT request_id) FROM records") == [(451,)]


def test_mirror_checkpoints_expose_a_rollback_of_file_and_data_dir(tmp_path: Path) -> None:
    data = tmp_path / "data"
    mirror = tmp_path / "worm"
    config = audit_config(data, checkpoint_mirror_dir=str(mirror))
    record_all(config, [make_ctx(i) for i in range(30)])
    paths = AuditPaths.from_config(config)
    assert list(mirror.glob("*.jsonl"))
    # The attacker truncates the tail and erases every checkpoint they can reach.
    run_sql(config, paths, "DELETE FROM records WHERE seq >= 20", "DELETE FROM checkpoints")
    shutil.rmtree(paths.checkpoints)
    assert writer_segment(paths).exists()
    cfg = tmp_path / "appliance.toml"
    cfg.write_text(f'[audit]\ncheckpoint_mirror_dir = "{mirror}"\n')
    rc, out = cli_verify(config, paths, "--config", str(cfg))  # the config names the mirror
    assert rc == 1 and out["first_broken"]["seq"] == 20, out
    rc, out = cli_verify(audit_config(data), paths, "--checkpoints", str(mirror))  # or the auditor does
    assert rc == 1 and out["first_broken"]["seq"] == 20, out
    # Without any copy of the checkpoints the unsigned records are only a warning...
    rc, out = cli_verify(config, paths)
    assert rc == 0 and out["warnings"], out
    # ... which --strict turns into a failure.
    rc, out = cli_verify(config, paths, "--strict")
    assert rc == 1, out


def test_segments_rotate_by_size_and_the_log_still_verifies(tmp_path: Path) -> None:
    data = tmp_path / "data"
    cfg = tmp_path / "appliance.toml"
    cfg.write_text("[audit]\nsegment_max_records = 10\n")
    from appliance.config import load_config

    config = load_config(cfg, data_dir=data)

    async def one_by_one() -> None:
        from appliance.pipeline.record import RecordStage

        stage = RecordStage(config)
        await stage.start()
        for i in range(100):  # one commit each: the writer rotates after every 10th
            await stage.record(make_ctx(i))
        await stage.aclose()

    import asyncio

    asyncio.run(one_by_one())
    paths = AuditPaths.from_config(config)
    assert len(paths.segment_files()) == 10
    rc, out = cli_verify(config, paths, "--config", str(cfg), "--strict")
    assert rc == 0, out
    assert sum(s["records"] for s in out["segments"]) == 100


def _duckdb_memory(seg: SegmentFile, tag: str) -> int:
    """Bytes DuckDB holds under ``tag`` (``duckdb_memory()``) for the segment's connection."""
    cur = seg.conn.cursor()
    try:
        rows = cur.execute("SELECT memory_usage_bytes FROM duckdb_memory() WHERE tag = ?", [tag]).fetchall()
    finally:
        cur.close()
    return sum(r[0] for r in rows)


def _append_padded(seg: SegmentFile, n: int = 3000) -> None:
    for start in range(0, n, 50):
        seg.append([admin_row("recover", "t", {"i": i, "pad": "x" * 200}) for i in range(start, start + 50)])


def test_a_signed_checkpoint_moves_the_segments_rows_out_of_memory(tmp_path: Path) -> None:
    """A live segment lives for up to an hour: its appended rows must not stay in the
    writer's memory until then. After a signed checkpoint DuckDB holds none of them as
    in-memory table data and its write-ahead log is empty (the rows are in the file)."""
    config = audit_config(tmp_path / "data")
    paths = AuditPaths.from_config(config)
    key, sign = db_key(config), signer(config, paths)
    seg = SegmentFile.create(paths, key, "seg-host-1-20260101T000000000000Z")
    try:
        _append_padded(seg)
        assert _duckdb_memory(seg, "IN_MEMORY_TABLE") > 0  # appended, not yet checkpointed
        seg.checkpoint(sign, paths.checkpoint_dirs())
        assert _duckdb_memory(seg, "IN_MEMORY_TABLE") == 0
        wal = seg.path.with_name(seg.path.name + ".wal")
        assert not wal.exists() or wal.stat().st_size == 0
    finally:
        seg.close()


def test_a_live_segment_lets_go_of_its_table_data_and_its_chain_goes_on(tmp_path: Path) -> None:
    """What a checkpoint leaves in memory (DuckDB holds the written table data while the
    file is attached) is let go by re-opening the file, and appending goes on where it was:
    the sealed segment verifies with every record."""
    config = audit_config(tmp_path / "data")
    paths = AuditPaths.from_config(config)
    key, sign = db_key(config), signer(config, paths)
    seg = SegmentFile.create(paths, key, "seg-host-1-20260101T000000000000Z")
    try:
        _append_padded(seg)
        seg.checkpoint(sign, paths.checkpoint_dirs())
        held = _duckdb_memory(seg, "BASE_TABLE")
        seg.release_memory()
        assert held >= 1 << 20 and _duckdb_memory(seg, "BASE_TABLE") <= 256 * 1024  # at most one block, read back
        seg.append([admin_row("recover", "t", {"i": 3000})])
        seg.checkpoint(sign, paths.checkpoint_dirs(), sealed=True)
    finally:
        seg.close(sealed=True)
    assert not lock_path(seg.path).exists()  # sealed: nobody writes it again
    rc, out = cli_verify(config, paths, "--strict")
    assert rc == 0, out
    assert [s["records"] for s in out["segments"]] == [3001]


IN_THE_WINDOW = """
import json, sys
from pathlib import Path

import pytest
from appliance.audit.reader import open_reader
from appliance.audit.segments import AuditPaths, db_key, signer
from appliance.audit.writer import recover_orphans
from tests.audit.conftest import audit_config
config = audit_config(Path(sys.argv[1]))
paths = AuditPaths.from_config(config)
with open_reader(config, fresh=False) as reader:
    skipped = reader.skipped
recovered = recover_orphans(config, paths, db_key(config), signer(config, paths))
print(json.dumps({"skipped": skipped, "recovered": recovered}))
"""


def test_while_the_writer_reopens_its_segment_no_other_process_gets_in(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between detaching and re-attaching, DuckDB's own lock is gone. In that moment a
    reader must still find the segment being written (else the writer could not get its
    file back) and crash recovery must not take it for a dead writer's and seal it."""
    import appliance.audit.segments as segments

    config = audit_config(tmp_path / "data")
    paths = AuditPaths.from_config(config)
    key, sign = db_key(config), signer(config, paths)
    seg = SegmentFile.create(paths, key, "seg-host-1-20260101T000000000000Z")
    seen: list[dict[str, object]] = []
    real_attach = segments.attach

    def attach_after_a_look(*args: object, **kwargs: object) -> None:
        if kwargs.get("held") is not None and not seen:  # detached, about to re-attach
            out = subprocess.run([sys.executable, "-c", IN_THE_WINDOW, str(tmp_path / "data")],
                                 cwd=Path(__file__).parents[2], capture_output=True, text=True, timeout=120)
            assert out.returncode == 0, out.stderr
            seen.append(json.loads(out.stdout))
        real_attach(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(segments, "attach", attach_after_a_look)
    try:
        seg.append([admin_row("recover", "t", {"i": 0})])
        seg.checkpoint(sign, paths.checkpoint_dirs())
        seg.release_memory()
        seg.append([admin_row("recover", "t", {"i": 1})])  # the writer has its file back
        seg.checkpoint(sign, paths.checkpoint_dirs(), sealed=True)
    finally:
        seg.close()
    assert seen == [{"skipped": {seg.segment_id: "being written"}, "recovered": []}]
    assert lock_path(seg.path).exists()  # close() without sealed=True (the admin segment's way) keeps it
    rc, out = cli_verify(config, paths, "--strict")
    assert rc == 0 and [s["records"] for s in out["segments"]] == [2], out
