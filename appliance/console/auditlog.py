"""The console's view of the audit log: kept open between pages, refreshed on demand.

Opening the log for every page would cost an attach per segment and a rotation of every
writer. Instead one in-memory DuckDB keeps the sealed segments attached read-only (they
never change once sealed) and attaches new ones as writers seal them; a page that needs
recent records asks for a refresh, which has the running writers seal (as every reader
does, :mod:`appliance.audit.reader`) when the view is older than ``audit_refresh_s``.
The admin segment, which command-line processes reopen to append, is copied into memory
rather than held, so the console never blocks ``appliance audit`` commands; after
``audit_idle_close_s`` without a page the files are released altogether (a purge cannot
thin a segment a reader holds), while the roll-ups computed from them stay in memory: a
segment that comes back unchanged is attached again without being read again.

Per sealed segment the view keeps hourly roll-ups (requests, denials by rule, PII by
type, risk classes, cost, errors by tenant, application and model), computed once when
the segment is attached: the overview reads thousands of roll-up rows, never the
million records under them. All access is serialised by one lock and runs on a thread.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import duckdb

from appliance.audit.checkpoints import Checkpoint, load_external
from appliance.audit.proof import RecordProof, prove_record
from appliance.audit.reader import public_row, request_rotation
from appliance.audit.schema import render_schema_sql
from appliance.audit.segments import AuditPaths, SegmentLocked, attach, connect, db_key, segment_start
from appliance.config import Config

#: Columns shown in the audit trail's table (the detail page shows every column).
LIST_COLUMNS = (
    "segment_id", "seq", "kind", "request_id", "ts_start", "tenant", "user_id", "application",
    "model", "requested_model", "decision", "risk_class", "pii_total", "status", "route",
)

_ROLLUPS = (
    """CREATE TABLE IF NOT EXISTS roll_requests (
        segment_id VARCHAR, hour TIMESTAMP, tenant VARCHAR, application VARCHAR, model VARCHAR,
        decision VARCHAR, risk_class VARCHAR, n BIGINT, errors BIGINT, cost DOUBLE,
        tokens BIGINT, pii BIGINT)""",
    """CREATE TABLE IF NOT EXISTS roll_rules (
        segment_id VARCHAR, hour TIMESTAMP, tenant VARCHAR, application VARCHAR, model VARCHAR,
        rule VARCHAR, n BIGINT)""",
    """CREATE TABLE IF NOT EXISTS roll_pii (
        segment_id VARCHAR, hour TIMESTAMP, tenant VARCHAR, application VARCHAR, model VARCHAR,
        pii_type VARCHAR, n BIGINT)""",
)

_REQUESTS = "kind = 'request' AND purged IS NOT TRUE"
_DIMS = "date_trunc('hour', ts_start) AS hour, tenant, application, coalesce(model, requested_model) AS model"


@dataclass(frozen=True)
class AuditFilters:
    """What the audit trail and the overview may be narrowed by (None: any)."""

    since: dt.datetime | None = None
    until: dt.datetime | None = None
    tenant: str | None = None
    application: str | None = None
    user: str | None = None
    model: str | None = None
    decision: str | None = None
    risk_class: str | None = None
    pii_type: str | None = None
    request_id: str | None = None
    kind: str | None = None

    def where(self, *, rollup: bool = False) -> tuple[str, list[Any]]:
        """SQL conditions and parameters (``rollup``: the roll-up tables' columns)."""
        conds: list[str] = []
        params: list[Any] = []
        ts = "hour" if rollup else "ts_start"
        if self.since is not None:
            conds.append(f"{ts} >= ?")
            params.append(_naive(self.since) if not rollup else _hour(self.since))
        if self.until is not None:
            conds.append(f"{ts} < ?")
            params.append(_naive(self.until))
        for column, value in (("tenant", self.tenant), ("application", self.application)):
            if value is not None:
                conds.append(f"{column} = ?")
                params.append(value)
        if self.model is not None:
            conds.append("model = ?" if rollup else "(model = ? OR requested_model = ?)")
            params += [self.model] if rollup else [self.model, self.model]
        if not rollup:
            for column, value in (
                ("user_id", self.user), ("decision", self.decision), ("risk_class", self.risk_class),
                ("request_id", self.request_id), ("kind", self.kind),
            ):
                if value is not None:
                    conds.append(f"{column} = ?")
                    params.append(value)
            if self.pii_type is not None:
                # pii_counts is sorted JSON written by the appliance: {"PERSON":2,...}
                conds.append("contains(pii_counts, ?)")
                params.append(f'"{self.pii_type}":')
        return (" AND ".join(conds) or "TRUE"), params


def _naive(t: dt.datetime) -> dt.datetime:
    return t.astimezone(dt.UTC).replace(tzinfo=None) if t.tzinfo is not None else t


def _hour(t: dt.datetime) -> dt.datetime:
    return _naive(t).replace(minute=0, second=0, microsecond=0)


@dataclass
class _Segment:
    segment_id: str
    #: Qualified table names of its records and checkpoints.
    records: str
    checkpoints: str
    #: Attached (a sealed writer segment) or copied into memory (the admin segment).
    attached_as: str | None
    stamp: tuple[int, int]


@dataclass
class Page:
    rows: list[dict[str, Any]]
    total: int
    page: int
    pages: int


@dataclass
class RecordDetail:
    record: dict[str, Any]
    proof: RecordProof
    #: The stored payload's data key is gone (the tenant was shredded).
    shredded: bool
    has_payload: bool
    raw: dict[str, Any] = field(repr=False, default_factory=dict)


class AuditView:
    """See the module docstring. Methods block: call them on a thread."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._paths = AuditPaths.from_config(config)
        self._lock = threading.RLock()
        self._conn: duckdb.DuckDBPyConnection | None = None
        self._segments: dict[str, _Segment] = {}
        self._n = 0
        self._refreshed_at = 0.0
        self._used_at = 0.0
        self._leaves: dict[tuple[str, int], list[bytes]] = {}
        #: Filter menus (distinct values) per (dimension, tenant), valid until the
        #: segments change: every page shows them, and they change only on a refresh.
        self._menus: dict[tuple[str, str | None], list[str]] = {}
        #: Segments whose roll-ups are in memory, with the file stamp they were computed
        #: from: they outlive an idle release, so the next page re-attaches in
        #: milliseconds instead of re-reading every record.
        self._rolled: dict[str, tuple[int, int]] = {}
        #: Roll-ups computed (one per segment and file version): the cost a refresh paid.
        self.rollups_computed = 0

    # -- lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
            self._conn = None
            self._segments.clear()
            self._leaves.clear()
            self._menus.clear()
            self._rolled.clear()
            self._refreshed_at = 0.0

    def close_if_idle(self, idle_s: float) -> bool:
        """Release the log's files after ``idle_s`` without a page (the roll-ups stay)."""
        with self._lock:
            if self._conn is not None and self._segments and time.monotonic() - self._used_at > idle_s:
                self.release_files()
                return True
        return False

    def release_files(self) -> None:
        """Detach every segment file (a purge or a shred may then rewrite it) but keep the
        roll-ups computed from them: a segment that comes back unchanged (same size and
        modification time) is not rolled up again."""
        with self._lock:
            conn = self._conn
            if conn is None:
                return
            for seg in list(self._segments.values()):
                if seg.attached_as is not None:
                    conn.execute(f"DETACH {seg.attached_as}")
                else:
                    conn.execute(f"DROP TABLE IF EXISTS {seg.records}")
                    conn.execute(f"DROP TABLE IF EXISTS {seg.checkpoints}")
            self._segments.clear()
            self._leaves.clear()
            self._rebuild_views()
            self._refreshed_at = 0.0

    def _open(self) -> duckdb.DuckDBPyConnection:
        if self._conn is None:
            tmp = self._paths.tmp if self._paths.root.is_dir() else None
            conn = connect(tmp)
            conn.execute("SET threads = 2")
            conn.execute("CREATE SCHEMA IF NOT EXISTS empty")
            conn.execute("USE memory.empty")
            conn.execute(render_schema_sql())
            conn.execute("USE memory.main")
            for ddl in _ROLLUPS:
                conn.execute(ddl)
            self._conn = conn
            self._rebuild_views()
        return self._conn

    @contextmanager
    def _using(self, max_age_s: float | None) -> Iterator[duckdb.DuckDBPyConnection]:
        with self._lock:
            conn = self._open()
            self._used_at = time.monotonic()
            if max_age_s is not None and time.monotonic() - self._refreshed_at >= max_age_s:
                self._refresh(fresh=True)
            yield conn

    def refresh(self, fresh: bool = True) -> None:
        with self._lock:
            self._open()
            self._refresh(fresh)

    # -- attaching ------------------------------------------------------------------------

    def _refresh(self, fresh: bool) -> None:
        conn = self._open()
        key = db_key(self._config)
        asked_at = request_rotation(self._paths) if fresh and self._paths.segments.is_dir() else 0.0
        deadline = time.monotonic() + self._config.audit.reader_rotation_wait_s
        changed = False
        files = {p.stem: p for p in self._paths.segment_files()}
        for gone in [s for s in self._segments if s not in files]:
            self._drop(gone)
            changed = True
        for gone in [s for s in self._rolled if s not in files]:
            self._forget_rollups(conn, gone)  # released, then deleted (a purge, retention)
            changed = True
        pending = list(files.items())
        while pending:
            retry = []
            for segment_id, path in pending:
                st = path.stat()
                stamp = (st.st_mtime_ns, st.st_size)
                known = self._segments.get(segment_id)
                is_admin = segment_start(segment_id) is None
                if known is not None and (known.attached_as is not None or known.stamp == stamp):
                    continue  # sealed segments never change while attached
                try:
                    if is_admin:
                        self._copy_admin(conn, segment_id, path, key, stamp)
                    else:
                        self._attach(conn, segment_id, path, key, stamp)
                    changed = True
                except (SegmentLocked, duckdb.BinderException) as e:
                    # This process's own writer holds the file: DuckDB reports a handle
                    # conflict instead of a lock; both mean "being written".
                    if isinstance(e, duckdb.BinderException) and "already attached" not in str(e):
                        continue
                    start = segment_start(segment_id)
                    if fresh and start is not None and start < asked_at and time.monotonic() < deadline:
                        retry.append((segment_id, path))
                except duckdb.Error:
                    continue  # unreadable: `appliance audit verify` reports it
            pending = retry
            if pending:
                time.sleep(0.05)
        if changed:
            self._rebuild_views()
        self._refreshed_at = time.monotonic()

    def _attach(self, conn: duckdb.DuckDBPyConnection, segment_id: str, path: Any, key: str,
                stamp: tuple[int, int]) -> None:
        self._n += 1
        alias = f"s{self._n}"
        attach(conn, path, alias, key, read_only=True)
        seg = _Segment(segment_id, f"{alias}.records", f"{alias}.checkpoints", alias, stamp)
        self._segments[segment_id] = seg
        if self._rolled.get(segment_id) != stamp:
            self._forget_rollups(conn, segment_id)
            self._roll_up(conn, seg)

    def _copy_admin(self, conn: duckdb.DuckDBPyConnection, segment_id: str, path: Any, key: str,
                    stamp: tuple[int, int]) -> None:
        """Copy the admin segment's rows into memory and let its file go at once."""
        self._n += 1
        alias = f"a{self._n}"
        attach(conn, path, alias, key, read_only=True)
        try:
            old = self._segments.get(segment_id)
            if old is not None:
                self._drop(segment_id)
            conn.execute(f"CREATE TABLE memory.main.{alias}_records AS SELECT * FROM {alias}.records")
            conn.execute(f"CREATE TABLE memory.main.{alias}_checkpoints AS SELECT * FROM {alias}.checkpoints")
        finally:
            conn.execute(f"DETACH {alias}")
        seg = _Segment(segment_id, f"memory.main.{alias}_records", f"memory.main.{alias}_checkpoints", None, stamp)
        self._segments[segment_id] = seg
        self._forget_rollups(conn, segment_id)  # small, and appended to: always rolled up anew
        self._roll_up(conn, seg)

    def _drop(self, segment_id: str) -> None:
        conn = self._conn
        seg = self._segments.pop(segment_id)
        if conn is None:
            return
        self._forget_rollups(conn, segment_id)
        if seg.attached_as is not None:
            conn.execute(f"DETACH {seg.attached_as}")
        else:
            conn.execute(f"DROP TABLE IF EXISTS {seg.records}")
            conn.execute(f"DROP TABLE IF EXISTS {seg.checkpoints}")
        self._leaves = {k: v for k, v in self._leaves.items() if k[0] != segment_id}

    def _forget_rollups(self, conn: duckdb.DuckDBPyConnection, segment_id: str) -> None:
        for table in ("roll_requests", "roll_rules", "roll_pii"):
            conn.execute(f"DELETE FROM {table} WHERE segment_id = ?", [segment_id])
        self._rolled.pop(segment_id, None)

    def _roll_up(self, conn: duckdb.DuckDBPyConnection, seg: _Segment) -> None:
        sid = seg.segment_id
        src = seg.records
        self._rolled[sid] = seg.stamp
        self.rollups_computed += 1
        conn.execute(
            f"INSERT INTO roll_requests SELECT ?, {_DIMS}, decision, risk_class, count(*),"
            " count(*) FILTER (WHERE decision = 'error' OR status >= 500),"
            " coalesce(sum(cost_usd), 0), coalesce(sum(total_tokens), 0), coalesce(sum(pii_total), 0)"
            f" FROM {src} WHERE {_REQUESTS} GROUP BY ALL",
            [sid],
        )
        conn.execute(
            f"INSERT INTO roll_rules SELECT ?, {_DIMS}, r.value ->> '$' AS rule, count(*)"
            f" FROM {src}, json_each({src}.policy_rules) r"
            f" WHERE {_REQUESTS} AND decision = 'deny' GROUP BY ALL",
            [sid],
        )
        conn.execute(
            f"INSERT INTO roll_pii SELECT ?, {_DIMS}, p.key AS pii_type, sum(p.value::BIGINT)"
            f" FROM {src}, json_each({src}.pii_counts) p WHERE {_REQUESTS} GROUP BY ALL",
            [sid],
        )

    def _rebuild_views(self) -> None:
        conn = self._conn
        assert conn is not None
        self._menus.clear()
        for table in ("records", "checkpoints"):
            parts = [f"SELECT NULL::VARCHAR AS segment_id, * FROM memory.empty.{table}"]
            for seg in self._segments.values():
                source = seg.records if table == "records" else seg.checkpoints
                parts.append(f"SELECT '{seg.segment_id}' AS segment_id, * FROM {source}")
            conn.execute(f"CREATE OR REPLACE VIEW memory.main.{table} AS " + " UNION ALL BY NAME ".join(parts))

    # -- reading --------------------------------------------------------------------------

    def search(self, filters: AuditFilters, *, page: int = 1, page_size: int = 50,
               max_age_s: float | None = None) -> Page:
        """One page of matching records, newest first, with the number that match."""
        where, params = filters.where()
        with self._using(max_age_s) as conn:
            cur = conn.cursor()
            total = int(cur.execute(f"SELECT count(*) FROM records WHERE {where}", params).fetchall()[0][0])
            pages = max(1, -(-total // page_size))
            page = min(max(1, page), pages)
            offset = (page - 1) * page_size
            cols = ", ".join(LIST_COLUMNS)
            rows = cur.execute(
                f"SELECT {cols} FROM records WHERE {where}"
                f" ORDER BY ts_start DESC, segment_id DESC, seq DESC LIMIT {int(page_size)} OFFSET {int(offset)}",
                params,
            ).fetchall()
        return Page([public_row(dict(zip(LIST_COLUMNS, r, strict=True))) for r in rows], total, page, pages)

    def locate(self, request_id: str, tenant: str | None = None,
               max_age_s: float | None = None) -> tuple[str, int] | None:
        """(segment id, seq) of a request's record (the latest, should an id repeat)."""
        cond, params = "request_id = ?", [request_id]
        if tenant is not None:
            cond, params = cond + " AND tenant = ?", [request_id, tenant]
        with self._using(max_age_s) as conn:
            got = conn.cursor().execute(
                f"SELECT segment_id, seq FROM records WHERE {cond} ORDER BY ts_start DESC LIMIT 1", params
            ).fetchall()
        return (str(got[0][0]), int(got[0][1])) if got else None

    def raw_record(self, segment_id: str, seq: int) -> dict[str, Any] | None:
        with self._using(None) as conn:
            seg = self._segments.get(segment_id)
            if seg is None:
                return None
            cur = conn.cursor()
            cur.execute(f"SELECT * FROM {seg.records} WHERE seq = ?", [seq])
            names = [d[0] for d in cur.description or ()]
            got = cur.fetchall()
        return dict(zip(names, got[0], strict=True)) if got else None

    def detail(self, segment_id: str, seq: int, public: Any, shredded_keys: set[str] | None = None) -> RecordDetail | None:
        """A record with its proof (hash, link, signed checkpoint and Merkle root)."""
        with self._using(None) as conn:
            raw = self.raw_record(segment_id, seq)
            if raw is None:
                return None
            seg = self._segments[segment_id]
            cur = conn.cursor()
            prev = None
            if seq > 0:
                got = cur.execute(f"SELECT leaf_hash FROM {seg.records} WHERE seq = ?", [seq - 1]).fetchall()
                prev = bytes(got[0][0]) if got and got[0][0] is not None else None
            checkpoints = self._checkpoints(conn, seg)

            def leaves(n: int) -> list[bytes]:
                cached = self._leaves.get((segment_id, n))
                if cached is None:
                    rows = cur.execute(
                        f"SELECT leaf_hash FROM {seg.records} WHERE seq < ? ORDER BY seq", [n]
                    ).fetchall()
                    cached = [bytes(r[0]) for r in rows]
                    if len(self._leaves) > 32:
                        self._leaves.clear()
                    self._leaves[(segment_id, n)] = cached
                return cached

            proof = prove_record(segment_id, raw, prev, checkpoints, leaves, public)
        record = public_row(raw)
        record["segment_id"] = segment_id
        key_id = raw.get("payload_key_id")
        has_payload = raw.get("payload_ct") is not None
        shredded = bool(has_payload and shredded_keys is not None and key_id not in shredded_keys)
        return RecordDetail(record, proof, shredded, has_payload, raw)

    def _checkpoints(self, conn: duckdb.DuckDBPyConnection, seg: _Segment) -> list[Checkpoint]:
        rows = conn.cursor().execute(
            f"SELECT tree_size, root_hash, time_us, sealed, key_id, signature FROM {seg.checkpoints}"
        ).fetchall()
        cps = [Checkpoint(seg.segment_id, int(r[0]), str(r[1]), int(r[2]), bool(r[3]), str(r[4]), str(r[5]))
               for r in rows]
        cps += [cp for cp in _external(self._paths.checkpoints) if cp.segment_id == seg.segment_id]
        return cps

    def overview(self, filters: AuditFilters, *, max_age_s: float | None = None) -> dict[str, Any]:
        """Totals, time series and breakdowns for the overview page, from the roll-ups.

        One grouped scan of the request roll-up (GROUPING SETS: per hour, per risk class,
        per tenant, application and model) gives the series, the totals and every
        breakdown; the rules and PII roll-ups are one query each."""
        where, params = filters.where(rollup=True)
        with self._using(max_age_s) as conn:
            cur = conn.cursor()
            grouped = cur.execute(
                "SELECT grouping(hour), grouping(risk_class), grouping(tenant), grouping(application),"
                " grouping(model), hour, risk_class, tenant, application, model, sum(n),"
                " coalesce(sum(n) FILTER (WHERE decision = 'deny'), 0),"
                " coalesce(sum(n) FILTER (WHERE decision = 'rate_limited'), 0),"
                " sum(errors), sum(cost), sum(tokens), sum(pii)"
                f" FROM roll_requests WHERE {where}"
                " GROUP BY GROUPING SETS ((hour), (risk_class), (tenant), (application), (model))",
                params,
            ).fetchall()
            rules = cur.execute(
                f"SELECT rule, sum(n) FROM roll_rules WHERE {where} GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 15", params
            ).fetchall()
            pii = cur.execute(
                f"SELECT pii_type, sum(n) FROM roll_pii WHERE {where} GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 20", params
            ).fetchall()
        hours = sorted((r for r in grouped if r[0] == 0), key=lambda r: r[5])
        totals = {"requests": 0, "denied": 0, "rate_limited": 0, "errors": 0, "cost": 0.0, "tokens": 0, "pii": 0}
        for r in hours:
            for key, value in zip(totals, r[10:], strict=True):
                totals[key] += value or 0
        bucket = "day" if hours and hours[-1][5] - hours[0][5] > dt.timedelta(days=3) else "hour"
        series: dict[dt.datetime, list[float]] = {}
        for r in hours:
            at = r[5].replace(hour=0) if bucket == "day" else r[5]
            point = series.setdefault(at, [0, 0, 0, 0.0])
            for i, value in enumerate((r[10], r[11], r[13], r[14])):
                point[i] += value or 0

        def ranked(flag: int, column: int, limit: int | None) -> list[tuple[Any, ...]]:
            rows = [r for r in grouped if r[flag] == 0]
            rows.sort(key=lambda r: (-(r[10] or 0), str(r[column])))
            return rows[:limit]

        by = {dim: ranked(flag, flag + 5, 20) for dim, flag in (("tenant", 2), ("application", 3), ("model", 4))}
        return {
            "bucket": bucket,
            "totals": totals,
            "series": [
                {"t": _iso(t), "requests": int(p[0]), "denied": int(p[1]), "errors": int(p[2]), "cost": float(p[3])}
                for t, p in sorted(series.items())
            ],
            "rules": [{"rule": r[0], "n": int(r[1])} for r in rules],
            "pii": [{"type": r[0], "n": int(r[1])} for r in pii],
            "risk": [{"class": r[6] or "none", "n": int(r[10])} for r in ranked(1, 6, None)],
            "by": {dim: [{"name": r[flag + 5] or "-", "requests": int(r[10]), "denied": int(r[11]),
                          "errors": int(r[13] or 0), "cost": float(r[14] or 0.0)} for r in rows]
                   for (dim, rows), flag in zip(by.items(), (2, 3, 4), strict=True)},
        }

    def distinct(self, column: str, tenant: str | None = None, max_age_s: float | None = None) -> list[str]:
        """Values seen in one roll-up dimension (for the filter menus)."""
        if column not in ("tenant", "application", "model", "risk_class", "decision"):
            raise ValueError(column)
        cond, params = ("tenant = ?", [tenant]) if tenant is not None else ("TRUE", [])
        return self._menu(
            column, tenant, max_age_s,
            f"SELECT DISTINCT {column} FROM roll_requests WHERE {column} IS NOT NULL AND {cond} ORDER BY 1", params,
        )

    def pii_types(self, tenant: str | None = None) -> list[str]:
        cond, params = ("tenant = ?", [tenant]) if tenant is not None else ("TRUE", [])
        return self._menu("pii_type", tenant, None,
                          f"SELECT DISTINCT pii_type FROM roll_pii WHERE {cond} ORDER BY 1", params)

    def _menu(self, name: str, tenant: str | None, max_age_s: float | None, sql: str,
              params: list[Any]) -> list[str]:
        with self._using(max_age_s) as conn:
            cached = self._menus.get((name, tenant))
            if cached is None:
                cached = [str(r[0]) for r in conn.cursor().execute(sql, params).fetchall()]
                self._menus[(name, tenant)] = cached
        return list(cached)

    def policy_inputs(self, since: dt.datetime, limit: int,
                      max_age_s: float | None = None) -> tuple[list[dict[str, Any]], int]:
        """Recorded decision inputs since ``since``, newest first (no payloads), and how
        many request records of the period carry none (recorded before inputs were kept)."""
        with self._using(max_age_s) as conn:
            cur = conn.cursor()
            cond = f"{_REQUESTS} AND ts_start >= ? AND policy_revision IS NOT NULL"
            rows = cur.execute(
                "SELECT request_id, ts_start, tenant, application, coalesce(model, requested_model),"
                " decision, json_extract_string(extra, '$.policy_input') FROM records"
                f" WHERE {cond} AND json_extract_string(extra, '$.policy_input') IS NOT NULL"
                f" ORDER BY ts_start DESC LIMIT {int(limit)}",
                [_naive(since)],
            ).fetchall()
            missing = cur.execute(
                f"SELECT count(*) FROM records WHERE {cond} AND json_extract_string(extra, '$.policy_input') IS NULL",
                [_naive(since)],
            ).fetchall()[0][0]
        return [
            {"request_id": r[0], "ts": _iso(r[1]), "tenant": r[2], "application": r[3], "model": r[4],
             "decision": r[5], "input": r[6]}
            for r in rows
        ], int(missing)

    def sql(self, query: str, params: Sequence[Any] = (), max_age_s: float | None = None) -> list[tuple[Any, ...]]:
        with self._using(max_age_s) as conn:
            return conn.cursor().execute(query, list(params)).fetchall()

    @property
    def segment_count(self) -> int:
        return len(self._segments)


def _iso(value: Any) -> str | None:
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=dt.UTC).isoformat().replace("+00:00", "Z")
    return None if value is None else str(value)


@lru_cache(maxsize=4)
def _external_cached(directory: str, stamp: tuple[int, int]) -> tuple[Checkpoint, ...]:
    from pathlib import Path

    return tuple(load_external(Path(directory)))


def _external(directory: Any) -> tuple[Checkpoint, ...]:
    try:
        st = directory.stat()
    except FileNotFoundError:
        return ()
    return _external_cached(str(directory), (st.st_mtime_ns, st.st_size))


def parse_filters(query: Mapping[str, str], tenant_scope: str | None) -> AuditFilters:
    """Filters from a query string; a tenant-scoped viewer's tenant overrides any asked."""

    def text(name: str) -> str | None:
        value = (query.get(name) or "").strip()
        return value or None

    def when(name: str, end: bool = False) -> dt.datetime | None:
        value = text(name)
        if value is None:
            return None
        try:
            if len(value) == 10:
                day = dt.date.fromisoformat(value)
                t = dt.datetime.combine(day + dt.timedelta(days=1) if end else day, dt.time())
                return t.replace(tzinfo=dt.UTC)
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(name) from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)

    return AuditFilters(
        since=when("since"),
        until=when("until", end=True),
        tenant=tenant_scope if tenant_scope is not None else text("tenant"),
        application=text("application"),
        user=text("user"),
        model=text("model"),
        decision=text("decision"),
        risk_class=text("risk_class"),
        pii_type=text("pii_type"),
        request_id=text("request_id"),
        kind=text("kind"),
    )
