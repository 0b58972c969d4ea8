"""CSV: the detail rows (one header line, RFC 4180 quoting), plus ``<file>.meta.json``.

A CSV file has no place for the period, the checkpoint or the summary, so they go into a
JSON file beside it that names the CSV file and its SHA-256.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import orjson
import pyarrow.csv as pacsv

from appliance.reports.formats import atomic_output
from appliance.reports.formats._stream import stream
from appliance.reports.report import Report


def meta_path(out: Path) -> Path:
    return out.with_name(out.name + ".meta.json")


def write(report: Report, out: Path, progress: bool) -> int:
    schema, batches, bar = stream(report, f"{report.spec.name} -> csv", progress)
    digest = hashlib.sha256()
    with atomic_output(out) as tmp:
        with pacsv.CSVWriter(str(tmp), schema) as writer:
            for batch in batches:
                writer.write_batch(batch)
        with open(tmp, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                digest.update(chunk)
        meta = report.meta()
        meta["detail"] = {
            "title": report.detail.title,
            "file": out.name,
            "sha256": digest.hexdigest(),
            "columns": schema.names,
            "row_count": bar.done,
        }
        with atomic_output(meta_path(out)) as mtmp:
            mtmp.write_bytes(
                orjson.dumps(
                    meta, option=orjson.OPT_INDENT_2 | orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z
                )
            )
    return bar.done
