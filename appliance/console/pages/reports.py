"""Reports: every kind in every format, produced by the CLI's exporter and downloaded."""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import tempfile
from pathlib import Path

from aiohttp import web

from appliance.console.app import ConsoleError, Page, Route
from appliance.console.report_jobs import ReportFailed, export_report
from appliance.reports.formats import formats
from appliance.reports.kinds import kinds
from appliance.reports.request import Period, ReportRequest, parse_day


async def reports(page: Page, error: str | None = None, status: int = 200) -> web.StreamResponse:
    today = dt.date.today()
    return page.render(
        "reports.html",
        kinds=[(k.name, k.title) for k in kinds().values()],
        formats=list(formats()),
        first=(today - dt.timedelta(days=30)).isoformat(),
        last=today.isoformat(),
        error=error,
        status=status,
    )


def work_dir(page: Page) -> str:
    """A private directory for one report (removed once it was sent)."""
    base = page.deps.config.storage.data_dir / "tmp"
    base.mkdir(parents=True, exist_ok=True, mode=0o700)
    return tempfile.mkdtemp(prefix="report-", dir=base)


async def send_file(page: Page, request: ReportRequest, fmt: str, action: str) -> web.StreamResponse:
    out_dir = work_dir(page)
    try:
        produced = await export_report(page.deps.config, request, fmt, Path(out_dir))
        await page.audit(action, {"kind": request.kind, "format": fmt, "from": str(request.period.first),
                                  "to": str(request.period.last), "tenant": request.tenant,
                                  "application": request.application,
                                  "records": produced.summary.get("records"),
                                  "checkpoint_digest": produced.summary.get("checkpoint_digest")},
                         tenant=request.tenant)
        body = await asyncio.to_thread(produced.path.read_bytes)
    except ReportFailed as e:
        raise ConsoleError(422, "reports.failed", why=str(e)) from None
    finally:
        await asyncio.to_thread(shutil.rmtree, out_dir, True)
    return web.Response(
        body=body,
        content_type=produced.media_type,
        headers={"Content-Disposition": f'attachment; filename="{produced.filename}"'},
    )


async def export(page: Page) -> web.StreamResponse:
    kind, fmt = page.field("kind"), page.field("format")
    if kind not in kinds() or fmt not in formats():
        raise ConsoleError(400, "error.bad_request")
    try:
        period = Period(parse_day(page.field("from")), parse_day(page.field("to")))
    except ValueError as e:
        return await reports(page, error=str(e), status=400)
    scope = page.tenant_scope
    request = ReportRequest(
        kind=kind,
        period=period,
        tenant=scope if scope is not None else (page.field("tenant") or None),
        application=page.field("application") or None,
    )
    return await send_file(page, request, fmt, "report_export")


ROUTES = (
    Route("GET", "/reports", reports, "reports", "reports"),
    Route("POST", "/reports", export, "reports", "reports.export"),
)
