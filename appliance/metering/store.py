"""The counter store behind rate limits, budgets and usage reports.

Everything is an integer counter split into buckets: one bucket per second for the
sliding one-minute windows of rate limits, one per UTC day or calendar month for
budgets. Money is counted in nano-USD so that sums are exact integers everywhere
(SQLite and Redis alike). Two backends implement :class:`CounterStore`: SQLite in the
data directory (``local``) and Redis with Lua scripts (``redis``).

``admit`` is the one operation that must be atomic: it checks every limit that applies
to a request and then counts the request against all of them, or against none.
"""

from __future__ import annotations

import calendar
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

NANO = 1_000_000_000
#: Seconds a per-second bucket lives (two windows, so a late settle still finds it).
SECOND_TTL_S = 120
DAY_TTL_S = 40 * 86400
MONTH_TTL_S = 400 * 86400
WINDOW_S = 60


def usd_to_nano(usd: float) -> int:
    return round(usd * NANO)


def nano_to_usd(nano: int) -> float:
    return nano / NANO


class CounterStoreUnavailable(Exception):
    """The shared counter store (Redis) cannot be reached; ``[fleet] redis_outage`` says
    whether requests are then refused (closed, the default) or admitted uncounted."""


@dataclass(frozen=True, slots=True)
class Item:
    """One counter touched by a request.

    The amount goes into ``bucket``; the total compared with ``limit`` is the sum of
    buckets ``first``..``bucket`` (``first == bucket`` for a calendar window).

    With ``window_s`` set, the store picks the bucket itself from its own clock, read
    while it holds the lock (SQLite) or inside the script (Redis: the server's clock):
    ``bucket = now`` in seconds, ``first = now - window_s + 1``. A bucket computed by the
    caller before it waited for the store could miss counts that other requests put in
    newer buckets meanwhile, and let a request too many through.
    """

    key: str
    bucket: int
    amount: int
    first: int
    limit: int | None = None
    ttl_s: int = SECOND_TTL_S
    window_s: int = 0

    def at(self, bucket: int, amount: int) -> Item:
        """The same counter, a fixed bucket (to adjust what a reservation booked)."""
        return Item(self.key, bucket, amount, bucket, self.limit, self.ttl_s)


@dataclass(frozen=True, slots=True)
class Outcome:
    admitted: bool
    #: Per item: the window total after the request (admitted) or before it (refused).
    totals: tuple[int, ...]
    #: Per item: the oldest bucket in the window that holds anything (None: empty).
    oldest: tuple[int | None, ...]
    #: Per item: the bucket the amount went to (the store's choice for windowed items).
    buckets: tuple[int, ...] = ()
    #: The store's clock when it counted (seconds since the epoch).
    now: float = 0.0
    #: Index of the first item whose limit refused the request.
    refused: int | None = None


@dataclass(frozen=True, slots=True)
class UsageRow:
    """One hour of usage of one (tenant, department, user, application, key, model, route)."""

    hour: int
    tenant: str
    department: str
    user: str
    application: str
    key_id: str
    model: str
    route: str
    requests: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_nano: int = 0

    DIMENSIONS = ("tenant", "department", "user", "application", "key_id", "model", "route")
    MEASURES = ("requests", "errors", "prompt_tokens", "completion_tokens", "cost_nano")


@dataclass(slots=True)
class Charge:
    """What ``settle`` books: counter adjustments plus one usage row."""

    items: list[Item] = field(default_factory=list)
    usage: UsageRow | None = None


class CounterStore(Protocol):
    async def start(self) -> None: ...

    async def aclose(self) -> None: ...

    async def admit(self, items: Sequence[Item]) -> Outcome:
        """Atomically: if every limited item stays within its limit, add all; else none."""
        ...

    async def charge(self, charge: Charge) -> Outcome:
        """Add every item without checking limits, and book the usage row."""
        ...

    async def once(self, flag: str, ttl_s: int) -> bool:
        """True for the first caller (across replicas) to raise ``flag`` until it expires."""
        ...

    async def usage(self, first_hour: int, last_hour: int) -> list[UsageRow]:
        """Usage rows with ``first_hour <= hour <= last_hour`` (hours since the epoch)."""
        ...


# -- calendar buckets -------------------------------------------------------------------


def second_bucket(now: float) -> int:
    return int(now)


def day_bucket(now: float) -> int:
    return int(now // 86400)


def month_bucket(now: float) -> int:
    d = datetime.fromtimestamp(now, UTC)
    return d.year * 12 + d.month - 1


def hour_bucket(now: float) -> int:
    return int(now // 3600)


def month_start(bucket: int) -> datetime:
    return datetime(bucket // 12, bucket % 12 + 1, 1, tzinfo=UTC)


def seconds_to_next_day(now: float) -> float:
    return (day_bucket(now) + 1) * 86400 - now


def seconds_to_next_month(now: float) -> float:
    return month_start(month_bucket(now) + 1).timestamp() - now


def days_in_month(bucket: int) -> int:
    return calendar.monthrange(bucket // 12, bucket % 12 + 1)[1]


def clock() -> float:
    return time.time()
