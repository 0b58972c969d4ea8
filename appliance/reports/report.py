"""Building a report: open the audit log read-only, fix the scope, run the kind's SQL.

:func:`open_report` yields a :class:`Report` whose summary and sections are small,
already-aggregated tables, and whose detail rows stay in DuckDB until a format writer
streams them out in Arrow batches: no step ever holds all records in memory.
"""

from __future__ import annotations

import datetime as dt
import decimal
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from appliance.audit.keys import load_public_key, public_key_id
from appliance.audit.reader import AuditReader, open_reader
from appliance.audit.segments import AuditPaths
from appliance.config import Config
from appliance.pii.special.categories import CATEGORIES as SPECIAL_CATEGORY_NAMES
from appliance.reports import sql as sqlfiles
from appliance.reports.basis import Basis, SegmentBasis, Verification, iso, signed_checkpoints
from appliance.reports.incident import deadline_rows
from appliance.reports.kinds import ChartSpec, KindSpec, kinds
from appliance.reports.request import ReportRequest

_SCOPE_SETUP = ("scope", "third_country")


class ReportError(Exception):
    """The report cannot be produced (no audit log, unknown kind, bad key)."""


@dataclass(frozen=True)
class Section:
    name: str
    title: str
    columns: tuple[str, ...]
    rows: list[dict[str, Any]]
    note: str = ""
    chart: ChartSpec | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "note": self.note,
            "columns": list(self.columns),
            "rows": [{k: plain(v) for k, v in r.items()} for r in self.rows],
        }


@dataclass
class Detail:
    """The detail rows of a report, streamed from DuckDB on demand."""

    conn: duckdb.DuckDBPyConnection
    sql: str
    title: str
    _count: int | None = None

    def count(self) -> int:
        if self._count is None:
            row = self.conn.execute(f"SELECT count(*) FROM (\n{self.sql}\n)").fetchone()
            self._count = int(row[0]) if row else 0
        return self._count

    def batches(self, size: int = 65_536) -> pa.RecordBatchReader:
        """Every detail row, in order, as Arrow record batches of at most ``size`` rows."""
        return self.conn.execute(self.sql).fetch_record_batch(size)

    def preview(self, limit: int) -> Section:
        cur = self.conn.execute(f"{self.sql}\nLIMIT {int(limit)}")
        columns = tuple(d[0] for d in cur.description or ())
        rows = [dict(zip(columns, r, strict=True)) for r in cur.fetchall()]
        return Section("detail", self.title, columns, rows)


@dataclass
class Report:
    spec: KindSpec
    request: ReportRequest
    generated_at: dt.datetime
    basis: Basis
    summary: dict[str, Any]
    sections: list[Section]
    detail: Detail
    #: Query files used, name -> SHA-256 (so readers can tell which queries ran).
    queries: dict[str, str]
    #: Statements about the configuration in force (retention, security measures).
    controls: dict[str, Any] = field(default_factory=dict)
    #: Statements a person supplied (incident details), shown as given.
    statements: dict[str, Any] = field(default_factory=dict)

    def meta(self) -> dict[str, Any]:
        """Everything but the detail rows, as plain JSON-able data."""
        r = self.request
        return {
            "report": {
                "kind": self.spec.name,
                "title": self.spec.title,
                "legal_basis": self.spec.basis,
                "description": self.spec.description,
                "generated_at": iso(self.generated_at),
                "period": {
                    "from": r.period.first.isoformat(),
                    "to": r.period.last.isoformat(),
                    "start_utc": iso(r.period.start),
                    "end_utc_exclusive": iso(r.period.end),
                },
                "filters": {
                    "tenant": r.tenant,
                    "application": r.application,
                    "request_ids": list(r.request_ids),
                },
                "time_bucket": r.period.bucket(),
                "queries": self.queries,
            },
            "basis": self.basis.as_dict(),
            "summary": {k: plain(v) for k, v in self.summary.items()},
            "summary_labels": dict(self.spec.summary),
            "findings": self.findings(),
            "controls": self.controls,
            "statements": self.statements,
            "sections": {s.name: s.as_dict() for s in self.sections},
        }

    def findings(self) -> list[str]:
        return self.spec.findings(self.summary) if self.spec.findings else []


