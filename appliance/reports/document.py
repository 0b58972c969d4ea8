"""The reading order of an HTML or PDF report, as a list of neutral blocks.

Both document formats render the same blocks, so they show the same figures in the
same order: a summary page a person reads in a minute (what, when, on which data, the
headline figures and what they mean), then the sections with their charts, a bounded
preview of the detail rows, and the data basis an auditor checks the report against.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from appliance.reports import charts
from appliance.reports.display import fmt, label, short_hash
from appliance.reports.report import Report, Section
from appliance.reports.request import Period

#: Rows of a section table shown in a document (the data exports hold every row).
SECTION_ROWS = 40


@dataclass(frozen=True)
class Heading:
    text: str
    level: int = 1


@dataclass(frozen=True)
class Paragraph:
    text: str
    style: str = "body"  # body | note | alert | ok


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class KeyValues:
    rows: tuple[tuple[str, str], ...]
    #: Render values in a monospaced font (hashes).
    mono_keys: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Table:
    columns: tuple[str, ...]
    headers: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    numeric: tuple[bool, ...]
    note: str = ""


@dataclass(frozen=True)
class Image:
    png: bytes
    caption: str


@dataclass(frozen=True)
class PageBreak:
    pass


Block = Heading | Paragraph | Bullets | KeyValues | Table | Image | PageBreak


@dataclass
class Document:
    title: str
    subtitle: str
    #: One line repeated on every page (period, scope, checkpoint digest).
    running_head: str
    blocks: list[Block] = field(default_factory=list)
    keywords: tuple[str, ...] = ()


def _scope(report: Report) -> str:
    r = report.request
    parts = []
    if r.tenant:
        parts.append(f"tenant {r.tenant}")
    if r.application:
        parts.append(f"application {r.application}")
    if r.request_ids:
        parts.append(f"{len(r.request_ids)} selected request(s)")
    return ", ".join(parts) if parts else "all tenants and applications"


def verification_text(report: Report) -> tuple[str, str]:
    """(text, style) stating the chain verification result."""
    v = report.basis.verification
    if v is None:
        return (
            (
                "Full chain verification not run for this export; every checkpoint used was "
                "checked against the public key (run `appliance audit verify`, or export with --verify)."
            ),
            "note",
        )
    if v.ok:
        return (
            (
                f"PASSED: {v.records:,} records in {v.segments} segment(s) verified: hash chain, "
                "Merkle roots and Ed25519 signatures of every checkpoint."
            ),
            "ok",
        )
    return (f"FAILED: {len(v.problems)} problem(s); first: {v.problems[0]}", "alert")


def _cell(value: Any, column: str, shorten_hashes: bool) -> str:
    text = fmt(value, column)
    return short_hash(text) if shorten_hashes and column.endswith("hash") else text


def _table(
    section: Section, limit: int, columns: Sequence[str] = (), *, shorten_hashes: bool = False
) -> Table:
    cols = tuple(c for c in (columns or section.columns) if c in section.columns) or section.columns
    rows = section.rows[:limit]
    numeric = tuple(
        bool(rows)
        and all(
            isinstance(r[c], (int, float)) and not isinstance(r[c], bool)
            for r in rows
            if r[c] is not None
        )
        and any(r[c] is not None for r in rows)
        for c in cols
    )
    note = ""
    if len(section.rows) > limit:
        note = f"Showing {limit} of {len(section.rows):,} rows; every row is in the JSON, CSV and Parquet exports."
    return Table(
        columns=cols,
        headers=tuple(label(c) for c in cols),
        rows=tuple(tuple(_cell(r[c], c, shorten_hashes) for c in cols) for r in rows),
        numeric=numeric,
        note=note,
    )


def _chart(section: Section, period: Period) -> Image | None:
    if section.chart is None:
        return None
    png = charts.render(section.chart, section.rows, period)
    return None if png is None else Image(png, section.chart.title)


def build_document(report: Report) -> Document:
    spec, basis, req = report.spec, report.basis, report.request
    digest = basis.checkpoint_digest
    doc = Document(
        title=spec.title,
        subtitle=spec.basis,
        running_head=f"{spec.title} · {req.period.first} to {req.period.last} · checkpoint digest {digest[:16]}",
        keywords=("appliance-report", spec.name, f"checkpoint-digest:{digest}"),
    )
    b = doc.blocks
    vtext, _vstyle = verification_text(report)
    b.append(
        KeyValues(
            (
                ("Period", req.period.label()),
                ("Scope", _scope(report)),
                ("Generated", fmt(report.generated_at) + " UTC"),
                (
                    "Records in this report",
                    f"{basis.records:,} in {len(basis.segments)} segment(s)",
                ),
                ("Checkpoint digest", digest),
                ("Chain verification", vtext),
            ),
            mono_keys=frozenset({"Checkpoint digest"}),
        )
    )
    b.append(Paragraph(spec.description, "note"))
    b.append(Heading("Summary"))
    findings = report.findings()
    if findings:
        b.append(Bullets(tuple(findings)))
    for section in report.sections:
        if section.name == "deadlines":
            for row in section.rows:
                if row["applies"] == "yes":
                    b.append(
                        Paragraph(
                            f"Report to the market surveillance authority due by "
                            f"{fmt(row['report_due_utc'])} UTC ({row['article']}: {row['incident']}); "
                            f"time left: {row['time_left']}.",
                            "alert",
                        )
                    )
    b.append(
        Table(
            columns=("figure", "value"),
            headers=("Figure", "Value"),
            rows=tuple((lbl, fmt(report.summary.get(col), col)) for col, lbl in spec.summary),
            numeric=(False, True),
        )
    )
    charted = [s for s in report.sections if s.chart is not None]
    first_chart = _chart(charted[0], req.period) if charted else None
    if first_chart is not None:
        b.append(first_chart)
    if basis.not_covered:
        b.append(
            Paragraph(
                f"{basis.not_covered:,} record(s) of the period were written after the newest signed "
                "checkpoint of their segment and are not included; a later export will include them.",
                "note",
            )
        )
    b.append(PageBreak())

    if report.statements:
        b.append(Heading("Incident as stated by the provider"))
        b.append(KeyValues(tuple((label(k), fmt(v)) for k, v in report.statements.items())))
    for section in report.sections:
        b.append(Heading(section.title))
        if section.note:
            b.append(Paragraph(section.note, "note"))
        if section.chart is not None and section is not (charted[0] if charted else None):
            img = _chart(section, req.period)
            if img is not None:
                b.append(img)
        if section.rows:
            b.append(_table(section, SECTION_ROWS))
        else:
            b.append(Paragraph("No rows in this period.", "note"))
    if spec.name == "art30":
        b.append(Heading("Controller (Art. 30(1)(a))"))
        b.append(
            KeyValues(
                (
                    ("Controller", "(name and contact details: to be completed by the controller)"),
                    ("Data protection officer", "(name and contact details: to be completed)"),
                    ("Processor", "this appliance's operator, on behalf of each tenant"),
                )
            )
        )
        b.append(Heading("Retention and security measures (Art. 30(1)(f), (g))"))
        c = report.controls
        b.append(
            Paragraph(f"Audit records are kept {c['retention_days']} days by default.", "body")
        )
        overrides = c.get("retention_days_by_tenant") or {}
        if overrides:
            b.append(
                KeyValues(
                    tuple((f"Retention for {t}", f"{d} days") for t, d in sorted(overrides.items()))
                )
            )
        b.append(Bullets(tuple(c["security_measures"])))

    total = report.detail.count()
    preview = report.detail.preview(req.detail_limit)
    b.append(PageBreak())
    b.append(Heading(report.detail.title))
    if total:
        table = _table(preview, req.detail_limit, spec.preview_columns, shorten_hashes=True)
        shown = len(preview.rows)
        note = (
            f"Showing {shown:,} of {total:,} rows"
            + (
                ""
                if shown == total
                else "; every row, with every column, is in the JSON, CSV and Parquet exports"
            )
            + "."
            + (
                " Hashes are shortened here and given in full in the data exports."
                if any(c.endswith("hash") for c in table.columns)
                else ""
            )
        )
        b.append(Paragraph(note, "note"))
        b.append(Table(table.columns, table.headers, table.rows, table.numeric))
    else:
        b.append(Paragraph("No rows in this period.", "note"))

    b.append(PageBreak())
    b.extend(_basis_blocks(report))
    return doc


def _basis_blocks(report: Report) -> list[Block]:
    basis = report.basis
    out: list[Block] = [Heading("Data basis")]
    out.append(
        Paragraph(
            "Every figure in this report is computed from audit records that a checkpoint with a "
            "valid Ed25519 signature covers. The checkpoint digest is the SHA-256 of the sorted lines "
            "'segment|tree size|root hash|signature' of the checkpoints below: two exports that show "
            "the same digest rest on the same signed data.",
            "body",
        )
    )
    vtext, _vstyle = verification_text(report)
    rows: list[tuple[str, str]] = [
        ("Checkpoint digest", basis.checkpoint_digest),
        ("Signing key ID", basis.public_key_id),
        ("Chain verification", vtext),
        ("Records not yet covered", f"{basis.not_covered:,}"),
    ]
    for name, why in sorted(basis.skipped.items()):
        rows.append((f"Segment skipped: {name}", why))
    out.append(KeyValues(tuple(rows), mono_keys=frozenset({"Checkpoint digest"})))
    v = basis.verification
    if v is not None and (v.problems or v.warnings):
        out.append(
            Bullets(
                tuple([f"Problem: {p}" for p in v.problems] + [f"Warning: {w}" for w in v.warnings])
            )
        )
    out.append(Heading("Signed checkpoints", 2))
    if basis.segments:
        seg_rows: list[dict[str, Any]] = []
        for s in basis.segments:
            d = s.as_dict()
            seg_rows.append(
                {
                    "segment": s.segment_id,
                    "records_in_report": s.records,
                    "tree_size": d["checkpoint_tree_size"],
                    "root_hash": d["checkpoint_root_hash"],
                    "signed_at": d["checkpoint_time"],
                    "sealed": d["checkpoint_sealed"],
                }
            )
        sec = Section("segments", "", tuple(seg_rows[0]), seg_rows)
        out.append(_table(sec, 200))
    else:
        out.append(Paragraph("No records fall in this period and scope.", "note"))
    out.append(Heading("Queries", 2))
    out.append(
        KeyValues(
            tuple(
                (f"audit/reports/{name}", f"SHA-256 {sha}") for name, sha in report.queries.items()
            ),
        )
    )
    return out
