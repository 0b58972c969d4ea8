"""``appliance report export``: compliance reports for auditors, from the audit log.

    appliance report export --kind KIND --from DATE --to DATE [--tenant T]
        [--application APP] --format json|csv|parquet|html|pdf --out FILE
        [--request-id ID ...] [--aware-at ISO] [--severity S] [--description TEXT]
        [--verify] [--public-key PEM] [--progress | --no-progress]

Exit codes: 0 written; 1 the chain verification failed (the report is still written and
says so); 2 bad arguments or no audit log.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path

from appliance.reports.formats import formats
from appliance.reports.kinds import kinds
from appliance.reports.request import SEVERITIES, IncidentDetails, Period, ReportRequest, parse_day


def _aware_at(text: str) -> dt.datetime:
    try:
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO 8601 date or time") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _day(text: str) -> dt.date:
    try:
        return parse_day(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    report = sub.add_parser("report", help="compliance reports for auditors")
    rsub = report.add_subparsers(dest="report_cmd", required=True)
    ex = rsub.add_parser(
        "export",
        help="export a report (usage, art30, art12, risk, pii, policy, incident)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ex.add_argument("--config", type=Path, default=None, help="TOML config file")
    ex.add_argument("--data-dir", type=Path, default=None, help="data directory")
    ex.add_argument("--kind", required=True, choices=sorted(kinds()))
    ex.add_argument(
        "--from",
        dest="date_from",
        required=True,
        type=_day,
        metavar="YYYY-MM-DD",
        help="first day (UTC)",
    )
    ex.add_argument(
        "--to",
        dest="date_to",
        required=True,
        type=_day,
        metavar="YYYY-MM-DD",
        help="last day, included (UTC)",
    )
    ex.add_argument("--tenant", default=None)
    ex.add_argument("--application", default=None, help="one AI system (application)")
    ex.add_argument("--format", required=True, choices=list(formats()))
    ex.add_argument("--out", required=True, type=Path)
    ex.add_argument(
        "--request-id", action="append", default=[], help="incident: a request concerned (repeat)"
    )
    ex.add_argument(
        "--aware-at",
        type=_aware_at,
        default=None,
        help="incident: when the provider became aware (ISO 8601)",
    )
    ex.add_argument(
        "--severity",
        choices=SEVERITIES,
        default="general",
        help="incident: which Art. 73 deadline applies",
    )
    ex.add_argument("--description", default="", help="incident: description for the authority")
    ex.add_argument(
        "--verify",
        action="store_true",
        help="run the full chain verification (always done for art12)",
    )
    ex.add_argument(
        "--public-key",
        type=Path,
        default=None,
        help="Ed25519 public key (PEM) checkpoints must verify under",
    )
    ex.add_argument("--fleet", action="store_true",
                    help="every replica's records, from [audit] archive_url (live replicas seal first)")
    ex.add_argument("--detail-limit", type=int, default=200, help="detail rows shown in html/pdf")
    ex.add_argument(
        "--memory-limit",
        default="256MB",
        help="DuckDB memory limit (spills to encrypted temp files)",
    )
    bar = ex.add_mutually_exclusive_group()
    bar.add_argument(
        "--progress",
        dest="progress",
        action="store_true",
        default=None,
        help="always show progress on stderr",
    )
    bar.add_argument("--no-progress", dest="progress", action="store_false")
    ex.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    try:
        request = ReportRequest(
            kind=args.kind,
            period=Period(args.date_from, args.date_to),
            tenant=args.tenant,
            application=args.application,
            request_ids=tuple(args.request_id),
            incident=IncidentDetails(
                aware_at=args.aware_at, severity=args.severity, description=args.description
            ),
            verify=args.verify,
            detail_limit=max(args.detail_limit, 0),
        )
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from appliance.config import load_config
    from appliance.reports.export import export
    from appliance.reports.report import ReportError

    fleet = {"audit": {"read_from": "archive"}} if args.fleet else None
    config = load_config(args.config, data_dir=args.data_dir, overrides=fleet)
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    try:
        result = export(
            config,
            request,
            args.format,
            args.out,
            progress=progress,
            public_key=args.public_key,
            memory_limit=args.memory_limit,
        )
    except ReportError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    verified = {None: "not run", True: "passed", False: "FAILED"}[result.verified]
    print(
        f"wrote {result.path} ({result.format}, {result.kind}): {result.records:,} records, "
        f"{result.rows:,} detail rows; checkpoint digest {result.checkpoint_digest}; chain verification {verified}",
        file=sys.stderr,
    )
    return 1 if result.verified is False else 0