def plain(value: Any) -> Any:
    """A value as JSON-able data: times in ISO 8601 UTC, decimals as numbers, bytes as hex."""
    if isinstance(value, dt.datetime):
        return iso(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    return value


def _rows(
    conn: duckdb.DuckDBPyConnection, sql: str
) -> tuple[tuple[str, ...], list[dict[str, Any]]]:
    cur = conn.execute(sql)
    columns = tuple(d[0] for d in cur.description or ())
    return columns, [dict(zip(columns, r, strict=True)) for r in cur.fetchall()]


def _security_measures(config: Config) -> list[str]:
    p, s = config.pipeline, config.server
    measures = [
        (
            "Audit log encrypted at rest (AES-GCM database encryption), payloads under per-tenant "
            "AES-256-GCM data keys wrapped by a master key"
        ),
        "Every audit record hash-chained; Merkle checkpoints signed with Ed25519",
        "API keys stored only as salted HMAC-SHA256 digests",
    ]
    if p.redact:
        measures.append("Personal data detected and pseudonymised before forwarding (placeholders)")
    if p.decide:
        measures.append("Every request decided by a versioned policy (Rego) before forwarding")
    if p.classify:
        measures.append("AI Act risk classification and safety screening of requests and answers")
    if s.tls_cert is not None:
        measures.append(
            "TLS on the client interface"
            + (" with client certificates (mutual TLS)" if s.tls_client_ca else "")
        )
    return measures


def _controls(config: Config) -> dict[str, Any]:
    return {
        "retention_days": config.audit.retention_days,
        "retention_days_by_tenant": dict(config.audit.tenant_retention_days),
        "security_measures": _security_measures(config),
        "pipeline": config.pipeline.model_dump(),
    }


def _load_apps(config: Config, tenant: str | None) -> list[tuple[Any, ...]]:
    from appliance.keys.store import control_plane_path, open_control_plane

    if config.state.backend == "sqlite" and not control_plane_path(config.storage.data_dir).exists():
        return []
    control = open_control_plane(config)
    try:
        apps = control.list_apps(tenant)
    finally:
        control.close()
    return [
        (a["tenant"], a["name"], a["purpose"], a["annex_iii"], a["risk_class"],
         ", ".join(f"{k}: {v}" for k, v in sorted(a["art9_basis"].items())) or None)
        for a in apps
    ]


def _setup(
    conn: duckdb.DuckDBPyConnection,
    config: Config,
    request: ReportRequest,
    coverage: Mapping[str, int],
    scope_sql: sqlfiles.QueryFile,
    memory_limit: str,
) -> None:
    conn.execute(f"SET memory_limit = '{memory_limit}'")
    conn.execute("SET preserve_insertion_order = true")
    conn.execute(
        "CREATE OR REPLACE TEMP TABLE params AS SELECT ?::TIMESTAMP AS period_start,"
        " ?::TIMESTAMP AS period_end, ?::VARCHAR AS tenant, ?::VARCHAR AS application,"
        " ?::VARCHAR AS bucket, ?::VARCHAR[] AS request_ids, ?::INTEGER AS retention_days",
        [
            request.period.start,
            request.period.end,
            request.tenant,
            request.application,
            request.period.bucket(),
            list(request.request_ids),
            config.audit.retention_days,
        ],
    )
    conn.execute("CREATE OR REPLACE TEMP TABLE coverage (segment_id VARCHAR, tree_size BIGINT)")
    if coverage:
        conn.executemany(
            "INSERT INTO coverage VALUES (?, ?)", [[k, v] for k, v in coverage.items()]
        )
    conn.execute(
        "CREATE OR REPLACE TEMP TABLE applications (tenant VARCHAR, name VARCHAR, purpose VARCHAR,"
        " annex_iii VARCHAR, risk_class VARCHAR, art9_basis VARCHAR)"
    )
    apps = _load_apps(config, request.tenant)
    if apps:
        conn.executemany(
            "INSERT INTO applications VALUES (?, ?, ?, ?, ?, ?)", [list(a) for a in apps]
        )
    conn.execute(
        "CREATE OR REPLACE TEMP TABLE special_categories (entity_type VARCHAR, article VARCHAR)"
    )
    conn.executemany(
        "INSERT INTO special_categories VALUES (?, ?)",
        [[t, f"Art. 9(1): {what}"] for t, what in SPECIAL_CATEGORY_NAMES.items()],
    )
    conn.execute("CREATE OR REPLACE TEMP TABLE retention (tenant VARCHAR, days INTEGER)")
    if config.audit.tenant_retention_days:
        conn.executemany(
            "INSERT INTO retention VALUES (?, ?)",
            [[k, v] for k, v in config.audit.tenant_retention_days.items()],
        )
    for name in _SCOPE_SETUP:
        conn.execute(scope_sql[name])


def _verification(config: Config, public: Ed25519PublicKey) -> Verification:
    from appliance.audit.verify import verify

    result = verify(config, public, fresh=False)
    return Verification(
        ok=result.ok,
        segments=len(result.segments),
        records=sum(s.records for s in result.segments),
        problems=tuple(str(p) for p in result.problems),
        warnings=tuple(result.warnings),
    )


def _basis(
    conn: duckdb.DuckDBPyConnection,
    reader: AuditReader,
    scope_sql: sqlfiles.QueryFile,
    kind_sql: sqlfiles.QueryFile,
    checkpoints: Mapping[str, Any],
    public: Ed25519PublicKey,
    verification: Verification | None,
) -> Basis:
    # a kind may narrow the basis to its own selection (incident: the requests concerned)
    source = kind_sql if "segments_in_scope" in kind_sql else scope_sql
    _, seg_rows = _rows(conn, source["segments_in_scope"])
    segments = tuple(
        SegmentBasis(
            segment_id=r["segment_id"],
            records=int(r["records"]),
            first_record=r["first_record"],
            last_record=r["last_record"],
            checkpoint=checkpoints[r["segment_id"]],
        )
        for r in seg_rows
    )
    _, nc = _rows(conn, scope_sql["not_covered"])
    return Basis(
        public_key_id=public_key_id(public),
        segments=segments,
        not_covered=int(nc[0]["records"]) if nc else 0,
        skipped=dict(reader.skipped),
        verification=verification,
    )


@contextmanager
def open_report(
    config: Config,
    request: ReportRequest,
    *,
    public_key: Path | None = None,
    sql_dir: Path | None = None,
    memory_limit: str = "256MB",
    fresh: bool = True,
    now: dt.datetime | None = None,
    on_step: Callable[[str], None] | None = None,
) -> Iterator[Report]:
    """Open the audit log and compute ``request``'s report; detail rows stream on demand.

    ``public_key`` is the Ed25519 key checkpoints must verify under (an auditor passes
    the copy they trust); by default the appliance's own public key file.
    """
    spec = kinds().get(request.kind)
    if spec is None:
        raise ReportError(f"unknown report kind {request.kind!r}; known: {', '.join(kinds())}")
    paths = AuditPaths.from_config(config)
    key_path = public_key or paths.public_key
    if not key_path.exists():
        raise ReportError(
            f"no audit public key at {key_path}: is there an audit log under {paths.root}?"
        )
    public = load_public_key(key_path)
    generated_at = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).replace(tzinfo=None)
    scope_sql = sqlfiles.load("_scope", sql_dir)
    kind_sql = sqlfiles.load(spec.name, sql_dir)
    step = on_step or (lambda _msg: None)
    step("opening the audit log (running writers seal their segments)")
    with open_reader(config, fresh=fresh) as reader:
        checkpoints = signed_checkpoints(reader, public)
        verification = None
        if request.verify or spec.name == "art12":
            step("verifying the hash chain and signed checkpoints (reads every record)")
            verification = _verification(config, public)
        step(f"computing the {spec.name} report")
        conn = reader.conn
        _setup(
            conn,
            config,
            request,
            {k: cp.tree_size for k, cp in checkpoints.items()},
            scope_sql,
            memory_limit,
        )
        for name in spec.prepare:
            conn.execute(kind_sql[name])
        _, summary_rows = _rows(conn, kind_sql["summary"])
        sections: list[Section] = []
        statements: dict[str, Any] = {}
        if spec.name == "incident":
            sections.append(_deadlines(request, generated_at))
            statements = _incident_statements(request, generated_at)
        for s in spec.sections:
            columns, rows = _rows(conn, kind_sql[s.query])
            sections.append(Section(s.query, s.title, columns, rows, s.note, s.chart))
        basis = _basis(conn, reader, scope_sql, kind_sql, checkpoints, public, verification)
        yield Report(
            spec=spec,
            request=request,
            generated_at=generated_at,
            basis=basis,
            summary=summary_rows[0] if summary_rows else {},
            sections=sections,
            detail=Detail(conn, kind_sql["detail"], spec.detail_title),
            queries={"_scope.sql": scope_sql.sha256, f"{spec.name}.sql": kind_sql.sha256},
            controls=_controls(config),
            statements=statements,
        )


