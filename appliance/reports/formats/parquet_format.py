"""Parquet: the detail rows, with the report's metadata in the file's key-value metadata.

The key ``appliance.report`` holds the same JSON document as the JSON export without its
rows (period, filters, data basis, checkpoint digest, summary, sections), so the file is
self-describing.
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pyarrow.parquet as pq

from appliance.reports.formats import atomic_output
from appliance.reports.formats._stream import stream
from appliance.reports.report import Report

METADATA_KEY = b"appliance.report"


def write(report: Report, out: Path, progress: bool) -> int:
    schema, batches, bar = stream(report, f"{report.spec.name} -> parquet", progress)
    meta = report.meta()
    meta["detail"] = {"title": report.detail.title, "columns": schema.names, "row_count": bar.total}
    schema = schema.with_metadata(
        {METADATA_KEY: orjson.dumps(meta, option=orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z)}
    )
    with (
        atomic_output(out) as tmp,
        pq.ParquetWriter(str(tmp), schema, compression="zstd") as writer,
    ):
        for batch in batches:
            writer.write_batch(batch)
    return bar.done
