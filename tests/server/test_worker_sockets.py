"""Several server workers share the connections of a few keep-alive clients.

An SDK or a load balancer opens a handful of keep-alive connections and sends everything
over them. With one listening socket shared by every worker, the worker that happened to
be idle accepted the whole burst and served it alone while the others idled. Each worker
listens on a socket of its own (SO_REUSEPORT), and the kernel spreads connections over
them; a worker that dies takes its socket along, so no connection waits on a dead one.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import aiohttp
import pytest

from appliance.testing.fakes import FakeOpenAI
from appliance.testing.harness import (
    PASS_THROUGH,
    UPSTREAM_KEY_ENV,
    create_key,
    merge,
    openai_upstream,
    serve_subprocess,
    to_toml,
)
from tests.conftest import FAKE_KEY

CLIENTS = 16


def _children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _established_on(port: int) -> set[int]:
    """Socket inodes of connections accepted on ``port`` (server side, ESTABLISHED)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], int(fields[9])
            if int(local.rsplit(":", 1)[1], 16) == port and state == "01":
                inodes.add(inode)
    return inodes


def _sockets_of(pid: int) -> set[int]:
    out = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            out.add(int(target[8:-1]))
    return out


async def _requests(url: str, key: str, rounds: int, workers: list[int]) -> tuple[list[int], list[int]]:
    """Statuses of ``rounds`` x CLIENTS requests over CLIENTS keep-alive connections, and
    how many of those connections each worker holds (counted while they are open)."""
    connector = aiohttp.TCPConnector(limit=CLIENTS)
    async with aiohttp.ClientSession(connector=connector) as session:
        async def one() -> int:
            async with session.post(url, headers={"Authorization": f"Bearer {key}"}, json={
                "model": "gpt-4o", "messages": [{"role": "user", "content": "Hello"}],
            }) as r:
                await r.read()
                return r.status
        statuses: list[int] = []
        for _ in range(rounds):
            statuses += await asyncio.gather(*(one() for _ in range(CLIENTS)))
        accepted = _established_on(int(url.split(":")[2].split("/")[0]))
        return statuses, [len(_sockets_of(w) & accepted) for w in workers]


def test_keep_alive_connections_spread_over_the_workers_and_survive_one_dying(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(UPSTREAM_KEY_ENV, FAKE_KEY)
    with FakeOpenAI(api_key=FAKE_KEY).running() as fake:
        cfg = tmp_path / "workers.toml"
        cfg.write_text(to_toml(merge(
            openai_upstream("openai", fake.base_url, {"gpt-4o": "gpt-4o"}, max_retries=0),
            {"server": {"workers": 2}}, PASS_THROUGH,
        )))
        data = tmp_path / "data"
        key = create_key(data)
        with serve_subprocess(cfg, data) as server:
            url = server.url + "/v1/chat/completions"
            workers = _children(server.process.pid)
            assert len(workers) == 2, workers

            statuses, per_worker = asyncio.run(_requests(url, key, 3, workers))
            assert set(statuses) == {200}
            assert sum(per_worker) >= CLIENTS, per_worker  # still open while counted
            assert all(n > 0 for n in per_worker), f"connections per worker: {per_worker}"

            # One worker dies: new connections all reach the other one.
            os.kill(workers[1], signal.SIGKILL)
            deadline = time.monotonic() + 10
            while workers[1] in _children(server.process.pid):
                assert time.monotonic() < deadline
                time.sleep(0.05)
            statuses, per_worker = asyncio.run(
                asyncio.wait_for(_requests(url, key, 2, workers[:1]), 30))
            assert set(statuses) == {200}
            assert per_worker[0] >= CLIENTS, per_worker
