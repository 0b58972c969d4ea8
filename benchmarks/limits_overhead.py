"""What the limits stage (rate limits, budgets, metering, metrics) adds to a request.

One run, one process: a fake OpenAI upstream (own thread and loop) and the appliance app
on loopback, called with aiohttp. Three configurations: bare pass-through (baseline),
limits on the ``local`` backend (SQLite), limits on the ``redis`` backend (a real
redis-server on a unix socket, skipped when redis-server is missing). The key has rpm,
tpm and budget limits so every check runs. Prints P50/P99 latency of sequential requests
and requests/s at 32 concurrent clients, and the ratios to the baseline.

    python benchmarks/limits_overhead.py [--requests 400] [--concurrent-requests 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import aiohttp
from aiohttp.test_utils import TestServer

from appliance.config import load_config
from appliance.server.app import create_app
from appliance.testing.fakes import FakeOpenAI
from appliance.testing.harness import (
    PASS_THROUGH,
    UPSTREAM_KEY_ENV,
    create_key,
    merge,
    openai_upstream,
)

BODY = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Summarise the quarterly report."}]}
LIMITS = {"rpm": 10**9, "tpm": 10**12, "budget_usd_day": 10**6, "budget_usd_month": 10**7}


async def run_config(name: str, overrides: dict[str, Any], n_seq: int, n_conc: int) -> dict[str, float]:
    data = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
    config = load_config(None, data_dir=data, overrides=overrides)
    key = create_key(data, limits=LIMITS)
    server = TestServer(create_app(config))
    await server.start_server()
    url = f"http://127.0.0.1:{server.port}/v1/chat/completions"
    headers = {"Authorization": f"Bearer {key}"}
    try:
        async with aiohttp.ClientSession() as http:

            async def one() -> float:
                t0 = time.perf_counter()
                async with http.post(url, json=BODY, headers=headers) as r:
                    await r.read()
                    assert r.status == 200, await r.text()
                return time.perf_counter() - t0

            for _ in range(50):
                await one()
            lat = sorted([await one() for _ in range(n_seq)])
            sem = asyncio.Semaphore(32)

            async def bounded() -> float:
                async with sem:
                    return await one()

            t0 = time.perf_counter()
            await asyncio.gather(*(bounded() for _ in range(n_conc)))
            rps = n_conc / (time.perf_counter() - t0)
    finally:
        await server.close()
        shutil.rmtree(data, ignore_errors=True)
    return {"p50_ms": statistics.median(lat) * 1e3, "p99_ms": lat[int(len(lat) * 0.99) - 1] * 1e3, "rps": rps}


def start_redis() -> tuple[subprocess.Popen[bytes], str] | None:
    exe = shutil.which("redis-server")
    if exe is None:
        return None
    d = Path(tempfile.mkdtemp(prefix="bench-redis-"))
    sock = d / "r.sock"
    proc = subprocess.Popen([exe, "--port", "0", "--unixsocket", str(sock), "--save", "", "--appendonly", "no"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    for _ in range(200):
        if sock.exists():
            break
        time.sleep(0.05)
    return proc, f"unix://{sock}"


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--concurrent-requests", type=int, default=2000)
    args = ap.parse_args()
    os.environ[UPSTREAM_KEY_ENV] = "sk-bench"
    redis = start_redis()
    results: dict[str, dict[str, float]] = {}
    with FakeOpenAI(api_key="sk-bench", record=False).running() as fake:
        base = merge(openai_upstream("openai", fake.base_url), PASS_THROUGH,
                     {"providers": {"local": {"build_missing": False, "preload": False}}})
        configs: dict[str, dict[str, Any]] = {
            "pass-through": base,
            "limits-local": merge(base, {"pipeline": {"limits": True}}),
        }
        if redis is not None:
            configs["limits-redis"] = merge(
                base, {"pipeline": {"limits": True}}, {"limits": {"backend": "redis", "redis_url": redis[1]}}
            )
        try:
            for name, cfg in configs.items():
                results[name] = await run_config(name, cfg, args.requests, args.concurrent_requests)
        finally:
            if redis is not None:
                redis[0].terminate()
                redis[0].wait(10)
    b = results["pass-through"]
    print(f"{'config':<14}{'p50 ms':>9}{'p99 ms':>9}{'req/s@32':>10}{'p50 +ms':>9}{'rps ratio':>10}")
    for name, r in results.items():
        print(f"{name:<14}{r['p50_ms']:>9.2f}{r['p99_ms']:>9.2f}{r['rps']:>10.0f}"
              f"{r['p50_ms'] - b['p50_ms']:>9.2f}{r['rps'] / b['rps']:>10.2f}")


if __name__ == "__main__":
    asyncio.run(main())
