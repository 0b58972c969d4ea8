"""The journal: records acknowledged but not yet inserted survive a dead writer."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from appliance.audit.journal import JournalCorrupt, journal_path
from appliance.audit.reader import open_reader
from appliance.audit.segments import AuditPaths, db_key, signer
from appliance.audit.writer import recover_orphans
from tests.audit._tamper import cli_verify, writer_segment
from tests.audit.conftest import PII_NAME, audit_config, make_ctx, record_all

#: Records 25 requests through the real stage (each awaited: acknowledged), with inserts
#: put off for an hour, then dies without closing anything.
DIE_AFTER_ACK = """
import asyncio, os, sys
from pathlib import Path
from appliance.pipeline.record import RecordStage
from tests.audit.conftest import audit_config, make_ctx

async def go():
    stage = RecordStage(audit_config(Path(sys.argv[1]), flush_interval_ms=3_600_000))
    await stage.start()
    for i in range(25):
        await stage.record(make_ctx(i, payload=(i % 5 == 0)))
    print("acked", flush=True)
    os._exit(0)

asyncio.run(go())
"""


def _die_after_ack(data: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-c", DIE_AFTER_ACK, str(data)],
        cwd=Path(__file__).parents[2], capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0 and "acked" in out.stdout, out.stderr


def _recover(data: Path) -> list[str]:
    config = audit_config(data)
    paths = AuditPaths.from_config(config)
    return recover_orphans(config, paths, db_key(config), signer(config, paths))


def test_acknowledged_records_in_the_journal_are_replayed_after_a_crash(tmp_path: Path) -> None:
    data = tmp_path / "data"
    record_all(audit_config(data), [make_ctx(100)])  # keys and a first sealed segment
    _die_after_ack(data)
    config = audit_config(data)
    paths = AuditPaths.from_config(config)
    (live,) = [p for p in paths.segment_files() if journal_path(p).exists()]
    assert journal_path(live).stat().st_size > 0
    raw = journal_path(live).read_bytes()
    assert PII_NAME.encode() not in raw and b"tenant" not in raw  # sealed, not plaintext

    assert _recover(data) == [live.stem]
    assert not journal_path(live).exists()
    with open_reader(config) as reader:
        assert reader.sql("SELECT count(*) FROM records WHERE kind = 'request'") == [(26,)]
        (details,) = reader.sql("SELECT extra FROM records WHERE kind = 'recover'")[0]
        assert '"replayed_from_journal":25' in details.replace(" ", "")
    rc, out = cli_verify(config, paths)
    assert rc == 0, out


def test_a_torn_last_frame_is_ignored_and_an_altered_frame_is_refused(tmp_path: Path) -> None:
    data = tmp_path / "data"
    _die_after_ack(data)
    paths = AuditPaths.from_config(audit_config(data))
    journal = journal_path(writer_segment(paths))
    good = journal.read_bytes()

    journal.write_bytes(good + good[:40])  # the process died inside write(): never acknowledged
    assert len(_recover(data)) == 1
    with open_reader(audit_config(data)) as reader:
        assert reader.sql("SELECT count(*) FROM records WHERE kind = 'request'") == [(25,)]

    data2 = tmp_path / "data2"
    _die_after_ack(data2)
    journal = journal_path(writer_segment(AuditPaths.from_config(audit_config(data2))))
    altered = bytearray(journal.read_bytes())
    altered[60] ^= 1  # inside the first frame's ciphertext
    journal.write_bytes(bytes(altered))
    with pytest.raises(JournalCorrupt):
        _recover(data2)


def test_a_reader_sees_journaled_records_without_waiting_for_the_flush(tmp_path: Path) -> None:
    """Rotation on a reader's request inserts what is pending before sealing."""
    data = tmp_path / "data"
    config = audit_config(data, flush_interval_ms=3_600_000)
    record_all(config, [make_ctx(i) for i in range(7)])  # closing seals: inserts pending first
    with open_reader(config) as reader:
        assert reader.sql("SELECT count(*) FROM records WHERE kind = 'request'") == [(7,)]
    assert not list(AuditPaths.from_config(config).segments.glob("*.journal"))
