"""One call that produces a report file: the API behind ``appliance report export``."""

from __future__ import annotations

import datetime as dt
import sys
from dataclasses import dataclass
from pathlib import Path

from appliance.config import Config
from appliance.reports.formats import formats
from appliance.reports.report import ReportError, open_report
from appliance.reports.request import ReportRequest


@dataclass(frozen=True)
class ExportResult:
    path: Path
    format: str
    kind: str
    #: Detail rows written (data formats) or shown (documents).
    rows: int
    #: Records of the audit log the report rests on.
    records: int
    checkpoint_digest: str
    verified: bool | None


def export(
    config: Config,
    request: ReportRequest,
    format: str,
    out: Path,
    *,
    progress: bool = False,
    public_key: Path | None = None,
    memory_limit: str = "256MB",
    now: dt.datetime | None = None,
) -> ExportResult:
    fmt = formats().get(format)
    if fmt is None:
        raise ReportError(f"unknown format {format!r}; known: {', '.join(formats())}")

    def step(message: str) -> None:
        if progress:
            print(f"{request.kind}: {message}", file=sys.stderr, flush=True)

    with open_report(
        config, request, public_key=public_key, memory_limit=memory_limit, now=now, on_step=step
    ) as report:
        step(f"writing {fmt.name}")
        rows = fmt.write(report, out, progress)
        v = report.basis.verification
        return ExportResult(
            path=out,
            format=fmt.name,
            kind=request.kind,
            rows=rows,
            records=report.basis.records,
            checkpoint_digest=report.basis.checkpoint_digest,
            verified=None if v is None else v.ok,
        )
