"""Request-path cost of PII detection: one pool round trip per request, and how it scales.

Usage: .venv/bin/python benchmarks/pii_latency.py [--requests N]

Measures, for a typical chat request (system + two user messages, ~60 words), the
latency of ``AnalyzerPool.analyze`` sequentially (what one request adds) and the
throughput with concurrent requests for 1 worker and one worker per core, next to the
in-process analyzer called directly (the floor: no inter-process hop).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from appliance.config.pii import PiiConfig
from appliance.pii.engine import analyze_texts, build_analyzer
from appliance.pii.pool import AnalyzerPool

TEXTS = [
    "You are a helpful assistant for the billing department.",
    "Hi, my name is John Smith and I live at 29 Hornsey Road, London. Please call me on "
    "+44 20 7946 0958 or mail john.smith@example.com about invoice 4711.",
    "Bitte überweisen Sie den Betrag auf DE89 3704 0044 0532 0130 00, Herr Dr. Müller.",
]
LANGS = ["en", "en", "de"]


async def pool_run(workers: int, n: int) -> tuple[float, float]:
    pool = AnalyzerPool(PiiConfig(workers=workers))
    await pool.start()
    try:
        for _ in range(5):
            await pool.analyze(TEXTS, LANGS)
        lat = []
        for _ in range(n):
            t = time.perf_counter()
            await pool.analyze(TEXTS, LANGS)
            lat.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter()
        await asyncio.gather(*(pool.analyze(TEXTS, LANGS) for _ in range(n)))
        rps = n / (time.perf_counter() - t)
        return statistics.median(lat), rps
    finally:
        await pool.aclose()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=200)
    n = ap.parse_args().requests
    analyzer = build_analyzer(PiiConfig())
    for _ in range(5):
        analyze_texts(analyzer, TEXTS, LANGS)
    lat = []
    for _ in range(n):
        t = time.perf_counter()
        analyze_texts(analyzer, TEXTS, LANGS)
        lat.append((time.perf_counter() - t) * 1000)
    base = statistics.median(lat)
    print(f"cores: {os.cpu_count()}; load average: {os.getloadavg()[0]:.1f}")
    print(f"in-process analyzer: {base:.2f} ms/request median (baseline, blocks the loop)")
    for workers in sorted({1, os.cpu_count() or 1}):
        med, rps = asyncio.run(pool_run(workers, n))
        print(f"pool, {workers} worker(s): {med:.2f} ms/request median sequential "
              f"({med / base:.2f}x in-process), {rps:.0f} requests/s concurrent")


if __name__ == "__main__":
    main()
