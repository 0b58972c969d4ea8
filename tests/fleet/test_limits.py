"""Rate limits are exact across replicas: the counters live in Redis, checked and counted
by one script per request."""

from __future__ import annotations

import asyncio
import collections

import aiohttp

from tests.fleet.conftest import RunningFleet, chat, create_key


async def test_100_a_minute_means_100_across_three_replicas(running_fleet: RunningFleet) -> None:
    urls = running_fleet.urls()
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=120)) as session:
        key = (await create_key(session, urls[0], user="limited", limits={"rpm": 100}))["key"]
        statuses = await asyncio.gather(*(chat(session, urls[i % 3], key) for i in range(500)))
    counts = collections.Counter(r.status for r in statuses)
    assert counts == {200: 100, 429: 400}, counts
    by_replica = collections.Counter(urls[i % 3] for i, r in enumerate(statuses) if r.status == 200)
    assert len(by_replica) == 3, by_replica  # every replica admitted some: one shared limit
