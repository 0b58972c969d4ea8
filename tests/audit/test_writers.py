"""Several writer processes, each with its own segment; the mirror checkpoint copy."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from appliance.audit.reader import open_reader
from appliance.audit.rows import admin_row
from appliance.audit.segments import AuditPaths, SegmentFile, db_key, signer
from tests.audit._tamper import cli_verify, run_sql, writer_segment
from tests.audit.conftest import audit_config, make_ctx, record_all

WRITER = """
import sys
from pathlib import Path
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


def test_a_signed_checkpoint_moves_the_segments_rows_out_of_memory(tmp_path: Path) -> None:
    """A live segment lives for up to an hour: its appended rows must not stay in the
    writer's memory until then. After a signed checkpoint DuckDB holds none of them as
    in-memory table data and its write-ahead log is empty (the rows are in the file)."""
    config = audit_config(tmp_path / "data")
    paths = AuditPaths.from_config(config)
    key, sign = db_key(config), signer(config, paths)
    seg = SegmentFile.create(paths, key, "seg-host-1-20260101T000000000000Z")
    try:
        for start in range(0, 3000, 50):
            seg.append([admin_row("recover", "t", {"i": i, "pad": "x" * 200})
                        for i in range(start, start + 50)])

        def in_memory_bytes() -> int:
            cur = seg.conn.cursor()
            try:
                rows = cur.execute("SELECT memory_usage_bytes FROM duckdb_memory()"
                                   " WHERE tag = 'IN_MEMORY_TABLE'").fetchall()
            finally:
                cur.close()
            return sum(r[0] for r in rows)

        assert in_memory_bytes() > 0  # appended, not yet checkpointed
        seg.checkpoint(sign, paths.checkpoint_dirs())
        assert in_memory_bytes() == 0
        wal = seg.path.with_name(seg.path.name + ".wal")
        assert not wal.exists() or wal.stat().st_size == 0
    finally:
        seg.close()
