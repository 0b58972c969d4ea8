"""The real server under concurrent load: SIGKILL, restart, every acknowledged request is
in the log and the chain verifies; searching and verifying work while it serves; and no
PII value or API key from the traffic appears in any file under the data directory."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from appliance.testing.fakes import FakeOpenAI
from appliance.testing.harness import (
    PASS_THROUGH,
    UPSTREAM_KEY_ENV,
    ServerProcess,
    create_key,
    merge,
    openai_upstream,
    serve_subprocess,
    to_toml,
)
from tests.audit._tamper import cli

FAKE_KEY = "sk-upstream-crash-test-91f3"
PII_NAME = "Wilhelmina Oosterhuizen"
PII_EMAIL = "wilhelmina.oosterhuizen@example.org"


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAI]:
    monkeypatch.setenv(UPSTREAM_KEY_ENV, FAKE_KEY)
    with FakeOpenAI(api_key=FAKE_KEY, record=False).running() as f:
        yield f


def _config(tmp_path: Path, fake: FakeOpenAI) -> Path:
    cfg = merge(
        openai_upstream("openai", fake.base_url, {"gpt-4o": "gpt-4o"}),
        PASS_THROUGH,
        {"pipeline": {"record": True}, "audit": {"checkpoint_interval_s": 0.5}},
    )
    path = tmp_path / "appliance.toml"
    path.write_text(to_toml(cfg))
    return path


async def _load(url: str, key: str, acked: list[str], stop: threading.Event, workers: int = 12) -> int:
    """Concurrent chat requests until ``stop``; returns how many failed (server gone)."""
    failed = 0
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": f"I am {PII_NAME}, mail {PII_EMAIL}"}]}
    headers = {"Authorization": f"Bearer {key}"}

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal failed
        while not stop.is_set():
            try:
                async with session.post(f"{url}/v1/chat/completions", json=body, headers=headers) as r:
                    await r.read()
                    if r.status == 200:
                        acked.append(r.headers["x-request-id"])
            except (TimeoutError, aiohttp.ClientError):
                failed += 1
                await asyncio.sleep(0.01)

    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
        await asyncio.gather(*(worker(session) for _ in range(workers)))
    return failed


def _run_load(url: str, key: str, acked: list[str], stop: threading.Event) -> threading.Thread:
    t = threading.Thread(target=lambda: asyncio.run(_load(url, key, acked, stop)), daemon=True)
    t.start()
    return t


def _wait_for(acked: list[str], n: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while len(acked) < n and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(acked) >= n, f"only {len(acked)} requests acknowledged"


def _search_ids(data: Path) -> set[str]:
    r = cli("search", "--data-dir", str(data), "--json", "--kind", "request")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert all({"request_id", "decision", "status"} <= row.keys() for row in rows)
    return {row["request_id"] for row in rows}


def _verify(data: Path) -> dict[str, Any]:
    r = cli("verify", "--data-dir", str(data), "--public-key", str(data / "audit" / "signing.pub.pem"), "--json")
    out: dict[str, Any] = json.loads(r.stdout.strip().splitlines()[-1])
    assert r.returncode == 0 and out["ok"], out
    return out


@pytest.mark.timeout(600)
def test_sigkill_under_load_loses_no_acknowledged_request(tmp_path: Path, fake: FakeOpenAI) -> None:
    data = tmp_path / "data"
    config = _config(tmp_path, fake)
    key = create_key(data)
    acked: list[str] = []

    with serve_subprocess(config, data) as server:
        stop = threading.Event()
        loader = _run_load(server.url, key, acked, stop)
        _wait_for(acked, 300)
        server.kill()  # SIGKILL while requests are in flight
        n_acked_at_kill = len(acked)
        stop.set()
        loader.join(30)
    assert n_acked_at_kill >= 300

    # Restart: the dead writer's segment is recovered and sealed; traffic goes on.
    with serve_subprocess(config, data) as server2:
        assert isinstance(server2, ServerProcess)
        stop = threading.Event()
        more: list[str] = []
        loader = _run_load(server2.url, key, more, stop)
        _wait_for(more, 50)
        # Search and verify while the server is writing: no pause, nothing missing.
        before = list(more)
        found = _search_ids(data)
        assert set(acked) <= found
        assert set(before) <= found
        out = _verify(data)
        assert len(more) > len(before) or loader.is_alive()  # traffic kept flowing
        stop.set()
        loader.join(30)
    recovered = json.loads(
        "[" + ",".join(cli("search", "--data-dir", str(data), "--json", "--kind", "recover").stdout.splitlines()) + "]"
    )
    assert len(recovered) == 1  # the log itself records that its writer died

    found = _search_ids(data)
    assert set(acked) <= found and set(more) <= found
    out = _verify(data)
    assert sum(s["records"] for s in out["segments"]) >= len(acked) + len(more)

    # No PII value, prompt or API key from the traffic in any byte of any file.
    needles = [PII_NAME.encode(), PII_EMAIL.encode(), key.encode(), FAKE_KEY.encode()]
    for path in data.rglob("*"):
        if path.is_file():
            blob = path.read_bytes()
            for needle in needles:
                assert needle not in blob, f"{needle[:6]!r}... found in {path.relative_to(data)}"
