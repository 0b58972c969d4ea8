"""The PostgreSQL backend of the control plane, for a fleet of replicas.

Each process holds one connection for queries (behind a lock, used from threads, never
from the event loop) and one listener thread that LISTENs on ``appliance_control``. A
trigger installed by the migrations NOTIFYs that channel on every change to keys or
applications, whoever makes it (a replica's admin API, the CLI, an operator's SQL), so
each replica drops its caches within milliseconds of the commit. When the listener's
connection breaks, the replica cannot know what changes it misses: the feed is marked
down (the authenticator then trusts its cache only through ``outage_grace_s``), and
listening again counts a change, so the caches are dropped once it is back.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row

from appliance.keys.backend import POSTGRES, Row, Tx, unavailable

log = logging.getLogger(__name__)

CHANNEL = "appliance_control"


def _sql(text: str) -> str:
    """The repository's ``?`` placeholders as psycopg's ``%s`` (no literal % or ? in our SQL)."""
    return text.replace("%", "%%").replace("?", "%s")


class _PgTx:
    def __init__(self, cur: psycopg.Cursor[Row]) -> None:
        self._cur = cur

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        self._cur.execute(_sql(sql), tuple(params))  # type: ignore[arg-type]
        return self._cur.rowcount

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        self._cur.execute(_sql(sql), tuple(params))  # type: ignore[arg-type]
        return list(self._cur.fetchall())


class PostgresBackend:
    dialect = POSTGRES
    pushes_changes = True

    def __init__(self, dsn: str, *, timeout_s: float = 2.0, listen: bool = True) -> None:
        self._dsn = dsn
        self._timeout_s = timeout_s
        self._lock = threading.Lock()
        self._conn: psycopg.Connection[Row] | None = None
        self._version = 0
        self._listening = threading.Event()
        self._stop = threading.Event()
        self._since_down: float | None = None
        self._thread: threading.Thread | None = None
        with self._lock:
            self._connection()  # fail now, at open, when the database is unreachable
        if listen:
            self._thread = threading.Thread(target=self._listen, name="state-listen", daemon=True)
            self._thread.start()
            self._listening.wait(self._timeout_s)

    def _connect(self) -> psycopg.Connection[Row]:
        return psycopg.connect(
            self._dsn,
            autocommit=True,
            row_factory=dict_row,
            connect_timeout=max(1, round(self._timeout_s)),
            options=f"-c statement_timeout={int(self._timeout_s * 1000)}",
        )

    def _connection(self) -> psycopg.Connection[Row]:
        """The query connection, (re)connected when it is gone; call with the lock held."""
        if self._conn is None or self._conn.closed or self._conn.broken:
            try:
                self._conn = self._connect()
            except psycopg.Error as e:
                self._conn = None
                raise unavailable("database", e) from None
        return self._conn

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        with self._lock:
            conn = self._connection()
            try:
                with conn.cursor() as cur:
                    return _PgTx(cur).query(sql, params)
            except psycopg.OperationalError as e:
                raise unavailable("database", e) from None

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        with self._lock:
            conn = self._connection()
            try:
                with conn.transaction(), conn.cursor() as cur:
                    yield _PgTx(cur)
            except psycopg.OperationalError as e:
                raise unavailable("database", e) from None

    # -- the change feed -------------------------------------------------------------

    def version(self) -> int:
        return self._version

    def healthy(self) -> bool:
        return self._listening.is_set()

    def down_for(self) -> float:
        """Seconds since the change feed lost the database (0 while it listens)."""
        since = self._since_down
        return 0.0 if since is None else time.monotonic() - since

    def _listen(self) -> None:
        backoff = 0.1
        while not self._stop.is_set():
            try:
                with psycopg.connect(self._dsn, autocommit=True,
                                     connect_timeout=max(1, round(self._timeout_s))) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    # Whatever changed while we were not listening: drop the caches once.
                    self._version += 1
                    self._listening.set()
                    self._since_down = None
                    backoff = 0.1
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=0.5, stop_after=64):
                            self._version += 1
                        conn.execute("SELECT 1")  # notices a dead server between notifies
            except psycopg.Error as e:
                if self._stop.is_set():
                    return
                if self._since_down is None:
                    log.error("state database unreachable, change feed lost: %s", type(e).__name__)
                    self._since_down = time.monotonic()
                # No version bump here: the cache may serve through a configured grace
                # period; reconnecting bumps it, since changes were missed meanwhile.
                self._listening.clear()
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 2.0)

    def status(self) -> dict[str, Any]:
        ok = self.healthy()
        return {"backend": "postgres", "ok": ok, "change_feed": "listening" if ok else "lost",
                "down_for_s": round(self.down_for(), 1)}

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self._timeout_s + 1)
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
