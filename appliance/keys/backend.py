"""The two engines under the control plane, behind one small protocol.

The repository (:mod:`appliance.keys.store`) writes its SQL once, with ``?`` placeholders
and the types both engines read alike; a backend runs it on its engine and says when the
data changed. SQLite (one box) is probed with ``PRAGMA data_version``; PostgreSQL (a
fleet) pushes every change to every replica with LISTEN/NOTIFY, so a replica learns of a
revocation within milliseconds and pays no query per request to find out.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from appliance.errors import EngineUnavailable

Row = dict[str, Any]


@dataclass(frozen=True)
class Dialect:
    """What differs between the engines in the repository's SQL, and nothing else."""

    name: str
    blob: str
    real: str

    def render(self, sql: str) -> str:
        """``{blob}``/``{real}`` type names filled in (migrations)."""
        return sql.replace("{blob}", self.blob).replace("{real}", self.real)


SQLITE = Dialect("sqlite", blob="BLOB", real="REAL")
POSTGRES = Dialect("postgres", blob="BYTEA", real="DOUBLE PRECISION")


class Tx(Protocol):
    """One open transaction."""

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run a statement; the number of rows it changed."""
        ...

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...


class StateBackend(Protocol):
    dialect: Dialect
    #: True when the engine pushes changes (no probe needed before trusting a cache).
    pushes_changes: bool

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...

    def transaction(self) -> AbstractContextManager[Tx]:
        """A context manager yielding a :class:`Tx`; commits on success."""
        ...

    def version(self) -> int:
        """A number that changes whenever any process changed the data."""
        ...

    def healthy(self) -> bool:
        """Whether cached reads may be trusted now (the change feed is connected)."""
        ...

    def down_for(self) -> float:
        """Seconds since the engine became unreachable (0.0 while it is reachable)."""
        ...

    def status(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


# -- SQLite -------------------------------------------------------------------------------


class _SqliteTx:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        return self._db.execute(sql, tuple(params)).rowcount

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return [dict(r) for r in self._db.execute(sql, tuple(params)).fetchall()]


class SqliteBackend:
    """``control.db`` in the data directory: WAL, one connection, a lock around it."""

    dialect = SQLITE
    pushes_changes = False

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._lock = threading.Lock()
        #: Commits through this connection: SQLite's data_version counts other connections'.
        self._own_commits = 0
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA busy_timeout=5000")

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        with self._lock:
            return [dict(r) for r in self._db.execute(sql, tuple(params)).fetchall()]

    @contextmanager
    def transaction(self) -> Iterator[Tx]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield _SqliteTx(self._db)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            self._own_commits += 1

    def version(self) -> int:
        """Changes whenever any connection commits. SQLite's ``data_version`` counts the
        other connections' commits only; this connection's own (a key revoked through the
        admin API or the console of this very process) are added, so they invalidate this
        process's caches too."""
        with self._lock:
            return int(self._db.execute("PRAGMA data_version").fetchone()[0]) + self._own_commits

    def healthy(self) -> bool:
        return True

    def down_for(self) -> float:
        return 0.0

    def status(self) -> dict[str, Any]:
        return {"backend": "sqlite", "path": str(self.path), "ok": True}

    def close(self) -> None:
        with self._lock:
            self._db.close()


def unavailable(what: str, err: BaseException) -> EngineUnavailable:
    """The one error a caller sees when the shared database is down (no DSN, no password)."""
    return EngineUnavailable(
        f"The shared {what} cannot be reached ({type(err).__name__}); the request was refused "
        "(fail closed)."
    )
