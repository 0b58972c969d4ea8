"""``appliance usage``: usage and cost over a period, grouped, with the month's forecast."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path as Path_
from typing import Any

from appliance.config import load_config
from appliance.metering.meter import open_store
from appliance.metering.plans import Plans
from appliance.metering.store import UsageRow, clock, hour_bucket, month_bucket, month_start
from appliance.metering.usage import GROUPS, render_text, report


def _when(text: str, *, end: bool) -> float:
    """YYYY-MM-DD (a whole day: --to includes it) or an ISO date-time (UTC if no zone)."""
    try:
        if len(text) == 10:
            day = datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=UTC)
            return (day + timedelta(days=1) if end else day).timestamp()
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date: {text!r} (use YYYY-MM-DD)") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def _groups(text: str) -> list[str]:
    names = [g.strip() for g in text.split(",") if g.strip()]
    unknown = [g for g in names if g not in GROUPS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown group {', '.join(unknown) or '(none)'}; choose from {', '.join(GROUPS)}"
        )
    return names


async def _rows(args: argparse.Namespace, first: float, last: float) -> list[UsageRow]:
    config = load_config(args.config, data_dir=args.data_dir)
    store = open_store(config)
    await store.start()
    try:
        return await store.usage(hour_bucket(first), hour_bucket(last))
    finally:
        await store.aclose()


def cmd_usage(args: argparse.Namespace) -> int:
    config = load_config(args.config, data_dir=args.data_dir)
    now = clock()
    start = _when(args.from_, end=False) if args.from_ else month_start(month_bucket(now)).timestamp()
    end = _when(args.to, end=True) if args.to else now
    if end <= start:
        print("error: --to must be after --from", file=sys.stderr)
        return 2
    # Whole months around the range (plan overage) and the current month (forecast).
    first = min(month_start(month_bucket(start)).timestamp(), month_start(month_bucket(now)).timestamp())
    last = max(month_start(month_bucket(end - 1) + 1).timestamp() - 1, now)
    rows = asyncio.run(_rows(args, first, last))
    plans = Plans.load(config.limits.plans_file, config.limits)
    rep: dict[str, Any] = report(
        rows, group_by=args.group_by, start=start, end=end, now=now, plans=plans
    )
    if args.json:
        print(json.dumps(rep, indent=2))
    else:
        print(render_text(rep))
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser("usage", help="usage and cost over a period, grouped, with a forecast")
    p.add_argument("--config", type=Path_, default=None, help="TOML config file")
    p.add_argument("--data-dir", type=Path_, default=None, help="data directory")
    p.add_argument("--from", dest="from_", help="first day (YYYY-MM-DD; default: this month's 1st)")
    p.add_argument("--to", help="last day, included (YYYY-MM-DD; default: now)")
    p.add_argument(
        "--group-by", type=_groups, default=["tenant"],
        help=f"comma-separated: {','.join(GROUPS)} (default: tenant)",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_usage)
