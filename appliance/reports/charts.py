"""Charts for HTML and PDF reports, drawn with matplotlib's Agg backend into PNG bytes.

A :class:`matplotlib.figure.Figure` is used directly (no pyplot), so drawing keeps no
global state and can run in any thread. Charts only ever see a section's aggregated
rows (a few dozen points), never the records.

A time axis spans exactly the report's period, whatever the data (left to itself,
matplotlib spread one week with a single point over 2025-2029), with ticks a reader of
that period expects: hours for a day, days for a week or a month, months for a year.
An axis of counts has whole-number ticks only (a count of 0.25 requests means nothing).
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence
from typing import Any

from matplotlib import dates as mdates
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from appliance.reports.display import fmt, label
from appliance.reports.kinds import ChartSpec
from appliance.reports.request import Period

#: Sober colours that stay distinct in greyscale print.
PALETTE = ("#1f4e79", "#c0504d", "#9bbb59", "#f2a93b", "#7f7f7f", "#4bacc6")
MAX_CATEGORIES = 12


#: Time buckets of the report queries (``Period.bucket``), as spans of time.
_BUCKET = {
    "hour": dt.timedelta(hours=1),
    "day": dt.timedelta(days=1),
    "week": dt.timedelta(weeks=1),
    "month": dt.timedelta(days=30),
}


def render(
    spec: ChartSpec,
    rows: Sequence[dict[str, Any]],
    period: Period,
    *,
    width_in: float = 7.0,
    height_in: float = 2.6,
    dpi: int = 150,
) -> bytes | None:
    """PNG bytes of ``spec`` over ``rows`` of ``period``; None when there is nothing to draw."""
    fig = figure(spec, rows, period, width_in=width_in, height_in=height_in, dpi=dpi)
    if fig is None:
        return None
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def figure(
    spec: ChartSpec,
    rows: Sequence[dict[str, Any]],
    period: Period,
    *,
    width_in: float = 7.0,
    height_in: float = 2.6,
    dpi: int = 150,
) -> Figure | None:
    """The chart as a matplotlib figure (what :func:`render` draws); None without rows."""
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
        _value_axis(ax, "x", top, spec.y)
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
        _value_axis(ax, "y", rows, spec.y)
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
        else:  # stacked bars over time, one bucket wide (less a gap)
            bottom = [0.0] * len(xs)
            width = _BUCKET[period.bucket()].total_seconds() / 86_400 * 0.8
            for i, col in enumerate(spec.y):
                values = [float(r[col] or 0) for r in rows]
                ax.bar(
                    xs,
                    values,
                    bottom=bottom,
                    width=width,
                    color=PALETTE[i % len(PALETTE)],
                    label=label(col),
                    align="edge",  # a bar covers its bucket, which starts at x
                )
                bottom = [b + v for b, v in zip(bottom, values, strict=True)]
        if len(spec.y) > 1:
            ax.legend(fontsize=7, frameon=False, ncols=min(len(spec.y), 4))
        ax.set_ylabel(spec.ylabel, fontsize=7)
        _value_axis(ax, "y", rows, spec.y)
        _time_axis(ax, period)
        fig.autofmt_xdate(rotation=30)
    return fig


def _value_axis(ax: Axes, which: str, rows: Sequence[dict[str, Any]],
                columns: Sequence[str]) -> None:
    """Counts get whole-number ticks; every value axis starts at zero."""
    values = [r[c] for r in rows for c in columns if r[c] is not None]
    axis = ax.xaxis if which == "x" else ax.yaxis
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        axis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    if which == "x":
        ax.set_xlim(0, max(ax.get_xlim()[1], 1))
    else:
        ax.set_ylim(0, max(ax.get_ylim()[1], 1))


def _time_axis(ax: Axes, period: Period) -> None:
    """The x axis spans the period, start to end, ticked as a reader of it expects."""
    ax.set_xlim(mdates.date2num(period.start), mdates.date2num(period.end))
    days = period.days
    locator: mdates.DateLocator
    if days <= 2:
        locator = mdates.HourLocator(byhour=range(0, 24, 3 * days))
        fmt_ = "%H:%M" if days == 1 else "%d %b %H:%M"
    elif days <= 92:
        locator = mdates.DayLocator(interval=max(1, -(-days // 12)))
        fmt_ = "%d %b"
    else:
        months = days // 30
        locator = mdates.MonthLocator(interval=max(1, -(-months // 12)))
        fmt_ = "%b %Y"
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.DateFormatter(fmt_))


def _clip(text: str, n: int = 48) -> str:
    """Category labels stay on one line; the tables below a chart give them in full."""
    return text if len(text) <= n else text[: n - 1] + "…"
