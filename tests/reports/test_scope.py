"""What a report counts: the period, the filters, and only signed records."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from appliance.audit.reader import open_reader
from appliance.audit.segments import (
    AuditPaths,
    SegmentFile,
    attach,
    connect,
    db_key,
    new_segment_id,
)
from appliance.audit.writer import AuditWriter
from appliance.config import Config, load_config
from appliance.reports.export import export
from appliance.reports.report import open_report
from appliance.reports.request import Period, ReportRequest
from tests.reports.conftest import SampleAudit


def _us(t: dt.datetime) -> int:
    return int(t.replace(tzinfo=dt.UTC).timestamp() * 1_000_000)


def _row(
    rid: str, ts: dt.datetime, tenant: str = "acme", tokens: int = 10, cost: float = 0.5
) -> dict[str, Any]:
    return {
        "kind": "request",
        "request_id": rid,
        "ts_start": _us(ts),
        "ts_end": _us(ts) + 1000,
        "tenant": tenant,
        "application": "app",
        "model": "m",
        "provider": "p",
        "region": "eu",
        "prompt_tokens": tokens,
        "completion_tokens": 0,
        "total_tokens": tokens,
        "cost_usd": cost,
        "decision": "allow",
        "status": 200,
        "pii_total": 0,
    }


def _write(config: Config, rows: list[dict[str, Any]]) -> None:
    writer = AuditWriter(config)
    writer.start()
    errors: list[BaseException] = []
    for row in rows:
        writer.submit(row, lambda e: errors.append(e) if e else None)
    writer.close()
    assert not errors


def _usage(config: Config, first: dt.date, last: dt.date, **kw: Any) -> dict[str, Any]:
    with open_report(config, ReportRequest("usage", Period(first, last), **kw)) as r:
        meta = r.meta()
    return meta


BOUNDARY = [
    # (record time, counted in a report of 2026-03-31 alone)
    (dt.datetime(2026, 3, 30, 23, 59, 59, 999999), False),
    (dt.datetime(2026, 3, 31, 0, 0), True),
    (dt.datetime(2026, 3, 31, 23, 59, 59, 999999), True),
    (dt.datetime(2026, 4, 1, 0, 0), False),
]


def test_period_includes_both_days_and_nothing_else(tmp_path: Path) -> None:
    config = load_config(None, data_dir=tmp_path)
    _write(config, [_row(f"r{i}", ts) for i, (ts, _) in enumerate(BOUNDARY)])
    meta = _usage(config, dt.date(2026, 3, 31), dt.date(2026, 3, 31))
    assert meta["summary"]["requests"] == sum(inside for _, inside in BOUNDARY)


def test_tenant_and_application_filters(tmp_path: Path) -> None:
    config = load_config(None, data_dir=tmp_path)
    day = dt.datetime(2026, 3, 5, 12)
    _write(config, [_row("a1", day, "acme"), _row("a2", day, "acme"), _row("g1", day, "globex")])
    d = dt.date(2026, 3, 5)
    assert _usage(config, d, d)["summary"]["requests"] == 3
    assert _usage(config, d, d, tenant="acme")["summary"]["requests"] == 2
    assert _usage(config, d, d, tenant="nobody")["summary"]["requests"] == 0
    assert _usage(config, d, d, application="other")["summary"]["requests"] == 0


def test_records_after_the_last_signed_checkpoint_are_left_out_and_counted(tmp_path: Path) -> None:
    config = load_config(None, data_dir=tmp_path)
    day = dt.datetime(2026, 3, 5, 12)
    _write(config, [_row("signed", day)])
    # a writer that died before signing: its records have no checkpoint
    paths = AuditPaths.from_config(config)
    seg = SegmentFile.create(paths, db_key(config), new_segment_id("seg"))
    seg.append([_row("unsigned-1", day), _row("unsigned-2", day)])
    seg.close()
    meta = _usage(config, day.date(), day.date())
    assert meta["summary"]["requests"] == 1
    assert meta["basis"]["records_not_covered"] == 2
    assert meta["basis"]["records"] == 1


def test_numbers_agree_with_a_direct_count_of_the_log(sample_audit: SampleAudit) -> None:
    """The report SQL against a plain query over the raw records (a different path)."""
    first, last = dt.date(2026, 3, 10), dt.date(2026, 3, 12)
    meta = _usage(sample_audit.config, first, last, tenant="acme")
    with open_reader(sample_audit.config) as reader:
        rows = list(
            reader.search(
                raw=True,
                kind="request",
                tenant="acme",
                since=dt.datetime(2026, 3, 10),
                until=dt.datetime(2026, 3, 13),
            )
        )
    assert meta["summary"]["requests"] == len(rows) > 0
    assert meta["summary"]["total_tokens"] == sum(r["total_tokens"] for r in rows)
    assert meta["summary"]["denied"] == sum(r["decision"] == "deny" for r in rows)
    assert meta["summary"]["cost_usd"] == pytest.approx(sum(r["cost_usd"] for r in rows), abs=1e-6)
    with open_report(
        sample_audit.config, ReportRequest("pii", Period(first, last), tenant="acme")
    ) as r:
        pii = r.meta()
    findings = sum(sum(json.loads(r["pii_counts"]).values()) for r in rows if r["pii_counts"])
    assert pii["summary"]["findings"] == findings
    assert pii["summary"]["requests_with_pii"] == sum(1 for r in rows if r["pii_total"])


def test_same_period_same_digest_and_numbers(sample_audit: SampleAudit) -> None:
    march = (dt.date(2026, 3, 1), dt.date(2026, 3, 31))
    a = _usage(sample_audit.config, *march)
    b = _usage(sample_audit.config, *march)
    assert a["basis"]["checkpoint_digest"] == b["basis"]["checkpoint_digest"]
    assert a["summary"] == b["summary"]
    assert a["sections"] == b["sections"]


def test_later_records_elsewhere_leave_the_digest_of_a_closed_period_alone(tmp_path: Path) -> None:
    config = load_config(None, data_dir=tmp_path)
    _write(config, [_row("march", dt.datetime(2026, 3, 5))])
    before = _usage(config, dt.date(2026, 3, 1), dt.date(2026, 3, 31))
    _write(config, [_row("april", dt.datetime(2026, 4, 5))])
    after = _usage(config, dt.date(2026, 3, 1), dt.date(2026, 3, 31))
    assert after["basis"]["checkpoint_digest"] == before["basis"]["checkpoint_digest"]
    both = _usage(config, dt.date(2026, 3, 1), dt.date(2026, 4, 30))
    assert both["basis"]["checkpoint_digest"] != before["basis"]["checkpoint_digest"]
    assert both["summary"]["requests"] == 2


def test_art12_states_a_failed_verification_of_an_altered_log(tmp_path: Path) -> None:
    config = load_config(None, data_dir=tmp_path)
    _write(config, [_row(f"r{i}", dt.datetime(2026, 3, 5, 12, i)) for i in range(20)])
    ok = export(
        config,
        ReportRequest("art12", Period(dt.date(2026, 3, 5), dt.date(2026, 3, 5))),
        "json",
        tmp_path / "ok.json",
    )
    assert ok.verified is True
    paths = AuditPaths.from_config(config)
    conn = connect()
    attach(conn, paths.segment_files()[0], "seg", db_key(config), read_only=False)
    conn.execute("UPDATE seg.records SET total_tokens = 999 WHERE seq = 7")
    conn.close()
    bad = export(
        config,
        ReportRequest("art12", Period(dt.date(2026, 3, 5), dt.date(2026, 3, 5))),
        "json",
        tmp_path / "bad.json",
    )
    assert bad.verified is False
    doc = json.loads((tmp_path / "bad.json").read_bytes())
    assert doc["basis"]["verification"]["ok"] is False
    assert "seq 7" in doc["basis"]["verification"]["problems"][0]


def test_no_audit_log_is_a_clear_error(tmp_path: Path) -> None:
    from appliance.reports.report import ReportError

    config = load_config(None, data_dir=tmp_path)
    with pytest.raises(ReportError, match="no audit public key"):
        export(
            config,
            ReportRequest("usage", Period(dt.date(2026, 3, 1), dt.date(2026, 3, 1))),
            "json",
            tmp_path / "x.json",
        )
    assert not (tmp_path / "x.json").exists()


def test_a_failed_export_leaves_no_partial_file(
    sample_audit: SampleAudit, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pyarrow.parquet as pq

    def broken(self: Any, batch: Any, *a: Any, **k: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(pq.ParquetWriter, "write_batch", broken)  # fails once the file is open
    out = tmp_path / "x.parquet"
    with pytest.raises(OSError, match="disk full"):
        export(
            sample_audit.config,
            ReportRequest("art12", Period(dt.date(2026, 3, 1), dt.date(2026, 3, 2))),
            "parquet",
            out,
        )
    assert list(tmp_path.iterdir()) == []
