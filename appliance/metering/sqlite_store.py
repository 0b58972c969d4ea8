"""The ``local`` backend: counters in one SQLite file in the data directory.

Every operation is one ``BEGIN IMMEDIATE`` transaction, so counts are exact within a
process and across processes that share the file (``server.workers > 1``), and they
survive a restart. The connection lives on one thread owned by the store, so the event
loop never blocks on the file and operations of one process queue up in order.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from appliance.metering.store import Charge, Item, Outcome, UsageRow

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS counters (
    key TEXT NOT NULL,
    bucket INTEGER NOT NULL,
    value INTEGER NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (key, bucket)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS flags (
    flag TEXT PRIMARY KEY,
    expires_at REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS usage_hourly (
    hour INTEGER NOT NULL,
    tenant TEXT NOT NULL,
    department TEXT NOT NULL,
    user TEXT NOT NULL,
    application TEXT NOT NULL,
    key_id TEXT NOT NULL,
    model TEXT NOT NULL,
    route TEXT NOT NULL,
    requests INTEGER NOT NULL DEFAULT 0,
    errors INTEGER NOT NULL DEFAULT 0,
    prompt_tokens INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    cost_nano INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (hour, tenant, department, user, application, key_id, model, route)
) WITHOUT ROWID;
"""

#: How often expired counters are deleted, in seconds.
_PURGE_EVERY_S = 60.0


class SqliteCounterStore:
    def __init__(self, path: Path, retention_days: int = 400) -> None:
        self.path = path
        self._retention_s = retention_days * 86400
        self._pool: ThreadPoolExecutor | None = None
        self._db: sqlite3.Connection | None = None
        self._purged_at = 0.0

    # -- lifecycle ------------------------------------------------------------------

    async def start(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="limits-db")
        await self._call(self._open)

    async def aclose(self) -> None:
        pool, self._pool = self._pool, None
        if pool is None:
            return
        await asyncio.get_running_loop().run_in_executor(pool, self._close)
        pool.shutdown(wait=True)

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=True)
        db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode: a commit survives a crash of the process; only a power
        # loss may lose the last transactions, which costs budgets a few requests.
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA busy_timeout=10000")
        db.executescript(_SCHEMA)
        self._db = db

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    async def _call(self, fn: Callable[[], T]) -> T:
        if self._pool is None:
            raise RuntimeError("the limits store is not started")
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn)

    def _tx(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        db = self._db
        assert db is not None
        db.execute("BEGIN IMMEDIATE")
        try:
            result = fn(db)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        return result

    # -- operations -------------------------------------------------------------------

    async def admit(self, items: Sequence[Item]) -> Outcome:
        return await self._call(lambda: self._tx(lambda db: _apply(db, items, check=True)))

    async def charge(self, charge: Charge) -> Outcome:
        def run(db: sqlite3.Connection) -> Outcome:
            outcome = _apply(db, charge.items, check=False)
            if charge.usage is not None:
                _book(db, charge.usage)
            self._maybe_purge(db)
            return outcome

        return await self._call(lambda: self._tx(run))

    async def once(self, flag: str, ttl_s: int) -> bool:
        def run(db: sqlite3.Connection) -> bool:
            now = time.time()
            db.execute("DELETE FROM flags WHERE flag = ? AND expires_at < ?", (flag, now))
            cur = db.execute(
                "INSERT OR IGNORE INTO flags (flag, expires_at) VALUES (?, ?)", (flag, now + ttl_s)
            )
            return cur.rowcount == 1

        return await self._call(lambda: self._tx(run))

    async def usage(self, first_hour: int, last_hour: int) -> list[UsageRow]:
        def run() -> list[UsageRow]:
            db = self._db
            assert db is not None
            cols = ", ".join(("hour", *UsageRow.DIMENSIONS, *UsageRow.MEASURES))
            rows = db.execute(
                f"SELECT {cols} FROM usage_hourly WHERE hour BETWEEN ? AND ?",
                (first_hour, last_hour),
            ).fetchall()
            return [UsageRow(*r) for r in rows]

        return await self._call(run)

    def _maybe_purge(self, db: sqlite3.Connection) -> None:
        now = time.time()
        if now - self._purged_at < _PURGE_EVERY_S:
            return
        self._purged_at = now
        db.execute("DELETE FROM counters WHERE expires_at < ?", (now,))
        db.execute("DELETE FROM flags WHERE expires_at < ?", (now,))
        db.execute(
            "DELETE FROM usage_hourly WHERE hour < ?", (int((now - self._retention_s) // 3600),)
        )


def _apply(db: sqlite3.Connection, items: Sequence[Item], *, check: bool) -> Outcome:
    """Runs inside the write lock: its clock reading orders it after every commit before."""
    now = time.time()
    totals: list[int] = []
    oldest: list[int | None] = []
    buckets: list[int] = []
    for item in items:
        bucket, first = item.bucket, item.first
        if item.window_s:
            bucket = int(now)
            first = bucket - item.window_s + 1
        buckets.append(bucket)
        total, first_used = db.execute(
            "SELECT COALESCE(SUM(value), 0), MIN(CASE WHEN value > 0 THEN bucket END)"
            " FROM counters WHERE key = ? AND bucket BETWEEN ? AND ?",
            (item.key, first, bucket),
        ).fetchone()
        totals.append(int(total))
        oldest.append(None if first_used is None else int(first_used))
    if check:
        for i, item in enumerate(items):
            if item.limit is not None and totals[i] + item.amount > item.limit:
                return Outcome(False, tuple(totals), tuple(oldest), tuple(buckets), now, refused=i)
    for i, item in enumerate(items):
        if item.amount:
            db.execute(
                "INSERT INTO counters (key, bucket, value, expires_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (key, bucket) DO UPDATE SET value = value + excluded.value,"
                " expires_at = MAX(expires_at, excluded.expires_at)",
                (item.key, buckets[i], item.amount, now + item.ttl_s),
            )
            totals[i] += item.amount
            if oldest[i] is None and item.amount > 0:
                oldest[i] = buckets[i]
    return Outcome(True, tuple(totals), tuple(oldest), tuple(buckets), now)


def _book(db: sqlite3.Connection, row: UsageRow) -> None:
    dims = ", ".join(UsageRow.DIMENSIONS)
    measures = ", ".join(UsageRow.MEASURES)
    updates = ", ".join(f"{m} = {m} + excluded.{m}" for m in UsageRow.MEASURES)
    db.execute(
        f"INSERT INTO usage_hourly (hour, {dims}, {measures}) VALUES ({', '.join('?' * 13)})"
        f" ON CONFLICT (hour, {dims}) DO UPDATE SET {updates}",
        (
            row.hour,
            *(getattr(row, d) for d in UsageRow.DIMENSIONS),
            *(getattr(row, m) for m in UsageRow.MEASURES),
        ),
    )
