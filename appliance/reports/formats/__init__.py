"""Report formats: a registry of writers, each one small module (data plus one hook).

Data formats (json, csv, parquet) stream every detail row from DuckDB in Arrow batches;
document formats (html, pdf) show the summary, the aggregated sections with charts and a
bounded preview of the detail rows. Every format writes to a temporary file first and
renames it into place, so a failed export never leaves a half-written report behind.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from appliance.reports.report import Report

#: write(report, out, progress_enabled) -> rows of detail written
Writer = Callable[["Report", Path, bool], int]


@dataclass(frozen=True)
class ReportFormat:
    name: str
    suffix: str
    media_type: str
    #: True: every detail row; False: a document with aggregates and a bounded preview.
    complete_detail: bool
    #: Module (under appliance.reports.formats) whose ``write`` produces the file; imported
    #: on first use, so listing formats costs nothing (reportlab, matplotlib load late).
    module: str

    @property
    def write(self) -> Writer:
        writer: Writer = importlib.import_module(f"appliance.reports.formats.{self.module}").write
        return writer


@contextmanager
def atomic_output(out: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``out``; rename it to ``out`` only on success."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.part")
    try:
        yield tmp
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def formats() -> Mapping[str, ReportFormat]:
    """Every format by name (read-only)."""
    found = (
        ReportFormat("json", ".json", "application/json", True, "json_format"),
        ReportFormat("csv", ".csv", "text/csv", True, "csv_format"),
        ReportFormat(
            "parquet", ".parquet", "application/vnd.apache.parquet", True, "parquet_format"
        ),
        ReportFormat("html", ".html", "text/html", False, "html_format"),
        ReportFormat("pdf", ".pdf", "application/pdf", False, "pdf_format"),
    )
    return MappingProxyType({f.name: f for f in found})
