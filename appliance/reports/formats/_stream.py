"""Streaming the detail rows of a report with progress reporting."""

from __future__ import annotations

from collections.abc import Iterator

import pyarrow as pa

from appliance.reports.progress import Progress
from appliance.reports.report import Report

BATCH_ROWS = 65_536


def stream(
    report: Report, label: str, progress: bool
) -> tuple[pa.Schema, Iterator[pa.RecordBatch], Progress]:
    """The detail schema, an iterator over its batches, and the progress bar it advances."""
    total = report.detail.count()
    bar = Progress(total, label, enabled=progress)
    reader = report.detail.batches(BATCH_ROWS)

    def batches() -> Iterator[pa.RecordBatch]:
        for batch in reader:
            yield batch
            bar.advance(batch.num_rows)
        bar.finish()

    return reader.schema, batches(), bar
