"""Reading the audit log while servers write it.

A reader asks running writers to seal their current segment (it touches
``rotate.request``; each writer notices within ~50 ms, signs a sealed checkpoint and
starts a new segment with its next record), waits until every segment that began before
the request is released, then attaches all segment files read-only into one in-memory
DuckDB. Traffic never pauses: records that arrive meanwhile go into the new segments.

``records`` (and ``checkpoints``) in the reader's connection are views over every
attached segment, with ``segment_id`` added; SQL report queries run against them.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import duckdb
import orjson

from appliance.audit.schema import COLUMNS, render_schema_sql
from appliance.audit.segments import (
    AuditPaths,
    SegmentLocked,
    attach,
    connect,
    db_key,
    segment_start,
)
from appliance.config import Config

_JSON_COLUMNS = frozenset(c.name for c in COLUMNS if c.kind == "json")
_HIDDEN = frozenset({"payload_nonce", "payload_ct", "prev_hash", "leaf_hash"})

#: search() filter name -> SQL condition on the ``records`` view.
_FILTERS: Mapping[str, str] = {
    "since": "ts_start >= ?",
    "until": "ts_start < ?",
    "tenant": "tenant = ?",
    "user": "user_id = ?",
    "application": "application = ?",
    "model": "(model = ? OR requested_model = ?)",
    "decision": "decision = ?",
    "risk_class": "risk_class = ?",
    "request_id": "request_id = ?",
    "kind": "kind = ?",
}


def request_rotation(paths: AuditPaths) -> float:
    """Ask every running writer to seal its segment; returns the request time."""
    paths.root.mkdir(parents=True, exist_ok=True)
    now = time.time()
    with open(paths.rotate_request, "a"):
        pass
    os.utime(paths.rotate_request, (now, now))
    return now


def public_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A record as plain JSON-able data: JSON columns parsed, times in ISO 8601 (UTC)."""
    out: dict[str, Any] = {}
    for k, v in row.items():
        if k in _HIDDEN:
            continue
        if k in _JSON_COLUMNS and isinstance(v, str):
            v = orjson.loads(v)
        elif isinstance(v, dt.datetime):
            v = v.replace(tzinfo=dt.UTC).isoformat().replace("+00:00", "Z")
        out[k] = v
    out["has_payload"] = row.get("payload_ct") is not None
    return out


