"""Charts for HTML and PDF reports, drawn with matplotlib's Agg backend into PNG bytes.

A :class:`matplotlib.figure.Figure` is used directly (no pyplot), so drawing keeps no
global state and can run in any thread. Charts only ever see a section's aggregated
rows (a few dozen points), never the records.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from appliance.reports.display import fmt, label
from appliance.reports.kinds import ChartSpec

#: Sober colours that stay distinct in greyscale print.
PALETTE = ("#1f4e79", "#c0504d", "#9bbb59", "#f2a93b", "#7f7f7f", "#4bacc6")
MAX_CATEGORIES = 12


def render(
    spec: ChartSpec,
    rows: Sequence[dict[str, Any]],
    *,
    width_in: float = 7.0,
    height_in: float = 2.6,
    dpi: int = 150,
) -> bytes | None:
    """PNG bytes of ``spec`` over ``rows``; None when there is nothing to draw."""
    if not rows:
        return None
    if spec.type == "barh":  # height follows the number of bars
        height_in = min(height_in, 0.9 + 0.24 * min(len(rows), MAX_CATEGORIES))
    fig = Figure(figsize=(width_in, height_in), dpi=dpi, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_title(spec.title, fontsize=10, loc="left", fontweight="bold")
    ax.tick_params(labelsize=7)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    ax.grid(axis="x" if spec.type == "barh" else "y", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    if spec.type == "barh":
        top = list(rows)[:MAX_CATEGORIES][::-1]
        names = [_clip(fmt(r[spec.x])) for r in top]
        values = [float(r[spec.y[0]] or 0) for r in top]
        ax.barh(names, values, color=PALETTE[0], height=0.6)
        ax.set_xlabel(spec.ylabel or label(spec.y[0]), fontsize=7)
        for y, v in enumerate(values):
            ax.annotate(
                fmt(top[y][spec.y[0]], spec.y[0]),
                (v, y),
                xytext=(3, 0),
                textcoords="offset points",
                va="center",
                fontsize=6,
            )
    elif spec.type == "bar":
        names = [_clip(fmt(r[spec.x]), 18) for r in rows][:MAX_CATEGORIES]
        n = len(spec.y)
        width = 0.8 / n
        for i, col in enumerate(spec.y):
            xs = [j + (i - (n - 1) / 2) * width for j in range(len(names))]
            values = [float(r[col] or 0) for r in rows][:MAX_CATEGORIES]
            ax.bar(xs, values, width=width, color=PALETTE[i % len(PALETTE)], label=label(col))
        ax.set_xticks(range(len(names)), names)
        if n > 1:
            ax.legend(fontsize=7, frameon=False)
    else:
        xs = [r[spec.x] for r in rows]
        if spec.type == "line":
            for i, col in enumerate(spec.y):
                ax.plot(
                    xs,
                    [float(r[col] or 0) for r in rows],
                    color=PALETTE[i % len(PALETTE)],
                    linewidth=1.4,
                    marker="o" if len(xs) < 40 else None,
                    markersize=2.5,
                    label=label(col),
                )
        else:  # stacked bars over time
            bottom = [0.0] * len(xs)
            width = _bar_width(xs)
            for i, col in enumerate(spec.y):
                values = [float(r[col] or 0) for r in rows]
                ax.bar(
                    xs,
                    values,
                    bottom=bottom,
                    width=width,
                    color=PALETTE[i % len(PALETTE)],
                    label=label(col),
                )
                bottom = [b + v for b, v in zip(bottom, values, strict=True)]
        if len(spec.y) > 1:
            ax.legend(fontsize=7, frameon=False, ncols=min(len(spec.y), 4))
        ax.set_ylabel(spec.ylabel, fontsize=7)
        fig.autofmt_xdate(rotation=30)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _clip(text: str, n: int = 48) -> str:
    """Category labels stay on one line; the tables below a chart give them in full."""
    return text if len(text) <= n else text[: n - 1] + "…"


def _bar_width(xs: Sequence[Any]) -> float:
    """Bar width in days for a time axis (80 % of the spacing between points)."""
    if len(xs) < 2:
        return 0.8
    try:
        gap = (xs[1] - xs[0]).total_seconds() / 86_400
    except (AttributeError, TypeError):
        return 0.8
    return max(gap * 0.8, 0.01)
