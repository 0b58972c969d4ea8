"""Report charts over a day, a week and a year: the time axis spans the period, ticked in
hours, days or months; counts have whole-number ticks; the PDF renders."""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from matplotlib import dates as mdates
from matplotlib.axes import Axes

from appliance.config import Config, load_config
from appliance.reports import charts
from appliance.reports.export import export
from appliance.reports.kinds import kinds
from appliance.reports.report import open_report
from appliance.reports.request import Period, ReportRequest
from appliance.reports.sample import register_apps, write_sample_log

NOW = dt.datetime(2026, 4, 2, 9, 30, tzinfo=dt.UTC)
DAY = Period(dt.date(2026, 3, 10), dt.date(2026, 3, 10))
WEEK = Period(dt.date(2026, 3, 9), dt.date(2026, 3, 15))
YEAR = Period(dt.date(2025, 4, 1), dt.date(2026, 3, 31))
PERIODS = {"day": DAY, "week": WEEK, "year": YEAR}
#: The ticks a reader of each period expects: every 3 hours, every day, every month.
EXPECTED_TICKS = {
    "day": [dt.datetime(2026, 3, 10) + dt.timedelta(hours=3 * k) for k in range(9)],
    "week": [dt.datetime(2026, 3, 9) + dt.timedelta(days=k) for k in range(8)],
    "year": [dt.datetime(2025 + (3 + k) // 12, (3 + k) % 12 + 1, 1) for k in range(13)],
}


@dataclass(frozen=True)
class Sparse:
    config: Config


@pytest.fixture(scope="session")
def sparse(tmp_path_factory: pytest.TempPathFactory) -> Sparse:
    """A handful of requests on one day: counts of 0, 1 or 2 per bucket (where a default
    axis ticks at 0.25) and one point in a week or a year (where a default date axis
    spreads over years)."""
    data_dir = tmp_path_factory.mktemp("sparse-reports")
    config = load_config(None, data_dir=data_dir)
    register_apps(config)
    write_sample_log(config, 7, first=dt.datetime(2026, 3, 10, 8), last=dt.datetime(2026, 3, 10, 17))
    return Sparse(config)


def _figures(config: Config, period: Period) -> list[tuple[str, charts.ChartSpec, Axes, bool]]:
    """(kind, chart, its axes, whether its values are counts) for every charted section."""
    out = []
    for kind in sorted(kinds()):
        with open_report(config, ReportRequest(kind, period), now=NOW) as report:
            for section in report.sections:
                if section.chart is None:
                    continue
                fig = charts.figure(section.chart, section.rows, period)
                if fig is None:
                    continue
                fig.canvas.draw()  # what the PNG shows: ticks as drawn
                counts = all(isinstance(r[c], int) for r in section.rows for c in section.chart.y
                             if r[c] is not None)
                out.append((kind, section.chart, fig.axes[0], counts))
    return out


def _visible(values: list[float], low: float, high: float) -> list[float]:
    return [v for v in values if low - 1e-9 <= v <= high + 1e-9]


@pytest.mark.parametrize("name", sorted(PERIODS))
def test_every_chart_kind_spans_its_period_with_whole_counts(sparse: Sparse, name: str) -> None:
    period = PERIODS[name]
    drawn = _figures(sparse.config, period)
    assert {chart.type for _, chart, _, _ in drawn} == {"line", "bar", "barh", "stacked"}
    for kind, chart, ax, counts in drawn:
        where = f"{kind}: {chart.title} over the {name}"
        if chart.type in ("line", "stacked"):
            low, high = ax.get_xlim()
            assert mdates.num2date(low).replace(tzinfo=None) == period.start, where
            assert mdates.num2date(high).replace(tzinfo=None) == period.end, where
            ticks = [mdates.num2date(t).replace(tzinfo=None)
                     for t in _visible(list(ax.get_xticks()), low, high)]
            assert ticks == EXPECTED_TICKS[name], where
        value_axis = ax.xaxis if chart.type == "barh" else ax.yaxis
        low, high = value_axis.get_view_interval()
        assert low == 0, where
        if counts:
            ticks = _visible(list(value_axis.get_ticklocs()), low, high)
            assert len(ticks) >= 2, where
            assert all(float(t).is_integer() for t in ticks), (where, ticks)


def test_the_sparse_log_really_has_small_counts(sparse: Sparse) -> None:
    """The check above means something only if some count axis tops out at 1 or 2."""
    tops = [max(r[c] or 0 for r in rows for c in spec.y)
            for spec, rows in _over_time_rows(sparse.config, DAY)]
    assert tops and min(tops) <= 2, tops


def _over_time_rows(config: Config, period: Period) -> list[tuple[charts.ChartSpec, list]]:
    out = []
    with open_report(config, ReportRequest("usage", period), now=NOW) as report:
        for section in report.sections:
            if section.chart is not None and section.chart.type == "line":
                out.append((section.chart, section.rows))
    return out


@pytest.mark.skipif(shutil.which("pdftoppm") is None,
                    reason="pdftoppm missing: apt-get install poppler-utils")
@pytest.mark.parametrize("name", sorted(PERIODS))
def test_the_pdf_with_its_charts_renders(sparse: Sparse, name: str, tmp_path: Path) -> None:
    pdf = tmp_path / f"pii-{name}.pdf"
    export(sparse.config, ReportRequest("pii", PERIODS[name]), "pdf", pdf, now=NOW)
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(pdf), str(tmp_path / "page")], check=True)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert len(pages) >= 3
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in pages)
