"""PDF: the report document typeset with reportlab (A4, charts as images).

Every page carries the report title, the period and the checkpoint digest in its head
and "page X of Y" in its foot; the PDF's metadata holds the kind and the full digest,
so a filed copy can be matched to its data. Fonts are the DejaVu faces matplotlib ships,
so any tenant or application name prints, whatever its script.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import matplotlib
from reportlab.lib import colors
from reportlab.lib.enums import TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.pdfmetrics import stringWidth
from reportlab.pdfbase.ttfonts import TTFError, TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import Flowable, KeepTogether, SimpleDocTemplate, Spacer, TableStyle
from reportlab.platypus import Image as RLImage
from reportlab.platypus import PageBreak as RLPageBreak
from reportlab.platypus import Paragraph as RLParagraph
from reportlab.platypus import Table as RLTable

from appliance.reports.document import (
    Block,
    Bullets,
    Document,
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

INK = colors.HexColor("#1a1a1a")
ACCENT = colors.HexColor("#1f4e79")
MUTED = colors.HexColor("#5f6b76")
RULE = colors.HexColor("#c8d0d8")
ZEBRA = colors.HexColor("#f3f6f9")
OK = colors.HexColor("#2e7d32")
ALERT = colors.HexColor("#b71c1c")
MARGIN = 18 * mm


def _fonts() -> tuple[str, str, str]:
    """Register DejaVu Sans (regular, bold) and DejaVu Sans Mono; return their names."""
    base = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    names = (
        ("ReportSans", "DejaVuSans.ttf"),
        ("ReportSans-Bold", "DejaVuSans-Bold.ttf"),
        ("ReportMono", "DejaVuSansMono.ttf"),
    )
    registered = pdfmetrics.getRegisteredFontNames()
    try:
        for name, file in names:
            if name not in registered:
                pdfmetrics.registerFont(TTFont(name, str(base / file)))
    except (OSError, TTFError):  # fonts missing: fall back to the PDF base fonts (Latin-1 only)
        return "Helvetica", "Helvetica-Bold", "Courier"
    return names[0][0], names[1][0], names[2][0]


class _Styles:
    def __init__(self) -> None:
        sans, bold, mono = _fonts()
        self.sans, self.bold, self.mono = sans, bold, mono
        self.title = ParagraphStyle(
            "title", fontName=bold, fontSize=19, leading=23, textColor=ACCENT, spaceAfter=2
        )
        self.subtitle = ParagraphStyle(
            "subtitle", fontName=sans, fontSize=10.5, leading=14, textColor=MUTED, spaceAfter=10
        )
        self.h1 = ParagraphStyle(
            "h1",
            fontName=bold,
            fontSize=12.5,
            leading=16,
            textColor=ACCENT,
            spaceBefore=10,
            spaceAfter=5,
        )
        self.h2 = ParagraphStyle(
            "h2",
            fontName=bold,
            fontSize=10.5,
            leading=14,
            textColor=INK,
            spaceBefore=8,
            spaceAfter=4,
        )
        self.body = ParagraphStyle(
            "body", fontName=sans, fontSize=9, leading=12.5, textColor=INK, spaceAfter=5
        )
        self.note = ParagraphStyle("note", parent=self.body, textColor=MUTED, fontSize=8.5)
        self.ok = ParagraphStyle("ok", parent=self.body, textColor=OK, fontName=bold)
        self.alert = ParagraphStyle("alert", parent=self.body, textColor=ALERT, fontName=bold)
        self.bullet = ParagraphStyle(
            "bullet", parent=self.body, leftIndent=10, bulletIndent=0, spaceAfter=3
        )
        self.cell = ParagraphStyle("cell", fontName=sans, fontSize=7.3, leading=9, textColor=INK)
        self.cell_num = ParagraphStyle("cell_num", parent=self.cell, alignment=TA_RIGHT)
        self.cell_head = ParagraphStyle(
            "cell_head", parent=self.cell, fontName=bold, textColor=colors.white
        )
        self.cell_head_num = ParagraphStyle(
            "cell_head_num", parent=self.cell_head, alignment=TA_RIGHT
        )
        self.kv_key = ParagraphStyle(
            "kv_key", parent=self.body, fontName=bold, fontSize=8.5, spaceAfter=0
        )
        self.kv_val = ParagraphStyle("kv_val", parent=self.body, fontSize=8.5, spaceAfter=0)
        self.kv_mono = ParagraphStyle("kv_mono", parent=self.kv_val, fontName=mono, fontSize=7.8)


def _p(text: str, style: ParagraphStyle) -> RLParagraph:
    return RLParagraph(escape(text), style)


def _measure(table: Table, st: _Styles, size: float) -> tuple[list[float], list[float]]:
    """(natural, minimum) width per column at font ``size``; minimum = longest word."""
    pad = 8.5
    natural: list[float] = []
    minimum: list[float] = []
    for i, head in enumerate(table.headers):
        cells = [r[i] for r in table.rows[:300]]
        nat = max(
            [stringWidth(head, st.bold, size)] + [stringWidth(c, st.sans, size) for c in cells]
        )
        least = max(
            [stringWidth(w, st.bold, size) for w in head.split()]
            + [stringWidth(w, st.sans, size) for c in cells for w in c.split()]
        )
        natural.append(min(nat, 170.0) + pad)
        minimum.append(min(least, 90.0) + pad)
    return natural, minimum


def _layout(table: Table, st: _Styles, avail: float) -> tuple[float, list[float]]:
    """Font size and column widths: shrink the font (to 5.8 pt) before breaking words."""
    size = st.cell.fontSize
    natural, minimum = _measure(table, st, size)
    if sum(minimum) > avail:
        size = max(5.8, size * avail / sum(minimum))
        natural, minimum = _measure(table, st, size)
    if sum(natural) <= avail:
        return size, [w * avail / sum(natural) for w in natural]
    if sum(minimum) >= avail:
        return size, [w * avail / sum(minimum) for w in minimum]
    spare = avail - sum(minimum)
    stretch = [n - m for n, m in zip(natural, minimum, strict=True)]
    total = sum(stretch) or 1.0
    return size, [m + spare * x / total for m, x in zip(minimum, stretch, strict=True)]


def _table(table: Table, st: _Styles, avail: float) -> list[Flowable]:
    size, widths = _layout(table, st, avail)

    def style(base: ParagraphStyle) -> ParagraphStyle:
        if size == base.fontSize:
            return base
        return ParagraphStyle(
            base.name + f"-{size:.1f}", parent=base, fontSize=size, leading=size * 1.25
        )

    cell, num, head_s, head_num = (
        style(st.cell),
        style(st.cell_num),
        style(st.cell_head),
        style(st.cell_head_num),
    )
    head = [
        _p(h, head_num if n else head_s) for h, n in zip(table.headers, table.numeric, strict=True)
    ]
    body = [
        [_p(v, num if n else cell) for v, n in zip(row, table.numeric, strict=True)]
        for row in table.rows
    ]
    t = RLTable([head, *body], colWidths=widths, repeatRows=1, hAlign="LEFT")
    style_cmds: list[tuple[Any, ...]] = [
        ("BACKGROUND", (0, 0), (-1, 0), ACCENT),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LINEBELOW", (0, 0), (-1, -1), 0.3, RULE),
        ("TOPPADDING", (0, 0), (-1, -1), 2.2),
        ("BOTTOMPADDING", (0, 0), (-1, -1), 2.2),
        ("LEFTPADDING", (0, 0), (-1, -1), 3),
        ("RIGHTPADDING", (0, 0), (-1, -1), 3),
    ]
    for r in range(2, len(body) + 1, 2):
        style_cmds.append(("BACKGROUND", (0, r), (-1, r), ZEBRA))
    t.setStyle(TableStyle(style_cmds))
    out: list[Flowable] = [t]
    if table.note:
        out.append(Spacer(1, 2))
        out.append(_p(table.note, st.note))
    out.append(Spacer(1, 6))
    return out


def _key_values(kv: KeyValues, st: _Styles, avail: float) -> Flowable:
    rows = [
        [_p(k, st.kv_key), _p(v, st.kv_mono if k in kv.mono_keys else st.kv_val)]
        for k, v in kv.rows
    ]
    t = RLTable(rows, colWidths=[46 * mm, avail - 46 * mm], hAlign="LEFT")
    t.setStyle(
        TableStyle(
            [
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("LINEBELOW", (0, 0), (-1, -1), 0.3, RULE),
                ("LINEABOVE", (0, 0), (-1, 0), 0.8, ACCENT),
                ("TOPPADDING", (0, 0), (-1, -1), 3),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 3),
                ("LEFTPADDING", (0, 0), (-1, -1), 2),
            ]
        )
    )
    return t


def _flowables(doc: Document, st: _Styles, avail: float) -> list[Flowable]:
    out: list[Flowable] = [_p(doc.title, st.title), _p(doc.subtitle, st.subtitle)]
    pending_heading: Flowable | None = None

    def add(f: Flowable | list[Flowable]) -> None:
        nonlocal pending_heading
        items = f if isinstance(f, list) else [f]
        if pending_heading is not None:  # keep a heading with what follows it
            out.append(KeepTogether([pending_heading, items[0]]))
            out.extend(items[1:])
            pending_heading = None
        else:
            out.extend(items)

    block: Block
    for block in doc.blocks:
        if isinstance(block, Heading):
            if pending_heading is not None:
                out.append(pending_heading)
            pending_heading = _p(block.text, st.h1 if block.level == 1 else st.h2)
        elif isinstance(block, Paragraph):
            add(
                _p(
                    block.text,
                    {"note": st.note, "ok": st.ok, "alert": st.alert}.get(block.style, st.body),
                )
            )
        elif isinstance(block, Bullets):
            add([RLParagraph(escape(i), st.bullet, bulletText="•") for i in block.items])
        elif isinstance(block, KeyValues):
            add([_key_values(block, st, avail), Spacer(1, 6)])
        elif isinstance(block, Table):
            add(_table(block, st, avail))
        elif isinstance(block, Image):
            img = RLImage(io.BytesIO(block.png))
            scale = avail / img.imageWidth
            img.drawWidth, img.drawHeight = avail, img.imageHeight * scale
            add([img, Spacer(1, 6)])
        elif isinstance(block, PageBreak):
            if pending_heading is not None:
                out.append(pending_heading)
                pending_heading = None
            out.append(RLPageBreak())
    if pending_heading is not None:
        out.append(pending_heading)
    return out


def _numbered_canvas(running_head: str, st: _Styles) -> type[Canvas]:
    """A canvas that knows the page count when it draws each page's head and foot."""

    class NumberedCanvas(Canvas):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._pages: list[dict[str, Any]] = []

        def showPage(self) -> None:
            self._pages.append(dict(self.__dict__))
            self._startPage()

        def save(self) -> None:
            total = len(self._pages)
            for state in self._pages:
                self.__dict__.update(state)
                self._decorate(total)
                super().showPage()
            super().save()

        def _decorate(self, total: int) -> None:
            w, h = A4
            self.saveState()
            self.setStrokeColor(RULE)
            self.setLineWidth(0.5)
            self.line(MARGIN, h - 12 * mm, w - MARGIN, h - 12 * mm)
            self.line(MARGIN, 12 * mm, w - MARGIN, 12 * mm)
            self.setFillColor(MUTED)
            self.setFont(st.sans, 7)
            self.drawString(MARGIN, h - 10.5 * mm, running_head)
            self.drawString(
                MARGIN, 8.5 * mm, "Compliance appliance · generated from the signed audit log"
            )
            self.drawRightString(w - MARGIN, 8.5 * mm, f"Page {self._pageNumber} of {total}")
            self.restoreState()

    return NumberedCanvas


def write(report: Report, out: Path, progress: bool) -> int:
    doc = build_document(report)
    st = _Styles()
    with atomic_output(out) as tmp:
        pdf = SimpleDocTemplate(
            str(tmp),
            pagesize=A4,
            leftMargin=MARGIN,
            rightMargin=MARGIN,
            topMargin=17 * mm,
            bottomMargin=17 * mm,
            title=f"{doc.title} {report.request.period.first} to {report.request.period.last}",
            subject=doc.subtitle,
            author="Compliance appliance",
            creator="appliance report export",
            keywords=" ".join(doc.keywords),
        )
        flow = _flowables(doc, st, A4[0] - 2 * MARGIN)
        pdf.build(flow, canvasmaker=_numbered_canvas(doc.running_head, st))
    return min(report.detail.count(), report.request.detail_limit)
