"""What the provider adapters cost on top of a bare HTTP call, and how fast the fake is.

Each fake runs as its own process (``python -m appliance.testing.fakes KIND``). For every
adapter the script makes N sequential chat calls (and N streamed ones) and reports the
wall time and the client's CPU time per call; the baseline is the same request sent with
plain aiohttp to the fake OpenAI server, with no translation. It also reports the fake
OpenAI server's own CPU time per request under concurrent load (the capacity it offers
as the upstream of ``proxy_overhead.py``).

    .venv/bin/python benchmarks/provider_adapters.py [--calls 500]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import orjson

from appliance.config import (
    AnthropicProviderConfig,
    AzureOpenAIProviderConfig,
    BedrockProviderConfig,
    HFEndpointProviderConfig,
    OpenAIProviderConfig,
    VertexProviderConfig,
)
from appliance.providers.registry import create_provider
from appliance.testing.fakes.bedrock import TEST_ACCESS_KEY, TEST_SECRET_KEY

CONFIGS: dict[str, tuple[Callable[[str], Any], str]] = {
    "openai": (
        lambda url: OpenAIProviderConfig(kind="openai", base_url=url, api_key_env="BENCH_KEY"),
        "gpt",
    ),
    "azure_openai": (
        lambda url: AzureOpenAIProviderConfig(
            kind="azure_openai", base_url=url, api_key_env="BENCH_KEY"
        ),
        "deployment",
    ),
    "hf_endpoint": (
        lambda url: HFEndpointProviderConfig(
            kind="hf_endpoint", base_url=url, api_key_env="BENCH_KEY"
        ),
        "tgi",
    ),
    "anthropic": (
        lambda url: AnthropicProviderConfig(
            kind="anthropic", base_url=url, api_key_env="BENCH_KEY"
        ),
        "claude",
    ),
    "bedrock": (
        lambda url: BedrockProviderConfig(
            kind="bedrock",
            base_url=url,
            access_key_id_env="BENCH_AK",
            secret_access_key_env="BENCH_SK",
            session_token_env=None,
        ),
        "anthropic.claude-3-haiku-20240307-v1:0",
    ),
    "vertex": (
        lambda url: VertexProviderConfig(
            kind="vertex",
            project="test-project",
            base_url=url,
            credentials_file_env=None,
            access_token_env="BENCH_KEY",
        ),
        "gemini-2.0-flash",
    ),
}


def start_fake(kind: str) -> tuple[subprocess.Popen[str], str]:
    key = TEST_ACCESS_KEY if kind == "bedrock" else "test-key"
    proc = subprocess.Popen(
        [sys.executable, "-m", "appliance.testing.fakes", kind, "--no-record", "--api-key", key],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def per_call(fn: Callable[[], Awaitable[Any]], calls: int) -> tuple[float, float]:
    for _ in range(min(50, calls)):
        await fn()
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(calls):
        await fn()
    return 1e6 * (time.perf_counter() - wall) / calls, 1e6 * (time.process_time() - cpu) / calls


async def fake_capacity(url: str, pid: int, concurrency: int = 32, seconds: float = 3.0) -> float:
    body = orjson.dumps({"model": "m", "messages": [{"role": "user", "content": "hello world"}]})
    headers = {"Authorization": "Bearer test-key", "Content-Type": "application/json"}
    done = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
        end = time.perf_counter() + seconds
        before = cpu_seconds(pid)

        async def worker() -> None:
            nonlocal done
            while time.perf_counter() < end:
                async with http.post(url + "/chat/completions", data=body, headers=headers) as resp:
                    await resp.read()
                done += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return 1e6 * (cpu_seconds(pid) - before) / done


Row = tuple[str, float, float, float, float]


async def measure_adapter(kind: str, url: str, http: aiohttp.ClientSession, calls: int) -> Row:
    make_config, model = CONFIGS[kind]
    provider = create_provider(kind, make_config(url), http)
    body = {"model": model, "messages": [{"role": "user", "content": "hello world"}]}

    async def stream() -> None:
        async for _ in provider.stream_chat(body):
            pass

    wall, cpu = await per_call(lambda: provider.chat(body), calls)
    stream_wall, stream_cpu = await per_call(stream, calls)
    return kind, wall, cpu, stream_wall, stream_cpu


async def measure_bare(url: str, http: aiohttp.ClientSession, calls: int) -> Row:
    """The same chat request as the OpenAI adapter sends, with nothing around it."""
    body = orjson.dumps({"model": "gpt", "messages": [{"role": "user", "content": "hello world"}]})
    headers = {"Authorization": "Bearer test-key", "Content-Type": "application/json"}

    async def raw() -> Any:
        async with http.post(url + "/chat/completions", data=body, headers=headers) as resp:
            return orjson.loads(await resp.read())

    wall, cpu = await per_call(raw, calls)
    return "bare aiohttp", wall, cpu, float("nan"), float("nan")


async def main(calls: int) -> None:
    os.environ.update(BENCH_KEY="test-key", BENCH_AK=TEST_ACCESS_KEY, BENCH_SK=TEST_SECRET_KEY)
    rows: list[Row] = []
    capacity = float("nan")
    for kind in CONFIGS:
        proc, url = start_fake(kind)
        try:
            async with aiohttp.ClientSession() as http:
                if kind == "openai":
                    rows.append(await measure_bare(url, http, calls))
                    capacity = await fake_capacity(url, proc.pid)
                rows.append(await measure_adapter(kind, url, http, calls))
        finally:
            proc.terminate()
            proc.wait(10)
    print(f"{calls} sequential calls per row; client CPU = this process only")
    header = f"{'adapter':<14} {'chat wall us':>12} {'chat CPU us':>12}"
    print(f"{header} {'stream wall us':>15} {'stream CPU us':>14}")
    for kind, wall, cpu, stream_wall, stream_cpu in rows:
        print(f"{kind:<14} {wall:>12.0f} {cpu:>12.0f} {stream_wall:>15.0f} {stream_cpu:>14.0f}")
    base = rows[0][2]
    openai_cpu = next(r[2] for r in rows if r[0] == "openai")
    print(f"OpenAI adapter CPU / bare aiohttp CPU: {openai_cpu / base:.2f}")
    per_core = 1e6 / capacity
    print(f"fake OpenAI server: {capacity:.0f} us CPU per request -> {per_core:.0f} req/s per core")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=500)
    asyncio.run(main(parser.parse_args().calls))
