"""JSON: one document with the report's metadata, sections and every detail row.

The document is written piece by piece (metadata first, then the rows one by one), so
its size is bounded by the disk, not by memory.
"""

from __future__ import annotations

import decimal
from pathlib import Path
from typing import Any

import orjson

from appliance.reports.formats import atomic_output
from appliance.reports.formats._stream import stream
from appliance.reports.report import Report

_OPTS = orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z


def _default(value: Any) -> Any:
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    raise TypeError(type(value).__name__)


def write(report: Report, out: Path, progress: bool) -> int:
    schema, batches, bar = stream(report, f"{report.spec.name} -> json", progress)
    head = orjson.dumps(report.meta(), default=_default, option=_OPTS)
    detail = {"title": report.detail.title, "columns": schema.names, "row_count": bar.total}
    detail_head = orjson.dumps(detail, option=_OPTS)
    with atomic_output(out) as tmp, open(tmp, "wb") as f:
        f.write(head[:-1] + b',"detail":' + detail_head[:-1] + b',"rows":[')
        first = True
        for batch in batches:
            for row in batch.to_pylist():
                f.write(b"\n" if first else b",\n")
                f.write(orjson.dumps(row, default=_default, option=_OPTS))
                first = False
        f.write(b"\n]}}\n")
    return bar.done
