"""Art. 73 drafts: the requests selected, and the reporting deadlines."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest

from appliance.reports.export import export
from appliance.reports.incident import deadline_for, deadline_rows
from appliance.reports.request import IncidentDetails, Period, ReportRequest
from tests.reports.conftest import SampleAudit

MARCH = Period(dt.date(2026, 3, 1), dt.date(2026, 3, 31))
AWARE = dt.datetime(2026, 3, 10, 8, 0)

DEADLINES = [
    ("general", "Art. 73(2)", "2026-03-25T08:00:00Z"),
    ("death", "Art. 73(4)", "2026-03-20T08:00:00Z"),
    ("widespread", "Art. 73(3)", "2026-03-12T08:00:00Z"),
    ("critical_infrastructure", "Art. 73(3)", "2026-03-12T08:00:00Z"),
]


@pytest.mark.parametrize(("severity", "article", "due"), DEADLINES)
def test_deadline_per_kind_of_incident(severity: str, article: str, due: str) -> None:
    d = deadline_for(severity)  # type: ignore[arg-type]
    assert d.article == article
    rows = deadline_rows(AWARE, severity, now=AWARE)  # type: ignore[arg-type]
    applying = [r for r in rows if r["applies"] == "yes"]
    assert len(applying) == 1
    assert applying[0]["report_due_utc"] == due
    assert applying[0]["article"] == article


def test_overdue_deadlines_say_so() -> None:
    rows = deadline_rows(AWARE, "widespread", now=AWARE + dt.timedelta(days=3))
    assert {r["time_left"] for r in rows if r["days_after_awareness"] == 2} == {"overdue"}
    assert {r["time_left"] for r in rows if r["days_after_awareness"] == 15} == {"12 d 0 h"}


def test_selected_requests_only(sample_audit: SampleAudit, tmp_path: Path) -> None:
    ids = ("req-00000010", "req-00000500", "req-00002000")
    req = ReportRequest(
        "incident",
        MARCH,
        request_ids=ids,
        incident=IncidentDetails(
            aware_at=AWARE, severity="death", description="A wrong triage answer."
        ),
    )
    export(sample_audit.config, req, "json", tmp_path / "i.json")
    doc = json.loads((tmp_path / "i.json").read_bytes())
    assert doc["summary"]["requests"] == 3
    assert sorted(r["request_id"] for r in doc["detail"]["rows"]) == sorted(ids)
    assert doc["statements"]["severity"] == "death"
    assert doc["statements"]["aware_at"] == "2026-03-10T08:00:00Z"
    due = [r for r in doc["sections"]["deadlines"]["rows"] if r["applies"] == "yes"]
    assert due[0]["report_due_utc"] == "2026-03-20T08:00:00Z"


def test_without_ids_the_flagged_requests_are_selected(
    sample_audit: SampleAudit, tmp_path: Path
) -> None:
    export(sample_audit.config, ReportRequest("incident", MARCH), "json", tmp_path / "i.json")
    doc = json.loads((tmp_path / "i.json").read_bytes())
    rows = doc["detail"]["rows"]
    assert rows and doc["summary"]["requests"] == len(rows)
    for r in rows:
        assert (
            r["risk_class"] == "prohibited"
            or json.loads(r["safety_flags"])
            or (r["status"] or 0) >= 500
        )


def test_command_line_export_with_progress(sample_audit: SampleAudit, tmp_path: Path) -> None:
    out = tmp_path / "incident.pdf"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "appliance",
            "report",
            "export",
            "--data-dir",
            str(sample_audit.data_dir),
            "--kind",
            "incident",
            "--from",
            "2026-03-01",
            "--to",
            "2026-03-31",
            "--request-id",
            "req-00000010",
            "--request-id",
            "req-00000011",
            "--aware-at",
            "2026-03-10T08:00:00Z",
            "--severity",
            "critical_infrastructure",
            "--format",
            "pdf",
            "--out",
            str(out),
            "--progress",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes()[:5] == b"%PDF-"
    assert "wrote" in proc.stderr and "checkpoint digest" in proc.stderr

    data = tmp_path / "usage.csv"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "appliance",
            "report",
            "export",
            "--data-dir",
            str(sample_audit.data_dir),
            "--kind",
            "usage",
            "--from",
            "2026-03-01",
            "--to",
            "2026-03-31",
            "--format",
            "csv",
            "--out",
            str(data),
            "--progress",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "usage -> csv [" in proc.stderr and "100.0%" in proc.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--from", "2026-03-31", "--to", "2026-03-01"], "before it starts"),
        (["--from", "31.03.2026", "--to", "2026-03-01"], "YYYY-MM-DD"),
    ],
)
def test_command_line_refuses_bad_periods(tmp_path: Path, args: list[str], message: str) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "appliance",
            "report",
            "export",
            "--data-dir",
            str(tmp_path),
            "--kind",
            "usage",
            *args,
            "--format",
            "json",
            "--out",
            str(tmp_path / "x.json"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2
    assert message in proc.stderr
