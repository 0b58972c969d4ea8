"""The appliance as real processes: limits survive a restart; replicas share Redis."""

from __future__ import annotations

import asyncio
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from appliance.keys.store import control_plane_path
from appliance.testing.fakes import FakeOpenAI
from appliance.testing.harness import (
    UPSTREAM_KEY_ENV,
    ServerProcess,
    create_key,
    merge,
    openai_upstream,
    serve_subprocess,
    to_toml,
)
from tests.metering.conftest import LIMITS_ONLY

UPSTREAM_KEY = "sk-upstream-processes"
PRICES = """
per_tokens: 1000
providers:
  openai:
    "*": {input: 1.0, output: 1.0}
"""
BODY = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hello there world"}]}


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=UPSTREAM_KEY).running() as f:
        yield f


def write_config(tmp_path: Path, fake: FakeOpenAI, **limits: Any) -> Path:
    (tmp_path / "prices.yaml").write_text(PRICES)
    cfg = merge(
        openai_upstream("openai", fake.base_url),
        LIMITS_ONLY,
        # No built-in local models: these tests need none, and building them takes time.
        {"providers": {"local": {"build_missing": False, "preload": False}}},
        {"limits": {"prices_file": str(tmp_path / "prices.yaml"), **limits}},
    )
    path = tmp_path / "appliance.toml"
    path.write_text(to_toml(cfg))
    return path


ENV = {UPSTREAM_KEY_ENV: UPSTREAM_KEY}


async def post(http: aiohttp.ClientSession, server: ServerProcess, key: str) -> tuple[int, str]:
    async with http.post(
        f"{server.url}/v1/chat/completions", json=BODY, headers={"Authorization": f"Bearer {key}"}
    ) as r:
        return r.status, await r.text()


async def statuses(server: ServerProcess, key: str, n: int) -> list[int]:
    async with aiohttp.ClientSession() as http:
        return [(await post(http, server, key))[0] for _ in range(n)]


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["stopped", "killed"])
async def test_limits_and_budgets_hold_across_a_restart(
    tmp_path: Path, fake: FakeOpenAI, stop: signal.Signals
) -> None:
    data = tmp_path / "data"
    cfg = write_config(tmp_path, fake)
    data.mkdir()
    rpm_key = create_key(data, limits={"rpm": 5})
    budget_key = create_key(data, user="bob", limits={"budget_usd_day": 0.03})
    with serve_subprocess(cfg, data, env=ENV) as server:
        assert await statuses(server, rpm_key, 3) == [200, 200, 200]
        spent = await statuses(server, budget_key, 20)
        assert 200 in spent and spent[-1] == 429  # the budget ran out
        server.kill(stop)
    with serve_subprocess(cfg, data, env=ENV) as server:
        assert await statuses(server, rpm_key, 3) == [200, 200, 429]
        async with aiohttp.ClientSession() as http:
            status, text = await post(http, server, budget_key)
        assert status == 429 and "daily budget of $0.03" in text


async def test_two_processes_share_limits_through_redis(
    tmp_path: Path, fake: FakeOpenAI, redis_url: str, redis_prefix: str
) -> None:
    cfg = write_config(tmp_path, fake, backend="redis", redis_url=redis_url, redis_prefix=redis_prefix)
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    key = create_key(a, limits={"rpm": 100})
    b.mkdir()
    # Separate data directories (no shared SQLite file): only Redis is shared.
    shutil.copy(control_plane_path(a), control_plane_path(b))
    with serve_subprocess(cfg, a, env=ENV) as one, serve_subprocess(cfg, b, env=ENV) as two:
        connector = aiohttp.TCPConnector(limit=100)
        async with aiohttp.ClientSession(connector=connector) as http:
            t0 = time.monotonic()
            results = await asyncio.gather(
                *(post(http, (one, two)[i % 2], key) for i in range(500))
            )
            elapsed = time.monotonic() - t0
    print(f"500 requests in {elapsed:.1f}s")
    codes = [s for s, _ in results]
    assert codes.count(200) == 100, f"{codes.count(200)} passed; the burst took {elapsed:.1f}s"
    assert codes.count(429) == 400
    refused = next(t for s, t in results if s == 429)
    assert "100 requests per minute" in refused
    assert len(fake.requests) == 100
    assert not (a / "limits.db").exists() and not (b / "limits.db").exists()


async def test_worker_processes_share_the_local_store(tmp_path: Path, fake: FakeOpenAI) -> None:
    """``--workers 2``: two processes behind one port, one SQLite file, one exact limit."""
    cfg = write_config(tmp_path, fake)
    data = tmp_path / "data"
    data.mkdir()
    key = create_key(data, limits={"rpm": 100})
    with serve_subprocess(cfg, data, env=ENV, extra_args=("--workers", "2")) as server:
        connector = aiohttp.TCPConnector(limit=100, force_close=True)  # spread over workers
        async with aiohttp.ClientSession(connector=connector) as http:
            results = await asyncio.gather(*(post(http, server, key) for _ in range(500)))
    codes = [s for s, _ in results]
    assert codes.count(200) == 100
    assert codes.count(429) == 400
