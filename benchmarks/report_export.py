"""Benchmark: export 1,000,000 audit records to Parquet and to PDF in bounded memory.

Writes a synthetic log of N records through the real audit writer (encrypted segments,
hash chain, signed checkpoints), then runs each export in a fresh process and prints its
wall time and peak memory (RSS high-water mark, VmHWM). The bar: every export stays
under 1 GB. The art12 kind is the heaviest: its detail is every record, and it runs the
full chain verification.

    .venv/bin/python benchmarks/report_export.py [--records 1000000] [--data-dir DIR]

A data dir that already holds a log of the requested size is reused.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BAR_BYTES = 1 << 30

_CHILD = r"""
import datetime as dt, json, resource, sys, time
from pathlib import Path
from appliance.config import load_config
from appliance.reports.export import export
from appliance.reports.request import Period, ReportRequest
data_dir, kind, fmt, out, first, last = sys.argv[1:7]
config = load_config(None, data_dir=Path(data_dir))
req = ReportRequest(kind, Period(dt.date.fromisoformat(first), dt.date.fromisoformat(last)))
t = time.perf_counter()
res = export(config, req, fmt, Path(out), progress=True)
wall = time.perf_counter() - t
hwm = 0
for line in open("/proc/self/status"):
    if line.startswith("VmHWM:"):
        hwm = int(line.split()[1]) * 1024
print(json.dumps({"kind": kind, "format": fmt, "seconds": wall, "peak_rss": hwm, "records": res.records,
                  "rows": res.rows, "bytes": Path(out).stat().st_size, "verified": res.verified}))
"""


def _log_size(data_dir: Path) -> int:
    marker = data_dir / "benchmark-records.txt"
    return int(marker.read_text()) if marker.exists() else 0


def generate(data_dir: Path, records: int, first: dt.datetime, last: dt.datetime) -> float:
    from appliance.config import load_config
    from appliance.reports.sample import register_apps, write_sample_log

    config = load_config(None, data_dir=data_dir)
    register_apps(config)
    t = time.perf_counter()

    def tick(i: int) -> None:
        if i % 100_000 == 0:
            print(f"  generated {i:,} records ({time.perf_counter() - t:.0f} s)", file=sys.stderr)

    write_sample_log(config, records, first=first, last=last, on_progress=tick)
    (data_dir / "benchmark-records.txt").write_text(str(records))
    return time.perf_counter() - t


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--records", type=int, default=1_000_000)
    ap.add_argument("--data-dir", type=Path, default=None)
    ap.add_argument("--runs", default="art12:parquet,art12:pdf,usage:parquet,usage:pdf")
    args = ap.parse_args()
    data_dir = args.data_dir or Path(tempfile.mkdtemp(prefix="report-bench-"))
    first, last = dt.datetime(2026, 1, 1), dt.datetime(2026, 3, 31, 23, 59)
    if _log_size(data_dir) != args.records:
        print(f"writing {args.records:,} audit records to {data_dir} ...", file=sys.stderr)
        secs = generate(data_dir, args.records, first, last)
        print(
            f"log written in {secs:.1f} s ({args.records / secs:,.0f} records/s)", file=sys.stderr
        )
    out_dir = data_dir / "exports"
    out_dir.mkdir(exist_ok=True)
    results = []
    for run in args.runs.split(","):
        kind, fmt = run.split(":")
        out = out_dir / f"{kind}.{fmt}"
        proc = subprocess.run(
            [
                sys.executable,
                "-c",
                _CHILD,
                str(data_dir),
                kind,
                fmt,
                str(out),
                "2026-01-01",
                "2026-03-31",
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            print(proc.stderr, file=sys.stderr)
            return 1
        res = json.loads(proc.stdout.strip().splitlines()[-1])
        results.append(res)
    print(
        f"\n{'export':<16}{'records':>12}{'rows':>12}{'seconds':>10}{'peak RSS':>12}{'file':>12}  bar < 1 GB"
    )
    ok = True
    for r in results:
        under = r["peak_rss"] < BAR_BYTES
        ok &= under
        print(
            f"{r['kind'] + ' -> ' + r['format']:<16}{r['records']:>12,}{r['rows']:>12,}{r['seconds']:>10.1f}"
            f"{r['peak_rss'] / 2**20:>9.0f} MB{r['bytes'] / 2**20:>9.1f} MB  "
            f"{'ok' if under else 'OVER'} ({r['peak_rss'] / BAR_BYTES:.2f} of the bar)"
        )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
