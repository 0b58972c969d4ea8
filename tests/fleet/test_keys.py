"""Keys live in PostgreSQL and changes reach every replica within a second (NOTIFY)."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import psycopg

from appliance.testing.fleet import Fleet
from tests.fleet.conftest import Engines, RunningFleet, chat, create_key


async def _until(session: aiohttp.ClientSession, url: str, key: str, status: int, within_s: float) -> float:
    """Seconds until a request with ``key`` to ``url`` gets ``status`` (fails past ``within_s``)."""
    t0 = time.monotonic()
    while True:
        r = await chat(session, url, key)
        elapsed = time.monotonic() - t0
        if r.status == status:
            return elapsed
        assert elapsed < within_s, f"{url}: still HTTP {r.status} after {elapsed:.2f} s (wanted {status})"
        await asyncio.sleep(0.02)


async def test_a_key_created_on_one_replica_works_on_all_and_a_revocation_is_fleet_wide(
    running_fleet: RunningFleet,
) -> None:
    first, *others = running_fleet.urls()
    async with aiohttp.ClientSession() as session:
        created = await create_key(session, first)
        key = created["key"]
        for url in others:
            assert await _until(session, url, key, 200, 1.0) < 1.0
        for url in running_fleet.urls():  # every replica has it cached now
            assert (await chat(session, url, key)).status == 200
        revoked = running_fleet.fleet.cli("keys", "revoke", created["id"], replica=1)
        assert revoked.returncode == 0, revoked.stderr
        waits = await asyncio.gather(*(_until(session, u, key, 401, 1.0) for u in running_fleet.urls()))
        assert max(waits) < 1.0, waits


async def test_a_key_created_by_the_cli_works_through_the_balancer(running_fleet: RunningFleet) -> None:
    made = running_fleet.fleet.cli("keys", "create", "--tenant", "acme", "--user", "bob", "--json",
                                   replica=2)
    assert made.returncode == 0, made.stderr
    key = __import__("json").loads(made.stdout)["key"]
    async with aiohttp.ClientSession() as session:
        for _ in range(6):  # leastconn spreads them over the replicas
            assert (await chat(session, running_fleet.lb_url, key)).status == 200


def test_serve_refuses_a_schema_it_does_not_know(engines: Engines, running_fleet: RunningFleet) -> None:
    with psycopg.connect(engines.pg.dsn, autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS fresh")
        conn.execute("CREATE DATABASE fresh")
    fleet: Fleet = running_fleet.fleet
    fresh_dsn = engines.pg.dsn.rsplit("/", 1)[0] + "/fresh"
    env = {**fleet.env, "APPLIANCE_STATE_DSN": fresh_dsn}
    import subprocess
    import sys

    r0 = fleet.replicas[0]
    run = subprocess.run([sys.executable, "-m", "appliance", "serve", "--config", str(r0.config_path),
                          "--data-dir", str(r0.data_dir / "other"), "--port", "0"],
                         capture_output=True, text=True, env={**fleet.environ, **env}, timeout=120)
    assert run.returncode == 2
    assert "appliance db upgrade" in run.stderr
    with psycopg.connect(fresh_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL,"
                     " applied_at DOUBLE PRECISION NOT NULL)")
        conn.execute("INSERT INTO schema_migrations VALUES (99, 'from the future', 0)")
    run = subprocess.run([sys.executable, "-m", "appliance", "serve", "--config", str(r0.config_path),
                          "--data-dir", str(r0.data_dir / "other"), "--port", "0"],
                         capture_output=True, text=True, env={**fleet.environ, **env}, timeout=120)
    assert run.returncode == 2
    assert "newer than this release knows" in run.stderr
