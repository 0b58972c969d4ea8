"""Serious incidents (AI Act Art. 73): drafts with their reporting deadlines counting down.

A draft holds what a person must supply (when the provider became aware, which
deadline applies, the description, the requests concerned); the report itself is the
``incident`` report kind, downloaded from here in any format.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any

from aiohttp import web

from appliance.console.app import ConsoleError, Page, Route, redirect
from appliance.console.pages.reports import send_file
from appliance.console.store import split_list
from appliance.reports.formats import formats
from appliance.reports.incident import DEADLINES, deadline_for
from appliance.reports.request import SEVERITIES, IncidentDetails, Period, ReportRequest


def _with_deadline(incident: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    aware = dt.datetime.fromtimestamp(incident["aware_at"], dt.UTC)
    d = deadline_for(incident["severity"])
    due = d.due(aware)
    return {
        **incident,
        "aware": aware.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "due": due.isoformat(timespec="seconds").replace("+00:00", "Z"),
        "article": d.article,
        "days": d.days,
        "overdue": due <= now,
        "left_h": max(0, int((due - now).total_seconds() // 3600)),
    }


async def incidents(page: Page, error: str | None = None, status: int = 200) -> web.StreamResponse:
    now = dt.datetime.now(dt.UTC)
    found = await asyncio.to_thread(page.deps.store.list_incidents)
    return page.render("incidents.html", incidents=[_with_deadline(i, now) for i in found],
                       severities=SEVERITIES, deadlines=DEADLINES, formats=list(formats()),
                       now=now.isoformat(timespec="minutes").replace("+00:00", ""),
                       error=error, status=status)


async def create(page: Page) -> web.StreamResponse:
    title, severity = page.field("title"), page.field("severity")
    if not title or severity not in SEVERITIES:
        return await incidents(page, error=page.t("incidents.required"), status=400)
    try:
        aware = dt.datetime.fromisoformat(page.field("aware_at"))
    except ValueError:
        return await incidents(page, error=page.t("incidents.bad_time"), status=400)
    aware = aware if aware.tzinfo else aware.replace(tzinfo=dt.UTC)
    found = await asyncio.to_thread(
        page.deps.store.create_incident,
        title=title[:200], severity=severity, aware_at=aware.timestamp(),
        description=page.field("description")[:5000], request_ids=split_list(page.field("request_ids"))[:500],
        created_by=page.username,
    )
    await page.audit("incident_create", {"after": {k: v for k, v in found.items() if k != "description"}})
    raise redirect("/incidents")


async def download(page: Page) -> web.StreamResponse:
    incident = await asyncio.to_thread(page.deps.store.get_incident, page.request.match_info["incident_id"])
    fmt = page.field("format")
    if incident is None or fmt not in formats():
        raise ConsoleError(404, "error.not_found")
    aware = dt.datetime.fromtimestamp(incident["aware_at"], dt.UTC)
    today = dt.datetime.now(dt.UTC).date()
    first = min(aware.date() - dt.timedelta(days=30), today)
    request = ReportRequest(
        kind="incident",
        period=Period(first, max(today, aware.date())),
        request_ids=tuple(incident["request_ids"]),
        incident=IncidentDetails(aware_at=aware, severity=incident["severity"],
                                 description=incident["description"]),
    )
    return await send_file(page, request, fmt, "incident_report")


ROUTES = (
    Route("GET", "/incidents", incidents, "incidents", "incidents"),
    Route("POST", "/incidents", create, "incidents", "incidents.create"),
    Route("POST", "/incidents/{incident_id}/report", download, "incidents", "incidents.report"),
)