def _aware_at(request: ReportRequest, generated_at: dt.datetime) -> dt.datetime:
    aware = request.incident.aware_at or generated_at
    if aware.tzinfo is not None:
        aware = aware.astimezone(dt.UTC).replace(tzinfo=None)
    return aware


def _deadlines(request: ReportRequest, generated_at: dt.datetime) -> Section:
    rows = deadline_rows(_aware_at(request, generated_at), request.incident.severity, generated_at)
    columns: Sequence[str] = tuple(rows[0]) if rows else ()
    return Section(
        "deadlines",
        "Reporting deadlines (AI Act Art. 73)",
        tuple(columns),
        rows,
        note="Counted from the date the provider (or deployer) became aware of the incident. "
        "Report immediately once a causal link is established or reasonably likely; an "
        "incomplete initial report may be followed by a complete one (Art. 73(5)).",
    )


def _incident_statements(request: ReportRequest, generated_at: dt.datetime) -> dict[str, Any]:
    inc = request.incident
    return {
        "aware_at": iso(_aware_at(request, generated_at)),
        "aware_at_given": inc.aware_at is not None,
        "severity": inc.severity,
        "description": inc.description or "(to be completed by the provider)",
        "selection": "request ids given"
        if request.request_ids
        else "flagged requests of the period",
    }
