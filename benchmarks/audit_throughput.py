"""Sustained audit throughput: records/s through the real RecordStage (DuckDB AES-GCM
database encryption, per-tenant payload encryption, SHA-256 hash chain + Merkle frontier,
group commit with fsync per transaction, signed checkpoints) against plain unencrypted
DuckDB inserts.

    .venv/bin/python benchmarks/audit_throughput.py [--records 20000] [--concurrency 256]

Baselines, both into an unencrypted DuckDB file without hashing:
  * ``plain row inserts``: one INSERT per record, autocommit (what a naive logger does);
  * ``plain batched``: Arrow batches of 1,000 rows (the storage engine's upper bound).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

import duckdb
import pyarrow as pa

from appliance.audit.rows import request_row
from appliance.audit.schema import ARROW_SCHEMA, COLUMN_NAMES, render_schema_sql
from appliance.config import load_config
from appliance.core.context import Context, Principal, Usage
from appliance.core.findings import PiiFindings, PolicyFindings, RiskFindings, Verdict
from appliance.pipeline.record import RecordStage


def make_ctx(i: int, payload: bool) -> Context:
    ctx = Context(request_id=f"req_{i:08x}", route="chat.completions", body={}, api_key=None)
    ctx.principal = Principal(key_id="k1", tenant=f"tenant{i % 4}", user=f"user{i % 50}", roles=("dev",),
                              application="helpdesk")
    ctx.requested_model = ctx.model = "gpt-4o"
    ctx.provider, ctx.provider_region = "openai", "eu"
    ctx.verdicts += [
        Verdict("pii_detect", findings=PiiFindings(
            True, {"PERSON": 1, "EMAIL_ADDRESS": 1}, recognizers={"PERSON": ("SpacyRecognizer",)},
            languages=("en",))),
        Verdict("classify", findings=RiskFindings("minimal", "minimal")),
        Verdict("decide", findings=PolicyFindings(allow=True, revision="rev-1")),
    ]
    ctx.usage = Usage(120, 80)
    ctx.cost_usd = 0.0012
    ctx.finished_at = ctx.started_at + 0.2
    if payload:
        ctx.obligations["store_payloads"] = True
        ctx.state["payload"] = {"request": {"messages": [{"role": "user", "content": "x" * 1500}]},
                                "response": "y" * 500}
    return ctx


async def full_path(data: Path, n: int, concurrency: int, payload_every: int) -> tuple[float, float]:
    config = load_config(None, data_dir=data)
    stage = RecordStage(config)
    await stage.start()
    # warm-up: creates the segment and the tenants' data keys
    await asyncio.gather(*(stage.record(make_ctx(i, True)) for i in range(8)))
    # The server builds the Context anyway: build them before the clock starts.
    contexts = [make_ctx(i, payload_every > 0 and i % payload_every == 0) for i in range(n)]
    next_i = 0

    async def producer() -> None:
        nonlocal next_i
        while next_i < n:
            i = next_i
            next_i += 1
            await stage.record(contexts[i])

    t0, c0 = time.perf_counter(), time.process_time()
    await asyncio.gather(*(producer() for _ in range(concurrency)))
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    await stage.aclose()
    return n / elapsed, n / cpu


async def sequential_latency(data: Path, n: int = 200) -> float:
    """Median time one request waits for its record to be durable (no concurrency)."""
    stage = RecordStage(load_config(None, data_dir=data))
    await stage.start()
    waits = []
    for i in range(n):
        ctx = make_ctx(i, False)
        t0 = time.perf_counter()
        await stage.record(ctx)
        waits.append(time.perf_counter() - t0)
    await stage.aclose()
    return sorted(waits)[n // 2]


def plain_rows(path: Path, n: int) -> float:
    conn = duckdb.connect(str(path))
    conn.execute(render_schema_sql())
    rows = [request_row(make_ctx(i, False)) for i in range(n)]
    cols = ", ".join(COLUMN_NAMES)
    marks = ", ".join("?" for _ in COLUMN_NAMES)
    t0 = time.perf_counter()
    for i, row in enumerate(rows):
        row["seq"] = i
        conn.execute(f"INSERT INTO records ({cols}) VALUES ({marks})",
                     [row.get(c) if c not in ("ts_start", "ts_end") else None for c in COLUMN_NAMES])
    elapsed = time.perf_counter() - t0
    conn.close()
    return n / elapsed


def plain_batched(path: Path, n: int, batch: int = 1000) -> float:
    conn = duckdb.connect(str(path))
    conn.execute(render_schema_sql())
    rows = [request_row(make_ctx(i, False)) for i in range(n)]
    t0 = time.perf_counter()
    for start in range(0, n, batch):
        chunk = rows[start:start + batch]
        tbl = pa.Table.from_pydict({c: [r.get(c) for r in chunk] for c in COLUMN_NAMES}, schema=ARROW_SCHEMA)  # noqa: F841 - DuckDB scans it
        conn.execute("INSERT INTO records SELECT * FROM tbl")
    elapsed = time.perf_counter() - t0
    conn.close()
    return n / elapsed


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--records", type=int, default=20_000)
    ap.add_argument("--concurrency", type=int, default=256)
    ap.add_argument("--payload-every", type=int, default=10, help="every Nth record stores an encrypted payload (0: none)")
    ap.add_argument("--row-baseline-records", type=int, default=1_000)
    ap.add_argument("--trials", type=int, default=3, help="full-path runs; the median is reported")
    args = ap.parse_args()
    print(f"cores: {os.cpu_count()}  load average: {os.getloadavg()[0]:.1f} "
          "(other processes on the machine slow every figure below alike)")
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        runs = sorted(
            asyncio.run(full_path(t / f"data{k}", args.records, args.concurrency, args.payload_every))
            for k in range(args.trials)
        )
        full, per_cpu = runs[len(runs) // 2]
        print("full-path trials (records/s, records/cpu-s):", ", ".join(f"({a:.0f}, {b:.0f})" for a, b in runs))
        latency = asyncio.run(sequential_latency(t / "latency"))
        rows = plain_rows(t / "plain_rows.duckdb", args.row_baseline_records)
        batched = plain_batched(t / "plain_batched.duckdb", args.records)
    print(f"audit RecordStage (encrypted, hashed, durable group commit): {full:10.0f} records/s (median)")
    print(f"  ... per CPU-second of this process (load-independent):  {per_cpu:10.0f} records/cpu-s")
    print(f"one record at a time: median wait until durable {latency * 1000:.2f} ms")
    print(f"baseline plain row inserts (unencrypted, autocommit):        {rows:10.0f} records/s")
    print(f"baseline plain batched Arrow inserts (unencrypted, no hash): {batched:10.0f} records/s")
    print(f"ratio audit / plain row inserts:     {full / rows:6.1f}x")
    print(f"ratio audit / plain batched inserts: {full / batched:6.2f}x")
    print(f"target >= 5,000 records/s: {'MET' if full >= 5000 else 'NOT MET'}")


if __name__ == "__main__":
    main()
