"""The counters through Redis Sentinel and Redis Cluster URLs, against real servers on
loopback (Debian's redis-server as primary, as Sentinel, as three cluster masters)."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
import redis

from appliance.metering.redis_store import RedisCounterStore
from appliance.metering.store import Charge, Item
from appliance.testing.engines import free_port


def _server(stack: ExitStack, directory: Path, *args: str) -> None:
    proc = subprocess.Popen(["redis-server", *args, "--dir", str(directory)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)

    def stop() -> None:
        proc.terminate()
        proc.wait(10)

    stack.callback(stop)


def _until(check: object, what: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if check():  # type: ignore[operator]
                return
        except redis.RedisError:
            pass
        assert time.monotonic() < deadline, f"{what} not up in {timeout_s:.0f} s"
        time.sleep(0.1)


def _cluster_ok(port: int) -> bool:
    info = redis.Redis(port=port).execute_command("CLUSTER INFO")
    if isinstance(info, dict):
        return info.get("cluster_state") == "ok"
    return b"cluster_state:ok" in info


@pytest.fixture
def redis_dir(tmp_path: Path) -> Iterator[Path]:
    if shutil.which("redis-server") is None or shutil.which("redis-cli") is None:
        pytest.skip("redis-server is not installed (see .ci/run)")
    yield tmp_path


async def _limit_of_two_holds(url: str) -> None:
    store = RedisCounterStore(url, prefix="topo")
    await store.start()
    try:
        item = Item("key:k1:req", 7, 1, 7, limit=2, ttl_s=60)
        other = Item("tenant:t1:req", 7, 1, 7, limit=100, ttl_s=60)  # another key, same script
        outcomes = [await store.admit([item, other]) for _ in range(3)]
        assert [o.admitted for o in outcomes] == [True, True, False]
        settled = await store.charge(Charge(items=[item.at(7, -1)]))  # give one back
        assert settled.totals == (1,)
        assert (await store.admit([item, other])).admitted
    finally:
        await store.aclose()


async def test_a_sentinel_url_finds_the_primary_and_counts_exactly(redis_dir: Path) -> None:
    with ExitStack() as stack:
        primary = free_port()
        _server(stack, redis_dir, "--port", str(primary), "--bind", "127.0.0.1", "--save", "")
        _until(lambda: redis.Redis(port=primary).ping(), "primary")
        sentinel = free_port()
        conf = redis_dir / "sentinel.conf"
        conf.write_text(f"port {sentinel}\nbind 127.0.0.1\n"
                        f"sentinel monitor appliance 127.0.0.1 {primary} 1\n")
        _server(stack, redis_dir, str(conf), "--sentinel")
        _until(lambda: redis.Redis(port=sentinel).sentinel_get_master_addr_by_name("appliance"), "sentinel")
        await _limit_of_two_holds(f"redis+sentinel://127.0.0.1:{sentinel}/appliance/0")
        # The counters are on the primary the sentinel named.
        assert redis.Redis(port=primary).keys("topo:c:key:k1:req:*")


async def test_a_cluster_url_keeps_a_request_s_counters_in_one_slot(redis_dir: Path) -> None:
    with ExitStack() as stack:
        ports: list[int] = []
        while len(ports) < 3:  # distinct, and each node's cluster bus (port + 10000) a valid port
            p = free_port()
            if p + 10000 <= 65535 and p not in ports:
                ports.append(p)
        for p in ports:
            node = redis_dir / f"node{p}"
            node.mkdir()
            _server(stack, node, "--port", str(p), "--bind", "127.0.0.1", "--save", "",
                    "--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{p}.conf")
        for p in ports:
            _until(lambda p=p: redis.Redis(port=p).ping(), f"node {p}")
        subprocess.run(["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports),
                        "--cluster-replicas", "0", "--cluster-yes"],
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, timeout=60)
        _until(lambda: all(_cluster_ok(p) for p in ports), "cluster")
        await _limit_of_two_holds(f"redis+cluster://127.0.0.1:{ports[0]}")
