"""Each kind exports in each format; the documents show the numbers of the JSON export."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from appliance.reports.display import fmt
from appliance.reports.export import export
from appliance.reports.formats import formats
from appliance.reports.formats.csv_format import meta_path
from appliance.reports.formats.parquet_format import METADATA_KEY
from appliance.reports.kinds import kinds
from appliance.reports.request import Period, ReportRequest
from tests.reports.conftest import SampleAudit

KINDS = sorted(kinds())
FORMATS = list(formats())
MARCH = Period(dt.date(2026, 3, 1), dt.date(2026, 3, 31))
NOW = dt.datetime(2026, 4, 2, 9, 30, tzinfo=dt.UTC)
HAVE_POPPLER = shutil.which("pdftoppm") is not None and shutil.which("pdftotext") is not None
needs_poppler = pytest.mark.skipif(
    not HAVE_POPPLER, reason="pdftoppm/pdftotext missing: apt-get install poppler-utils"
)


class Exports:
    """Exports of March 2026, made on first use and kept for the session.

    Lazy, so that under pytest-xdist each worker only builds what its tests read.
    """

    def __init__(self, audit: SampleAudit, out_dir: Path) -> None:
        self._audit = audit
        self._dir = out_dir
        self._done: dict[tuple[str, str], Path] = {}

    def __getitem__(self, key: tuple[str, str]) -> Path:
        if key not in self._done:
            kind, name = key
            out = self._dir / f"{kind}{formats()[name].suffix}"
            export(self._audit.config, ReportRequest(kind, MARCH), name, out, now=NOW)
            self._done[key] = out
        return self._done[key]


@pytest.fixture(scope="session")
def exported(sample_audit: SampleAudit, tmp_path_factory: pytest.TempPathFactory) -> Exports:
    return Exports(sample_audit, tmp_path_factory.mktemp("exports"))


def _json(exported: Exports, kind: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(exported[(kind, "json")].read_bytes())
    return doc


@pytest.mark.parametrize("kind", KINDS)
def test_json_states_period_basis_and_checkpoint(exported: Exports, kind: str) -> None:
    doc = _json(exported, kind)
    assert doc["report"]["kind"] == kind
    assert doc["report"]["period"] == {
        "from": "2026-03-01",
        "to": "2026-03-31",
        "start_utc": "2026-03-01T00:00:00Z",
        "end_utc_exclusive": "2026-04-01T00:00:00Z",
    }
    basis = doc["basis"]
    assert re.fullmatch(r"[0-9a-f]{64}", basis["checkpoint_digest"])
    assert basis["records"] > 0 and basis["segments"]
    for seg in basis["segments"]:
        assert seg["checkpoint_tree_size"] >= seg["records_in_report"]
        assert re.fullmatch(r"[0-9a-f]{128}", seg["checkpoint_signature"])
    assert set(doc["report"]["queries"]) == {"_scope.sql", f"{kind}.sql"}
    assert doc["detail"]["row_count"] == len(doc["detail"]["rows"])


@pytest.mark.parametrize("kind", KINDS)
def test_csv_and_parquet_hold_the_rows_of_the_json(exported: Exports, kind: str) -> None:
    doc = _json(exported, kind)
    rows = doc["detail"]["row_count"]
    csv_path = exported[(kind, "csv")]
    meta = json.loads(meta_path(csv_path).read_bytes())
    assert meta["detail"]["sha256"] == hashlib.sha256(csv_path.read_bytes()).hexdigest()
    assert meta["summary"] == doc["summary"]
    if rows:
        assert pacsv.read_csv(csv_path).num_rows == rows
    table = pq.read_table(exported[(kind, "parquet")])
    assert table.num_rows == rows
    assert table.column_names == doc["detail"]["columns"]
    embedded = json.loads(table.schema.metadata[METADATA_KEY])
    assert embedded["summary"] == doc["summary"]
    assert embedded["basis"]["checkpoint_digest"] == doc["basis"]["checkpoint_digest"]
    if rows:  # same first row, whatever the format
        first = table.slice(0, 1).to_pylist()[0]
        for k, v in doc["detail"]["rows"][0].items():
            got = first[k]
            if isinstance(got, dt.datetime):
                got = got.isoformat() + "Z"
            assert got == v, k


@pytest.mark.parametrize("kind", KINDS)
def test_html_shows_the_numbers_of_the_json(exported: Exports, kind: str) -> None:
    html = exported[(kind, "html")].read_text("utf-8")
    doc = _json(exported, kind)
    assert doc["basis"]["checkpoint_digest"] in html
    assert "2026-03-01 to 2026-03-31" in html
    for col, label in doc["summary_labels"].items():
        assert (
            f'<td>{label}</td><td class="num">{fmt(doc["summary"][col], col)}</td>'
            in html.replace("\n", "")
        )
    embedded = re.search(
        r'<script type="application/json" id="report-meta">(.*?)</script>', html, re.DOTALL
    )
    assert embedded is not None
    assert json.loads(embedded.group(1).replace("<\\/", "</"))["summary"] == doc["summary"]


def _pdf_text(path: Path) -> str:
    return subprocess.run(
        ["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True
    ).stdout


@needs_poppler
@pytest.mark.parametrize("kind", KINDS)
def test_pdf_opens_and_renders_to_png_pages(exported: Exports, kind: str, tmp_path: Path) -> None:
    pdf = exported[(kind, "pdf")]
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(pdf), str(tmp_path / "page")], check=True)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) >= 3  # summary, details, data basis
    for page in pages:
        assert page.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert page.stat().st_size > 1000
    info = subprocess.run(["pdfinfo", str(pdf)], check=True, capture_output=True, text=True).stdout
    assert re.search(rf"^Pages:\s+{len(pages)}$", info, re.MULTILINE)
    assert "checkpoint-digest:" + _json(exported, kind)["basis"]["checkpoint_digest"] in info


@needs_poppler
@pytest.mark.parametrize("kind", KINDS)
def test_pdf_numbers_match_the_json_export(exported: Exports, kind: str) -> None:
    text = _pdf_text(exported[(kind, "pdf")])
    lines = [re.sub(r"\s+", " ", line).strip() for line in text.splitlines()]
    doc = _json(exported, kind)
    # the headline figures: each label followed by its value on the same line
    for col, label in doc["summary_labels"].items():
        want = f"{label} {fmt(doc['summary'][col], col)}"
        assert any(
            line == want or line.endswith(" " + want) or line.startswith(want) for line in lines
        ), want
    # the full digest (the PDF's first page and data basis)
    assert doc["basis"]["checkpoint_digest"] in text.replace("\n", "").replace(" ", "")
    # every number of every section table row shown
    flat = " ".join(lines)
    for section in doc["sections"].values():
        for row in section["rows"][:40]:
            for col, value in row.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    assert fmt(value, col) in flat, (section["title"], col, value)


@pytest.mark.parametrize("kind", KINDS)
def test_document_preview_is_bounded_and_says_so(exported: Exports, kind: str) -> None:
    doc = _json(exported, kind)
    html = exported[(kind, "html")].read_text("utf-8")
    total = doc["detail"]["row_count"]
    if total > 200:
        assert f"Showing 200 of {total:,} rows" in html
    elif total:
        assert f"Showing {total:,} of {total:,} rows." in html
