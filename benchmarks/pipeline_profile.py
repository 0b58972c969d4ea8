"""Where one request's time goes with every compliance stage on, stage by stage.

Usage: .venv/bin/python benchmarks/pipeline_profile.py [--requests N]

Runs the appliance in-process on its default configuration (every stage on) in front of
the fake OpenAI upstream, sends N sequential chat requests (one client: the latency a
caller feels), and prints each stage's P50 and mean from timers wrapped around the
pipeline's own methods, the end-to-end P50 next to calling the upstream directly (the
baseline), and the CPU time per request of the server process and of its PII workers.
The client and the upstream share the server's process, so its CPU figure includes them.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiohttp import ClientSession
from aiohttp.test_utils import TestServer

from appliance.blas import one_blas_thread
from appliance.config import load_config
from appliance.pipeline import pipeline as P
from appliance.server.app import create_app
from appliance.testing.fakes import FakeOpenAI
from appliance.testing.harness import UPSTREAM_KEY_ENV, create_key, merge, openai_upstream, to_toml

BODY = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Summarise the quarterly report in one line."}]}
WARMUP = 20
TIMES: dict[str, list[float]] = defaultdict(list)


def _timed(label: Callable[..., str], method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    async def wrapper(self: Any, *args: Any) -> Any:
        began = time.perf_counter()
        try:
            return await method(self, *args)
        finally:
            TIMES[label(*args)].append(time.perf_counter() - began)
    return wrapper


def _instrument() -> None:
    P.Pipeline._run_stage = _timed(lambda stage, ctx: stage.name, P.Pipeline._run_stage)  # type: ignore[method-assign]
    P.Pipeline._screen = _timed(lambda stage, ctx, r: f"answer: {stage.name}", P.Pipeline._screen)  # type: ignore[method-assign]
    P.Pipeline.prepare = _timed(lambda ctx, op: "request stages, all", P.Pipeline.prepare)  # type: ignore[method-assign]
    P.Pipeline.finish = _timed(lambda ctx: "finish (settle + audit record)", P.Pipeline.finish)  # type: ignore[method-assign]


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in os.listdir(f"/proc/{pid}/task"):
        out += [int(x) for x in Path(f"/proc/{pid}/task/{task}/children").read_text().split()]
    return out


async def run(n: int) -> None:
    fake = FakeOpenAI(api_key="sk-up", record=False)
    await fake.start(port=0)
    os.environ[UPSTREAM_KEY_ENV] = "sk-up"
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "appliance.toml"
        cfg.write_text(to_toml(merge(openai_upstream("up", fake.base_url, max_retries=0))))
        data = Path(tmp) / "data"
        key = create_key(data, tenant="bench", user="load")
        server = TestServer(create_app(load_config(cfg, data_dir=data)), port=0)
        await server.start_server()
        url = str(server.make_url("/v1/chat/completions"))
        headers = {"Authorization": f"Bearer {key}"}
        pid = os.getpid()
        async with ClientSession() as s:
            latencies: list[float] = []
            for i in range(n + WARMUP):
                if i == WARMUP:
                    TIMES.clear()
                    cpu0 = (_cpu_s(pid), sum(_cpu_s(c) for c in _children(pid)))
                began = time.perf_counter()
                async with s.post(url, json=BODY, headers=headers) as r:
                    await r.read()
                    if r.status != 200:
                        raise SystemExit(f"request failed: {r.status} {await r.text()}")
                if i >= WARMUP:
                    latencies.append(time.perf_counter() - began)
            cpu1 = (_cpu_s(pid), sum(_cpu_s(c) for c in _children(pid)))
            direct: list[float] = []
            for _ in range(n):
                began = time.perf_counter()
                async with s.post(fake.base_url + "/chat/completions", json=BODY,
                                  headers={"Authorization": "Bearer sk-up"}) as r:
                    await r.read()
                direct.append(time.perf_counter() - began)
        await server.close()
    await fake.stop()
    print(f"cores: {os.cpu_count()}; load average: {os.getloadavg()[0]:.1f}; {n} requests, 1 client")
    print(f"end to end P50 {statistics.median(latencies) * 1e3:.2f} ms; "
          f"upstream called directly (baseline) {statistics.median(direct) * 1e3:.2f} ms")
    print(f"CPU per request: server process {(cpu1[0] - cpu0[0]) / n * 1e3:.2f} ms (client and "
          f"upstream included), PII workers {(cpu1[1] - cpu0[1]) / n * 1e3:.2f} ms")
    for name, values in TIMES.items():
        print(f"  {name:32s} P50 {statistics.median(values) * 1e3:7.2f} ms   "
              f"mean {statistics.mean(values) * 1e3:7.2f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=300)
    one_blas_thread()  # as every server process does (appliance.server.run)
    _instrument()
    asyncio.run(run(ap.parse_args().requests))


if __name__ == "__main__":
    main()
