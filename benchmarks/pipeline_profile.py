"""Where one request's time goes with every compliance stage on, stage by stage, per shape.

Usage: .venv/bin/python benchmarks/pipeline_profile.py [--requests N] [--shapes S,M,L,XL,R]
                                                       [--stream]

Runs the appliance in-process on its default configuration (every stage on) in front of
the fake OpenAI upstream, sends N sequential chat requests of each shape (one client:
the latency a caller feels), and prints per shape the end-to-end P50 next to the same
body sent to the upstream directly (the baseline) and their difference (the added
P50), each stage's P50 and mean from timers wrapped around the pipeline's own methods,
and the CPU time per request of the server process and of its PII processes. The
client and the upstream share the server's process, so its CPU figure includes them.

Shapes S, M, L, XL, R and R0 are those of ``proxy_overhead.py --prompts``
(appliance/testing/prompt_shapes.py): about 40 words with a name and an e-mail, a 2 KB
e-mail thread, a 20 KB retrieved context, a 100 KB document, an 8 KB system prompt with
tools repeated under a changing user turn (R0: the user turns alone). Only R's repeated
part can be answered from the findings cache. The fake upstream answers "echo: <last user
message>" as redacted, so answers are as large as the prompts' last turn; the answer
screen reads them too.

``--stream`` streams every request (and the direct call): end to end is then the time
to the stream's end, and the time to its first bytes is printed beside it; the answer
screen runs on the stream, outside the stage timers.

The key belongs to an application with an Art. 9 basis and the fake provider is in the
EU (as in proxy_overhead.py), so the shipped policy serves documents that mention a
diagnosis or a religion. Requests it still denies and requests that fail are counted
and left out of the figures.
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
from appliance.testing.prompt_shapes import body
from appliance.testing.fakes import FakeOpenAI
from appliance.testing.harness import UPSTREAM_KEY_ENV, benchmark_key, merge, openai_upstream, to_toml

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


def _descendants(pid: int) -> list[int]:
    out: list[int] = []
    for task in os.listdir(f"/proc/{pid}/task"):
        for child in Path(f"/proc/{pid}/task/{task}/children").read_text().split():
            out += [int(child), *_descendants(int(child))]
    return out


def _tree_cpu(pid: int) -> float:
    total = 0.0
    for child in _descendants(pid):
        try:
            total += _cpu_s(child)
        except OSError:  # exited meanwhile
            pass
    return total


async def run(n: int, warmup: int, shapes: list[str], stream: bool = False) -> None:
    fake = FakeOpenAI(api_key="sk-up", record=False)
    await fake.start(port=0)
    os.environ[UPSTREAM_KEY_ENV] = "sk-up"
    print(f"cores: {os.cpu_count()}; load average: {os.getloadavg()[0]:.1f}; {n} requests per "
          f"shape after {warmup} to warm up, 1 client" + (", streamed" if stream else ""))
    with tempfile.TemporaryDirectory() as tmp:
        cfg = Path(tmp) / "appliance.toml"
        # An EU provider and an application with an Art. 9 basis, as in proxy_overhead.py:
        # generated documents that mention a diagnosis are then served, not refused.
        cfg.write_text(to_toml(merge(openai_upstream("up", fake.base_url, max_retries=0,
                                                     region="eu"))))
        data = Path(tmp) / "data"
        config = load_config(cfg, data_dir=data)
        data.mkdir(parents=True, exist_ok=True)
        key = benchmark_key(data, "bench")
        server = TestServer(create_app(config), port=0)
        await server.start_server()
        url = str(server.make_url("/v1/chat/completions"))
        headers = {"Authorization": f"Bearer {key}"}
        pid = os.getpid()
        async with ClientSession() as s:
            for shape in shapes:
                await _shape(s, url, headers, fake.base_url, shape, n, warmup, pid, stream)
        await server.close()
    await fake.stop()


async def _timed_post(s: ClientSession, url: str, b: dict[str, Any], headers: dict[str, str]
                      ) -> tuple[int, float, float, bytes]:
    """Status, seconds to the first bytes and to the end of the body, and the body."""
    began = time.perf_counter()
    first = None
    parts = []
    async with s.post(url, json=b, headers=headers) as r:
        async for data in r.content.iter_any():
            first = first if first is not None else time.perf_counter() - began
            parts.append(data)
        end = time.perf_counter() - began
        return r.status, end if first is None else first, end, b"".join(parts)


async def _shape(s: ClientSession, url: str, headers: dict[str, str], upstream: str, shape: str,
                 n: int, warmup: int, pid: int, stream: bool) -> None:
    latencies: list[float] = []
    firsts: list[float] = []
    denied = 0
    failed: list[str] = []
    sizes = []
    cpu0 = (0.0, 0.0)
    for i in range(n + warmup):
        if i == warmup:
            TIMES.clear()
            cpu0 = (_cpu_s(pid), _tree_cpu(pid))
        b = body(shape, i, stream=stream)
        sizes.append(sum(len(m["content"]) for m in b["messages"]))
        status, first, end, data = await _timed_post(s, url, b, headers)
        if status == 403:
            denied += 1
            continue
        if status != 200:
            failed.append(f"{status} {data[:200]!r}")
            continue
        if i >= warmup:
            latencies.append(end)
            firsts.append(first)
    cpu1 = (_cpu_s(pid), _tree_cpu(pid))
    direct: list[float] = []
    direct_firsts: list[float] = []
    for i in range(warmup, n + warmup):
        _, first, end, _ = await _timed_post(s, upstream + "/chat/completions",
                                             body(shape, i, stream=stream),
                                             {"Authorization": "Bearer sk-up"})
        direct.append(end)
        direct_firsts.append(first)
    done = len(latencies)
    if failed:
        print(f"\n== {shape}: {len(failed)} requests failed (first: {failed[0]})")
    if not done:
        print(f"\n== {shape}: no request succeeded ({denied} denied by policy)")
        return
    e2e, base = statistics.median(latencies), statistics.median(direct)
    print(f"\n== {shape}: prompt {statistics.median(sizes) / 1000:.1f} KB; {done} requests"
          + (f" ({denied} denied by policy, left out)" if denied else ""))
    print(f"end to end P50 {e2e * 1e3:.2f} ms; upstream called directly (baseline) "
          f"{base * 1e3:.2f} ms; added P50 {(e2e - base) * 1e3:.2f} ms")
    if stream:
        f, fb = statistics.median(firsts), statistics.median(direct_firsts)
        print(f"first bytes P50 {f * 1e3:.2f} ms; directly {fb * 1e3:.2f} ms; added "
              f"{(f - fb) * 1e3:.2f} ms")
    # Over every request sent after the warm-up: a denied one was analysed too.
    print(f"CPU per request: server process {(cpu1[0] - cpu0[0]) / n * 1e3:.2f} ms (client "
          f"and upstream included), PII processes {(cpu1[1] - cpu0[1]) / n * 1e3:.2f} ms")
    for name, values in TIMES.items():
        print(f"  {name:32s} P50 {statistics.median(values) * 1e3:8.2f} ms   "
              f"mean {statistics.mean(values) * 1e3:8.2f} ms")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--shapes", default="S,M,L,XL,R,R0")
    ap.add_argument("--stream", action="store_true", help="stream every request")
    args = ap.parse_args()
    one_blas_thread()  # as every server process does (appliance.server.run)
    _instrument()
    asyncio.run(run(args.requests, args.warmup, args.shapes.split(","), args.stream))


if __name__ == "__main__":
    main()
