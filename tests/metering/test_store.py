"""The counter stores, both backends, used directly: atomic admission, windows, restarts."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from appliance.metering.redis_store import RedisCounterStore
from appliance.metering.sqlite_store import SqliteCounterStore
from appliance.metering.store import Charge, CounterStore, Item, UsageRow

Opener = Callable[[], Awaitable[CounterStore]]


@pytest.fixture(params=["local", "redis"])
async def open_store(
    request: pytest.FixtureRequest, tmp_path: Path, redis_prefix: str
) -> AsyncIterator[Opener]:
    """Opens a store on the same state each call (a restart of the appliance)."""
    opened: list[CounterStore] = []

    async def opener() -> CounterStore:
        store: CounterStore
        if request.param == "redis":
            url = request.getfixturevalue("redis_url")
            store = RedisCounterStore(url, prefix=redis_prefix)
        else:
            store = SqliteCounterStore(tmp_path / "limits.db")
        await store.start()
        opened.append(store)
        return store

    yield opener
    for s in opened:
        await s.aclose()


def rpm(limit: int, now: int, amount: int = 1) -> Item:
    return Item("key:k1:req", now, amount, now - 59, limit)


def rpm_now(limit: int) -> Item:
    """A sliding window on the store's own clock, as the meter uses it."""
    return Item("key:k1:req", 0, 1, 0, limit, window_s=60)


@pytest.mark.parametrize("windowed", [False, True])
async def test_exactly_the_limit_passes_under_concurrency(open_store: Opener, windowed: bool) -> None:
    store = await open_store()
    item = rpm_now(100) if windowed else rpm(100, 1000)
    outcomes = await asyncio.gather(*(store.admit([item]) for _ in range(500)))
    assert sum(o.admitted for o in outcomes) == 100
    assert max(o.totals[0] for o in outcomes if o.admitted) == 100
    if windowed:
        assert all(abs(o.buckets[0] - time.time()) < 30 for o in outcomes)


async def test_two_stores_on_one_state_share_the_limit(open_store: Opener) -> None:
    """Two replicas (two store instances, two connections) on the same state."""
    one, two = await open_store(), await open_store()
    outcomes = await asyncio.gather(*(s.admit([rpm_now(100)]) for s in [one, two] * 250))
    assert sum(o.admitted for o in outcomes) == 100


async def test_all_or_nothing(open_store: Opener) -> None:
    store = await open_store()
    tokens = Item("key:k1:tok", 1000, 60, 941, 100)
    assert (await store.admit([rpm(10, 1000), tokens])).admitted
    refused = await store.admit([rpm(10, 1000), tokens])  # 120 tokens > 100
    assert not refused.admitted and refused.refused == 1
    assert refused.totals == (1, 60)  # the request count was not taken either
    again = await store.admit([rpm(10, 1000)])
    assert again.totals == (2,)


@pytest.mark.parametrize(
    ("second", "expected_total"),
    [
        (1000, 3),  # same second
        (1059, 3),  # still inside the 60-second window of bucket 1000
        (1060, 0),  # bucket 1000 left the window
    ],
)
async def test_sliding_window(open_store: Opener, second: int, expected_total: int) -> None:
    store = await open_store()
    for _ in range(3):
        await store.admit([rpm(100, 1000)])
    probe = await store.admit([Item("key:k1:req", second, 0, second - 59, 100)])
    assert probe.totals == (expected_total,)
    assert probe.oldest == ((1000,) if expected_total else (None,))


async def test_counters_survive_reopening(open_store: Opener) -> None:
    store = await open_store()
    for _ in range(5):
        assert (await store.admit([rpm(7, 2000)])).admitted
    await store.aclose()
    reopened = await open_store()
    results = [(await reopened.admit([rpm(7, 2000)])).admitted for _ in range(4)]
    assert results == [True, True, False, False]


async def test_charge_adjusts_and_books_usage(open_store: Opener) -> None:
    store = await open_store()
    budget = Item("tenant:acme:usd:m", 24323, 500, 24323, 1000, 3600)
    assert (await store.admit([budget])).admitted
    row = UsageRow(490000, "acme", "", "alice", "", "k1", "gpt-4o", "chat.completions",
                   requests=1, prompt_tokens=10, completion_tokens=5, cost_nano=700)
    out = await store.charge(Charge([Item(budget.key, budget.bucket, 200, budget.first)], row))
    assert out.totals == (700,)
    await store.charge(Charge([], row))
    rows = await store.usage(490000, 490000)
    assert len(rows) == 1
    assert (rows[0].requests, rows[0].prompt_tokens, rows[0].cost_nano) == (2, 20, 1400)
    assert rows[0].model == "gpt-4o" and rows[0].department == ""
    assert await store.usage(490001, 490005) == []
    # 700 spent of 1000: a request estimated at 400 no longer fits.
    assert not (await store.admit([Item(budget.key, budget.bucket, 400, budget.first, 1000)])).admitted


async def test_once_flags(open_store: Opener) -> None:
    store = await open_store()
    results = await asyncio.gather(*(store.once("soft:tenant:acme:2026-11", 60) for _ in range(20)))
    assert sum(results) == 1
    assert await store.once("soft:tenant:acme:2026-12", 60)
