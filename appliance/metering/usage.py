"""Usage reports over the hourly usage rows the meter books (``appliance usage``).

The rows come from the limits store itself (SQLite file or Redis), not from the audit
log: they are already aggregated per hour and dimension, so a month of traffic is a few
thousand rows whatever the request rate, and the report needs no audit key.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from appliance.metering.plans import Plans
from appliance.metering.store import (
    UsageRow,
    days_in_month,
    hour_bucket,
    month_bucket,
    month_start,
    nano_to_usd,
)

#: What ``--group-by`` accepts, and the row field behind each name.
GROUPS = {
    "tenant": "tenant",
    "department": "department",
    "user": "user",
    "application": "application",
    "model": "model",
    "key": "key_id",
    "route": "route",
}


@dataclass
class Totals:
    requests: int = 0
    errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_nano: int = 0

    def add(self, row: UsageRow) -> None:
        self.requests += row.requests
        self.errors += row.errors
        self.prompt_tokens += row.prompt_tokens
        self.completion_tokens += row.completion_tokens
        self.cost_nano += row.cost_nano

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "errors": self.errors,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.tokens,
            "cost_usd": round(nano_to_usd(self.cost_nano), 6),
        }


def _group(rows: Iterable[UsageRow], by: Sequence[str]) -> dict[tuple[str, ...], Totals]:
    out: dict[tuple[str, ...], Totals] = defaultdict(Totals)
    for row in rows:
        out[tuple(getattr(row, GROUPS[g]) for g in by)].add(row)
    return out


def report(
    rows: Sequence[UsageRow],
    *,
    group_by: Sequence[str],
    start: float,
    end: float,
    now: float,
    plans: Plans,
) -> dict[str, Any]:
    """Usage in [start, end) grouped, the month's forecast, and plan overage per tenant.

    ``rows`` must cover the whole calendar months that [start, end) touches and the
    current month up to ``now``.
    """
    first, last = hour_bucket(start), hour_bucket(end - 1)
    in_range = [r for r in rows if first <= r.hour <= last]
    groups = _group(in_range, group_by)
    total = Totals()
    for r in in_range:
        total.add(r)

    # Forecast: this month's spend so far, projected linearly to the month's end.
    this_month = month_bucket(now)
    m0 = month_start(this_month).timestamp()
    elapsed = max(now - m0, 3600.0)
    span = days_in_month(this_month) * 86400
    mtd_rows = [r for r in rows if m0 // 3600 <= r.hour <= now // 3600]
    mtd_groups = _group(mtd_rows, group_by)
    mtd = sum(r.cost_nano for r in mtd_rows)

    def forecast(nano: int) -> float:
        return round(nano_to_usd(nano) * span / elapsed, 6)

    out_groups = []
    for key in sorted(groups, key=lambda k: -groups[k].cost_nano):
        entry: dict[str, Any] = dict(zip(group_by, key, strict=True))
        entry.update(groups[key].as_dict())
        month = mtd_groups.get(key)
        entry["month_to_date_usd"] = round(nano_to_usd(month.cost_nano), 6) if month else 0.0
        entry["forecast_month_usd"] = forecast(month.cost_nano) if month else 0.0
        out_groups.append(entry)

    return {
        "from": datetime.fromtimestamp(start, UTC).isoformat(),
        "to": datetime.fromtimestamp(end, UTC).isoformat(),
        "group_by": list(group_by),
        "groups": out_groups,
        "total": total.as_dict(),
        "forecast": {
            "month": month_start(this_month).strftime("%Y-%m"),
            "month_to_date_usd": round(nano_to_usd(mtd), 6),
            "forecast_month_usd": forecast(mtd),
            "method": "linear: month-to-date spend / elapsed time x length of the month",
        },
        "plans": _overage(rows, start, end, plans),
    }


def _overage(rows: Sequence[UsageRow], start: float, end: float, plans: Plans) -> list[dict[str, Any]]:
    """Per tenant and calendar month touched by [start, end): included volume and overage."""
    months = range(month_bucket(start), month_bucket(end - 1) + 1)
    per: dict[tuple[str, int], Totals] = defaultdict(Totals)
    for r in rows:
        m = month_bucket(r.hour * 3600)
        if m in months:
            per[(r.tenant, m)].add(r)
    out = []
    for (tenant, m), t in sorted(per.items()):
        plan_name = plans.plan_name(tenant)
        plan = plans.of(tenant)
        included = plan.included_tokens_month if plan else 0
        over = max(0, t.tokens - included) if plan else 0
        per_token = t.cost_nano / t.tokens if t.tokens else 0.0
        out.append(
            {
                "tenant": tenant,
                "month": month_start(m).strftime("%Y-%m"),
                "plan": plan_name,
                "included_tokens": included,
                "used_tokens": t.tokens,
                "overage_tokens": over,
                "overage_usd": round(nano_to_usd(round(over * per_token)), 6),
                "cost_usd": round(nano_to_usd(t.cost_nano), 6),
            }
        )
    return out


def render_text(rep: dict[str, Any]) -> str:
    by = rep["group_by"]
    cols = [*by, "requests", "errors", "total_tokens", "cost_usd", "forecast_month_usd"]
    table = [[_cell(g.get(c)) for c in cols] for g in rep["groups"]]
    t = rep["total"]
    table.append(["TOTAL", *([""] * (len(by) - 1)), str(t["requests"]), str(t["errors"]),
                  str(t["total_tokens"]), f"{t['cost_usd']:.4f}", ""])
    header = [c.upper() for c in cols]
    widths = [max(len(r[i]) for r in [header, *table]) for i in range(len(cols))]
    lines = [f"Usage from {rep['from']} to {rep['to']}", ""]
    for r in [header, *table]:
        lines.append("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
    f = rep["forecast"]
    lines += [
        "",
        (f"Month {f['month']}: ${f['month_to_date_usd']:.2f} spent so far, "
        f"forecast ${f['forecast_month_usd']:.2f} for the whole month ({f['method']})."),
    ]
    plans = [p for p in rep["plans"] if p["plan"]]
    if plans:
        lines += ["", "Plans (included volume per calendar month):"]
        for p in plans:
            lines.append(
                f"  {p['tenant']} {p['month']} plan {p['plan']}: {p['used_tokens']} of "
                f"{p['included_tokens']} tokens used, overage {p['overage_tokens']} tokens "
                f"(${p['overage_usd']:.4f})"
            )
    return "\n".join(lines)


def _cell(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4f}"
    return "-" if v in (None, "") else str(v)
