"""The overview: requests, denials by rule, PII by type, risk classes, spend and errors
over time, by tenant, application and model (read from the audit view's roll-ups)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json

from aiohttp import web

from appliance.console.app import ConsoleError, Page, Route
from appliance.console.auditlog import AuditFilters

#: The period menu: name -> length.
PERIODS = {"24h": dt.timedelta(hours=24), "7d": dt.timedelta(days=7), "30d": dt.timedelta(days=30),
           "90d": dt.timedelta(days=90), "365d": dt.timedelta(days=365)}


def _text(page: Page, name: str) -> str | None:
    value = (page.request.query.get(name) or "").strip()
    return value or None


async def overview(page: Page) -> web.StreamResponse:
    period = page.request.query.get("period", "30d")
    if period not in PERIODS:
        raise ConsoleError(400, "error.bad_request")
    now = dt.datetime.now(dt.UTC)
    scope = page.tenant_scope
    filters = AuditFilters(
        since=now - PERIODS[period],
        tenant=scope if scope is not None else _text(page, "tenant"),
        application=_text(page, "application"),
        model=_text(page, "model"),
    )
    view = page.deps.view
    refresh = page.deps.config.console.audit_refresh_s
    data = await asyncio.to_thread(view.overview, filters, max_age_s=refresh)
    tenants = [scope] if scope is not None else await asyncio.to_thread(view.distinct, "tenant")
    applications = await asyncio.to_thread(view.distinct, "application", scope)
    models = await asyncio.to_thread(view.distinct, "model", scope)
    t = page.t
    charts = {
        "over_time": {
            "type": "line",
            "labels": [p["t"] for p in data["series"]],
            "series": [
                {"label": t("overview.requests"), "data": [p["requests"] for p in data["series"]]},
                {"label": t("overview.denied"), "data": [p["denied"] for p in data["series"]]},
                {"label": t("overview.errors"), "data": [p["errors"] for p in data["series"]]},
            ],
        },
        "spend": {
            "type": "bar",
            "labels": [p["t"] for p in data["series"]],
            "series": [{"label": t("overview.spend_usd"), "data": [round(p["cost"], 6) for p in data["series"]]}],
        },
        "rules": {"type": "bar", "horizontal": True, "labels": [r["rule"] for r in data["rules"]],
                  "series": [{"label": t("overview.denials"), "data": [r["n"] for r in data["rules"]]}]},
        "pii": {"type": "bar", "horizontal": True, "labels": [p["type"] for p in data["pii"]],
                "series": [{"label": t("overview.findings"), "data": [p["n"] for p in data["pii"]]}]},
        "risk": {"type": "doughnut", "labels": [r["class"] for r in data["risk"]],
                 "series": [{"label": t("overview.requests"), "data": [r["n"] for r in data["risk"]]}]},
    }
    return page.render(
        "overview.html",
        data=data,
        charts={k: json.dumps(v) for k, v in charts.items()},
        period=period,
        periods=list(PERIODS),
        filters=filters,
        tenants=tenants,
        applications=applications,
        models=models,
    )


ROUTES = (Route("GET", "/", overview, "overview", "overview"),)
