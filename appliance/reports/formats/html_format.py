"""HTML: one self-contained file (charts inline as PNG data URIs), printable to paper.

The page is filled from ``templates/report.html``; every value is escaped. The report's
metadata (period, basis, summary, sections) is embedded as JSON in a
``<script type="application/json" id="report-meta">`` element for tools that check it.
"""

from __future__ import annotations

import base64
from html import escape
from importlib import resources
from pathlib import Path
from string import Template

import orjson

from appliance.reports.display import fmt
from appliance.reports.document import (
    Bullets,
    Heading,
    Image,
    KeyValues,
    PageBreak,
    Paragraph,
    Table,
    build_document,
)
from appliance.reports.formats import atomic_output
from appliance.reports.report import Report


def _table(t: Table) -> str:
    head = "".join(
        f'<th class="num">{escape(h)}</th>' if n else f"<th>{escape(h)}</th>"
        for h, n in zip(t.headers, t.numeric, strict=True)
    )
    rows = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{escape(v)}</td>' if n else f"<td>{escape(v)}</td>"
            for v, n in zip(r, t.numeric, strict=True)
        )
        + "</tr>\n"
        for r in t.rows
    )
    note = f'<p class="note">{escape(t.note)}</p>' if t.note else ""
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{rows}</tbody>\n</table>\n{note}"


def _kv(kv: KeyValues) -> str:
    mono = ' class="mono"'
    rows = "".join(
        f"<tr><th>{escape(k)}</th><td{mono if k in kv.mono_keys else ''}>{escape(v)}</td></tr>\n"
        for k, v in kv.rows
    )
    return f'<table class="kv">\n{rows}</table>\n'


def _body(report: Report) -> tuple[str, str, str, str]:
    doc = build_document(report)
    parts: list[str] = []
    for block in doc.blocks:
        if isinstance(block, Heading):
            tag = "h2" if block.level == 1 else "h3"
            parts.append(f"<{tag}>{escape(block.text)}</{tag}>")
        elif isinstance(block, Paragraph):
            parts.append(f'<p class="{block.style}">{escape(block.text)}</p>')
        elif isinstance(block, Bullets):
            parts.append("<ul>" + "".join(f"<li>{escape(i)}</li>" for i in block.items) + "</ul>")
        elif isinstance(block, KeyValues):
            parts.append(_kv(block))
        elif isinstance(block, Table):
            parts.append(_table(block))
        elif isinstance(block, Image):
            data = base64.b64encode(block.png).decode("ascii")
            parts.append(
                f'<figure><img alt="{escape(block.caption)}" src="data:image/png;base64,{data}">'
                f"<figcaption>{escape(block.caption)}</figcaption></figure>"
            )
        elif isinstance(block, PageBreak):
            parts.append('<hr class="page-break">')
    return doc.title, doc.subtitle, doc.running_head, "\n".join(parts)


def write(report: Report, out: Path, progress: bool) -> int:
    title, subtitle, running_head, body = _body(report)
    template = Template(
        resources.files("appliance.reports").joinpath("templates/report.html").read_text("utf-8")
    )
    meta = orjson.dumps(report.meta(), option=orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z).decode()
    page = template.substitute(
        kind=escape(report.spec.name),
        digest=escape(report.basis.checkpoint_digest),
        title=escape(title),
        subtitle=escape(subtitle),
        period=escape(f"{report.request.period.first} to {report.request.period.last}"),
        running_head=escape(running_head),
        body=body,
        generated=escape(fmt(report.generated_at) + " UTC"),
        meta_json=meta.replace("</", "<\\/"),
    )
    with atomic_output(out) as tmp:
        tmp.write_text(page, "utf-8")
    return min(report.detail.count(), report.request.detail_limit)
