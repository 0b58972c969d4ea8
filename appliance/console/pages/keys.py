"""API keys: list, create (the key is shown once), revoke; with rate limits and budgets.

The same control-plane calls as ``appliance keys`` and ``/admin/keys``; every change is
audited with the record before and after (never the key's secret).
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from appliance.console.app import ConsoleError, Page, Route, redirect
from appliance.console.store import split_list

#: Form field -> limit name of the control plane, and its type.
LIMIT_FIELDS: dict[str, type] = {"rpm": int, "tpm": int, "budget_usd_day": float, "budget_usd_month": float}


async def keys(page: Page, new_key: str | None = None, error: str | None = None,
               status: int = 200) -> web.StreamResponse:
    records = await asyncio.to_thread(page.deps.control.list_keys, None)
    apps = await asyncio.to_thread(page.deps.control.list_apps, None)
    return page.render("keys.html", keys=[k.public() for k in records], apps=apps, new_key=new_key,
                       error=error, status=status, limit_fields=list(LIMIT_FIELDS))


def _limits(page: Page) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, kind in LIMIT_FIELDS.items():
        text = page.field(name)
        if not text:
            continue
        try:
            value = kind(text)
        except ValueError:
            raise ConsoleError(400, "keys.bad_limit", name=name) from None
        if value <= 0:
            raise ConsoleError(400, "keys.bad_limit", name=name)
        out[name] = value
    return out


async def create(page: Page) -> web.StreamResponse:
    limits = _limits(page)
    try:
        key, record = await asyncio.to_thread(
            page.deps.control.create_key,
            tenant=page.field("tenant"),
            user=page.field("user"),
            department=page.field("department") or None,
            roles=tuple(split_list(page.field("roles"))),
            application=page.field("application") or None,
            limits=limits,
        )
    except ValueError as e:
        return await keys(page, error=str(e), status=400)
    await page.audit("key_create", {"before": None, "after": record.public()}, tenant=record.tenant)
    return await keys(page, new_key=key, status=201)


async def revoke(page: Page) -> web.StreamResponse:
    key_id = page.request.match_info["key_id"]
    before = await asyncio.to_thread(page.deps.control.get_key, key_id)
    if before is None:
        raise ConsoleError(404, "error.not_found")
    await asyncio.to_thread(page.deps.control.revoke_key, key_id)
    after = await asyncio.to_thread(page.deps.control.get_key, key_id)
    await page.audit("key_revoke", {"before": before.public(), "after": after.public() if after else None},
                     tenant=before.tenant)
    raise redirect("/keys")


ROUTES = (
    Route("GET", "/keys", keys, "keys.read", "keys"),
    Route("POST", "/keys", create, "keys.write", "keys.create"),
    Route("POST", "/keys/{key_id}/revoke", revoke, "keys.write", "keys.revoke"),
)
