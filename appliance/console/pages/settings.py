"""Settings (admin): console users, tenants, and the configuration in force (no secrets)."""

from __future__ import annotations

import asyncio
from collections import Counter

from aiohttp import web

from appliance.console.app import ConsoleError, Page, Route, redirect


async def settings(page: Page) -> web.StreamResponse:
    deps = page.deps
    users = await asyncio.to_thread(deps.store.list_users)
    keys = await asyncio.to_thread(deps.control.list_keys, None)
    apps = await asyncio.to_thread(deps.control.list_apps, None)
    active = Counter(k.tenant for k in keys if k.revoked_at is None)
    revoked = Counter(k.tenant for k in keys if k.revoked_at is not None)
    app_count = Counter(str(a["tenant"]) for a in apps)
    tenants = sorted(set(active) | set(revoked) | set(app_count))
    cfg = deps.config
    return page.render(
        "settings.html",
        users=[u.public() for u in users],
        tenants=[{"name": t, "keys": active[t], "revoked": revoked[t], "apps": app_count[t]} for t in tenants],
        console=cfg.console.model_dump(mode="json", exclude={"oidc"}),
        oidc=cfg.console.oidc.model_dump(mode="json") if cfg.console.oidc else None,
        policy=deps.policy_status(),
        audit={"retention_days": cfg.audit.retention_days, "dir": str(cfg.resolve(cfg.audit.dir))},
    )


async def set_user(page: Page) -> web.StreamResponse:
    name = page.request.match_info["username"]
    action = page.request.match_info["action"]
    if action not in ("disable", "enable"):
        raise ConsoleError(404, "error.not_found")
    if name == page.username and action == "disable":
        raise ConsoleError(400, "settings.not_yourself")
    before = await asyncio.to_thread(page.deps.store.get_user, name)
    if before is None:
        raise ConsoleError(404, "error.not_found")
    await asyncio.to_thread(page.deps.store.set_disabled, name, action == "disable")
    await page.audit(f"user_{action}", {"user": name, "before": {"disabled": before.disabled},
                                        "after": {"disabled": action == "disable"}})
    raise redirect("/settings")


ROUTES = (
    Route("GET", "/settings", settings, "settings", "settings"),
    Route("POST", "/settings/users/{username}/{action}", set_user, "settings", "settings.user"),
)
