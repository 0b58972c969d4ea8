"""Fixtures of the metering tests: a real Redis server, configs with the limits stage on."""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from appliance.testing.harness import PASS_THROUGH, merge

#: Every stage off except limits (and metering with it).
LIMITS_ONLY = merge(PASS_THROUGH, {"pipeline": {"limits": True}})


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server on a unix socket, for the whole session (per xdist worker)."""
    exe = shutil.which("redis-server")
    if exe is None:
        pytest.skip("redis-server is not on PATH (Debian package: redis-server)")
    d = tmp_path_factory.mktemp("redis")
    sock = d / "redis.sock"
    proc = subprocess.Popen(
        [exe, "--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700",
         "--save", "", "--appendonly", "no", "--dir", str(d)],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )
    url = f"unix://{sock}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if redis.Redis.from_url(url).ping():
                    break
            except redis.exceptions.ConnectionError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def redis_prefix() -> str:
    """A key prefix per test, so tests sharing the Redis server never see each other."""
    return "t" + uuid.uuid4().hex[:12]


def limits_config(**limits: Any) -> dict[str, Any]:
    return merge(LIMITS_ONLY, {"limits": limits})


def write_toml(path: Path, data: dict[str, Any]) -> Path:
    from appliance.testing.harness import to_toml

    path.write_text(to_toml(data), "utf-8")
    return path
