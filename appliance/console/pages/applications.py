"""Applications (AI systems): their declared purpose, Annex III area and risk class.

Registration is ``appliance.risk.apps.register_application``, the same function as
``appliance apps register`` and ``POST /admin/apps``; the purpose is read by the running
risk classifier when one is loaded.
"""

from __future__ import annotations

import asyncio

from aiohttp import web

from appliance.console.app import Page, Route
from appliance.risk.apps import register_application


async def applications(page: Page, error: str | None = None, status: int = 200,
                       registered: dict[str, object] | None = None) -> web.StreamResponse:
    apps = await asyncio.to_thread(page.deps.control.list_apps, None)
    return page.render("applications.html", apps=apps, error=error, status=status, registered=registered)


async def register(page: Page) -> web.StreamResponse:
    tenant, name = page.field("tenant"), page.field("name")
    if not tenant or not name or not page.field("purpose"):
        return await applications(page, error=page.t("apps.required"), status=400)
    before = await asyncio.to_thread(page.deps.control.get_app, tenant, name)
    try:
        app = await asyncio.to_thread(
            register_application,
            page.deps.control,
            tenant=tenant,
            name=name,
            purpose=page.field("purpose"),
            annex_iii=page.field("annex_iii") or None,
            classifier=page.deps.classifier,
        )
    except ValueError as e:
        return await applications(page, error=str(e), status=400)
    await page.audit("app_register", {"before": before, "after": app}, tenant=tenant)
    return await applications(page, registered=app, status=201)


ROUTES = (
    Route("GET", "/applications", applications, "apps.read", "applications"),
    Route("POST", "/applications", register, "apps.write", "applications.register"),
)
