"""``appliance serve --workers 2``: any worker's /metrics shows every worker's counts."""

from __future__ import annotations

import asyncio
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from appliance.metering.metrics import (
    METRICS_SUBDIR,
    Metrics,
    disable_multiprocess,
    enable_multiprocess,
    multiprocess_dir,
)
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

UPSTREAM_KEY = "sk-upstream-metrics-workers"
BODY = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hello there"}]}
ENV = {UPSTREAM_KEY_ENV: UPSTREAM_KEY}


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=UPSTREAM_KEY, record=False).running() as f:
        yield f


def write_config(tmp_path: Path, fake: FakeOpenAI) -> Path:
    cfg = merge(
        openai_upstream("openai", fake.base_url),
        LIMITS_ONLY,
        {"providers": {"local": {"build_missing": False, "preload": False}}},
    )
    path = tmp_path / "appliance.toml"
    path.write_text(to_toml(cfg))
    return path


def wait_for_workers(server: ServerProcess, n: int, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while server.log().count("appliance listening on") < n:
        assert server.process.poll() is None, server.log()
        assert time.monotonic() < deadline, f"{n} workers did not start:\n{server.log()}"
        time.sleep(0.05)


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    return [
        (s.labels, s.value)
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name
    ]


def requests_total(text: str) -> float:
    return sum(v for _, v in samples(text, "appliance_requests_total"))


def per_worker_requests(run_dir: Path, scratch: Path) -> dict[str, float]:
    """Requests counted by each worker, read from that worker's own counter file alone."""
    counts = {}
    for f in sorted(run_dir.glob("counter_*.db")):
        alone = scratch / f.stem
        alone.mkdir(parents=True, exist_ok=True)
        shutil.copy(f, alone / f.name)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, str(alone))
        counts[f.stem.removeprefix("counter_")] = sum(
            s.value
            for family in registry.collect()
            if family.name == "appliance_requests"
            for s in family.samples
            if s.name == "appliance_requests_total"
        )
    return counts


async def published(run_dir: Path, scratch: Path, sent: int) -> dict[str, float]:
    """Each worker's counts once all ``sent`` are in the files: a worker publishes what it
    counted every second (and at each scrape it answers itself), so wait up to 5 s."""
    deadline = time.monotonic() + 5.0
    while True:
        per_worker = per_worker_requests(run_dir, scratch / str(time.monotonic_ns()))
        if sum(per_worker.values()) >= sent or time.monotonic() > deadline:
            return per_worker
        await asyncio.sleep(0.1)


async def send(http: aiohttp.ClientSession, url: str, key: str, n: int) -> list[int]:
    async def one() -> int:
        async with http.post(
            f"{url}/v1/chat/completions", json=BODY, headers={"Authorization": f"Bearer {key}"}
        ) as r:
            await r.read()
            return r.status

    return list(await asyncio.gather(*(one() for _ in range(n))))


async def test_metrics_sum_over_worker_processes(tmp_path: Path, fake: FakeOpenAI) -> None:
    data = tmp_path / "data"
    data.mkdir()
    key = create_key(data)
    stale = data / METRICS_SUBDIR / "run-999999999"  # left by a run whose supervisor is gone
    stale.mkdir(parents=True)
    (stale / "counter_1.db").write_bytes(b"stale")
    with serve_subprocess(write_config(tmp_path, fake), data, env=ENV,
                          extra_args=("--workers", "2")) as server:
        wait_for_workers(server, 2)
        assert not stale.exists()
        (run_dir,) = (data / METRICS_SUBDIR).glob("run-*")
        sent: list[int] = []
        # New connection per request so the kernel hands them to both workers; send in
        # rounds until each worker has served some (a loaded host may favour one).
        connector = aiohttp.TCPConnector(limit=16, force_close=True)
        async with aiohttp.ClientSession(connector=connector) as http:
            for _ in range(20):
                sent += await send(http, server.url, key, 50)
                per_worker = await published(run_dir, tmp_path / f"scratch{len(sent)}", len(sent))
                if len(per_worker) == 2 and all(per_worker.values()):
                    break
            assert set(sent) == {200}
            assert len(per_worker) == 2 and all(per_worker.values()), per_worker
            assert sum(per_worker.values()) == len(sent)
            scrapes = []
            for _ in range(8):
                async with http.get(f"{server.url}/metrics") as r:
                    assert r.status == 200
                    scrapes.append(await r.text())
    for text in scrapes:
        assert requests_total(text) == len(sent)
        assert samples(text, "appliance_workers") == [({}, 2.0)]
        (count,) = [v for labels, v in samples(text, "appliance_request_duration_seconds_count")
                    if labels["route"] == "chat.completions"]
        assert count == len(sent)
    assert not run_dir.exists()  # the supervisor removes its run directory on exit


def test_one_process_keeps_its_counts_in_memory(tmp_path: Path) -> None:
    assert multiprocess_dir() is None
    text = Metrics().exposition().decode()
    assert samples(text, "appliance_workers") == [({}, 1.0)]
    assert not list(tmp_path.iterdir())


def test_the_run_directory_replaces_leftovers_of_dead_runs_only(tmp_path: Path) -> None:
    root = tmp_path / METRICS_SUBDIR
    dead, alive, own = root / "run-999999999", root / f"run-{os.getppid()}", root / f"run-{os.getpid()}"
    for d in (dead, alive, own):
        d.mkdir(parents=True)
        (d / "counter_1.db").write_bytes(b"old")
    run_dir = enable_multiprocess(tmp_path)
    try:
        assert run_dir == own.resolve() and not list(own.iterdir())  # our pid's leftover: emptied
        assert not dead.exists() and alive.exists()  # another live supervisor keeps its own
        assert multiprocess_dir() == run_dir
        m = Metrics()
        m.requests.labels("chat.completions", "gpt-4o", "200", "allow").inc()
        assert {f.name for f in run_dir.iterdir()} >= {f"counter_{os.getpid()}.db"}
        assert requests_total(m.exposition().decode()) == 1
    finally:
        disable_multiprocess(run_dir)
    assert multiprocess_dir() is None and not run_dir.exists()