@dataclass
class AuditReader:
    """An in-memory DuckDB with every readable segment attached read-only."""

    conn: duckdb.DuckDBPyConnection
    paths: AuditPaths
    #: segment_id -> attach alias
    segments: dict[str, str] = field(default_factory=dict)
    #: segments that were being written (or failed to open): name -> reason
    skipped: dict[str, str] = field(default_factory=dict)
    #: Fleet readers: segment_id -> the replica that wrote it.
    replicas: dict[str, str] = field(default_factory=dict)
    #: Where the checkpoints kept outside the segments are (None: the data dir's, mirror).
    checkpoint_sources: list[Path] | None = None
    #: Fleet readers: replicas that did not seal on request (newest records may be missing).
    silent: list[str] = field(default_factory=list)

    def checkpoint_dirs(self) -> list[Path]:
        if self.checkpoint_sources is not None:
            return list(self.checkpoint_sources)
        return self.paths.checkpoint_dirs()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self.conn.close()

    def search(
        self, *, limit: int | None = None, raw: bool = False, include_purged: bool = False, **filters: Any
    ) -> Iterator[dict[str, Any]]:
        """Records matching every given filter (see ``_FILTERS``), oldest first.

        Purged records (only hashes and times left) are skipped unless ``include_purged``.
        """
        where: list[str] = [] if include_purged else ["purged IS NOT TRUE"]
        params: list[Any] = []
        for name, value in filters.items():
            if value is None:
                continue
            if name not in _FILTERS:
                raise TypeError(f"unknown audit filter {name!r}")
            where.append(_FILTERS[name])
            if isinstance(value, dt.datetime) and value.tzinfo is not None:
                value = value.astimezone(dt.UTC).replace(tzinfo=None)
            params.extend([value] * _FILTERS[name].count("?"))
        sql = "SELECT * FROM records"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY ts_start, segment_id, seq"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        cur = self.conn.cursor()
        reader = cur.execute(sql, params).fetch_record_batch(2048)
        for batch in reader:
            for row in batch.to_pylist():
                yield row if raw else public_row(row)

    def get(self, request_id: str) -> dict[str, Any] | None:
        """The record of one request (the latest, should a request id repeat)."""
        found = None
        for row in self.search(request_id=request_id):
            found = row
        return found

    def sql(self, query: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        """Run a read-only query over the ``records`` / ``checkpoints`` views."""
        return self.conn.cursor().execute(query, params or []).fetchall()


def _create_views(conn: duckdb.DuckDBPyConnection, segments: Mapping[str, str]) -> None:
    conn.execute("CREATE SCHEMA IF NOT EXISTS empty")
    conn.execute("USE memory.empty")
    conn.execute(render_schema_sql())
    conn.execute("USE memory.main")
    for table in ("records", "checkpoints"):
        parts = [f"SELECT NULL::VARCHAR AS segment_id, * FROM memory.empty.{table}"]
        for segment_id, alias in segments.items():
            quoted = segment_id.replace("'", "''")  # a file's name: a literal, never SQL
            parts.append(f"SELECT '{quoted}' AS segment_id, * FROM {alias}.{table}")
        conn.execute(f"CREATE OR REPLACE VIEW {table} AS " + " UNION ALL BY NAME ".join(parts))


def attach_all(
    config: Config, *, fresh: bool = True, wait_s: float | None = None, key: str | None = None
) -> AuditReader:
    """Attach every segment read-only; with ``fresh``, first have running writers seal.

    With ``[audit] read_from = "archive"`` (the CLI's ``--fleet``) the segments are every
    replica's, from the archive (:mod:`appliance.audit.archive`).
    """
    paths = AuditPaths.from_config(config)
    key = key if key is not None else db_key(config)
    if config.audit.read_from == "archive":
        return _attach_fleet(config, paths, key, fresh=fresh)
    wait = config.audit.reader_rotation_wait_s if wait_s is None else wait_s
    asked_at = request_rotation(paths) if fresh and paths.segments.is_dir() else 0.0
    conn = connect(paths.tmp if paths.root.is_dir() else None)
    reader = AuditReader(conn=conn, paths=paths)
    deadline = time.monotonic() + wait
    pending = list(paths.segment_files())
    n = 0
    while pending:
        retry: list[Path] = []
        for path in pending:
            alias = f"s{n}"
            try:
                attach(conn, path, alias, key, read_only=True)
            except SegmentLocked:
                start = segment_start(path.stem)
                if fresh and (start is None or start < asked_at) and time.monotonic() < deadline:
                    retry.append(path)
                else:
                    reader.skipped[path.stem] = "being written"
                continue
            except duckdb.Error as e:
                reader.skipped[path.stem] = f"unreadable: {type(e).__name__}"
                continue
            n += 1
            reader.segments[path.stem] = alias
        pending = retry
        if pending:
            time.sleep(0.05)
    _create_views(conn, reader.segments)
    return reader


def _attach_fleet(config: Config, paths: AuditPaths, key: str, *, fresh: bool) -> AuditReader:
    from appliance.audit.archive import fetch_fleet

    fleet = fetch_fleet(config, paths, fresh=fresh)
    conn = connect(paths.tmp if paths.root.is_dir() else None)
    reader = AuditReader(conn=conn, paths=paths, replicas=dict(fleet.replicas),
                         checkpoint_sources=[fleet.checkpoint_dir] if fleet.checkpoint_dir else [],
                         silent=fleet.silent)
    for segment_id, why in fleet.problems.items():
        reader.skipped[segment_id] = f"unreadable: {why}"
    for n, (segment_id, path) in enumerate(sorted(fleet.files.items())):
        alias = f"s{n}"
        try:
            attach(conn, path, alias, key, read_only=True)
        except duckdb.Error as e:
            reader.skipped[segment_id] = f"unreadable: {type(e).__name__}"
            continue
        reader.segments[segment_id] = alias
    _create_views(conn, reader.segments)
    return reader


def open_reader(config: Config, *, fresh: bool = True, wait_s: float | None = None) -> AuditReader:
    """The read API for other parts of the appliance (reports, policy explain, metering).

    ``fresh=True`` makes the reader see every record acknowledged before the call, at the
    cost of one segment rotation per running writer. Close the reader (or use ``with``).
    """
    return attach_all(config, fresh=fresh, wait_s=wait_s)


def iter_segment_paths(paths: AuditPaths) -> list[Path]:
    return paths.segment_files()
