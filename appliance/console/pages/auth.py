"""Sign-in (local accounts and OpenID Connect), sign-out, the user's language.

Every attempt is audited: a success (``signin``), a failure (``signin_failed``, with the
name that was tried, never the password) and the lock-out it may cause
(``account_locked``). The failure message is the same whether the name exists, the
password is wrong or the account is locked, so the form tells an attacker nothing.
"""

from __future__ import annotations

import asyncio
import time

from aiohttp import web

from appliance.console import oidc
from appliance.console.app import (
    PREFIX,
    ConsoleError,
    Page,
    Route,
    clear_session_cookie,
    login_token,
    redirect,
    set_login_cookie,
    set_session_cookie,
)
from appliance.console.i18n import LANGUAGES
from appliance.console.passwords import verify_password
from appliance.console.store import ConsoleUser


def safe_next(target: str | None) -> str:
    """Only a path inside the console (never another site) is followed after sign-in."""
    if target and target.startswith(PREFIX + "/") and not target.startswith("//") and "\\" not in target:
        return target
    return PREFIX + "/"


async def login_form(page: Page) -> web.StreamResponse:
    if page.session is not None:
        raise web.HTTPSeeOther(location=safe_next(page.request.query.get("next")))
    return _form(page, error=None, status=200)


def _form(page: Page, error: str | None, status: int) -> web.StreamResponse:
    cfg = page.deps.config.console
    token, new = login_token(page.request)
    response = page.render(
        "login.html",
        status=status,
        error=error,
        next=safe_next(page.request.query.get("next") or page.field("next")),
        local=cfg.local_accounts,
        oidc=cfg.oidc,
        login_csrf=token,
    )
    if new:
        set_login_cookie(response, page.deps, token)
    return response


async def login(page: Page) -> web.StreamResponse:
    deps = page.deps
    cfg = deps.config.console
    if not cfg.local_accounts:
        raise ConsoleError(404, "error.not_found")
    username = page.field("username")
    password = page.field("password")
    if not username or not password or len(username) > 200 or len(password) > 1024:
        return _form(page, error=page.t("login.failed"), status=400)
    user = await asyncio.to_thread(deps.store.get_user, username)
    locked = user is not None and user.locked_until is not None and user.locked_until > time.time()
    usable = user is not None and user.source == "local" and not user.disabled and not locked
    ok = await asyncio.to_thread(verify_password, user.password_hash if user else None, password)
    if not (ok and usable and user is not None):
        reason = ("unknown_user" if user is None else "locked" if locked else "disabled" if user.disabled
                  else "not_local" if user.source != "local" else "bad_password")
        await deps.audit(username, "signin_failed", {"method": "local", "reason": reason,
                                                     "remote": page.request.remote})
        if user is not None and not locked and reason == "bad_password":
            now_locked = await asyncio.to_thread(
                deps.store.record_failure, username, cfg.max_failed_logins, cfg.lockout_s
            )
            if now_locked:
                await deps.audit(username, "account_locked", {"after_failures": cfg.max_failed_logins,
                                                              "locked_for_s": cfg.lockout_s})
        return _form(page, error=page.t("login.failed"), status=401)
    await asyncio.to_thread(deps.store.record_success, username)
    return await start_session(page, user, user.roles, "local")


async def start_session(page: Page, user: ConsoleUser, roles: tuple[str, ...] | list[str],
                        method: str, target: str | None = None) -> web.StreamResponse:
    token, session = await asyncio.to_thread(page.deps.store.create_session, user, roles)
    await page.deps.audit(user.username, "signin", {"method": method, "roles": sorted(roles),
                                                    "remote": page.request.remote}, tenant=user.tenant)
    response = web.HTTPSeeOther(location=safe_next(target or page.field("next")))
    set_session_cookie(response, page.deps, token)
    response.del_cookie("appliance_console_login", path=PREFIX)
    raise response


async def logout(page: Page) -> web.StreamResponse:
    assert page.session is not None
    await asyncio.to_thread(page.deps.store.end_session, page.session.id_hash)
    await page.audit("signout")
    response = redirect("/login")
    clear_session_cookie(response)
    raise response


async def set_language(page: Page) -> web.StreamResponse:
    language = page.field("language")
    if language not in LANGUAGES:
        raise ConsoleError(400, "error.bad_request")
    before = page.user.language if page.user else None
    await asyncio.to_thread(page.deps.store.set_language, page.username, language)
    await page.audit("set_language", {"before": before, "after": language})
    back = page.request.headers.get("Referer", "")
    path = back.split(page.request.host, 1)[-1] if page.request.host in back else ""
    raise web.HTTPSeeOther(location=safe_next(path))


async def oidc_start(page: Page) -> web.StreamResponse:
    cfg = page.deps.config.console.oidc
    if cfg is None:
        raise ConsoleError(404, "error.not_found")
    try:
        location = await oidc.begin(page.deps, cfg, page.request, safe_next(page.request.query.get("next")))
    except oidc.OidcError as e:
        await page.deps.audit("anonymous", "signin_failed", {"method": "oidc", "reason": e.reason})
        raise ConsoleError(502, "login.sso_unavailable") from None
    raise web.HTTPFound(location=location)


async def oidc_callback(page: Page) -> web.StreamResponse:
    cfg = page.deps.config.console.oidc
    if cfg is None:
        raise ConsoleError(404, "error.not_found")
    try:
        identity = await oidc.finish(page.deps, cfg, page.request)
    except oidc.OidcError as e:
        await page.deps.audit(e.subject or "anonymous", "signin_failed",
                              {"method": "oidc", "reason": e.reason, "remote": page.request.remote})
        return _form(page, error=page.t("login.sso_failed"), status=401)
    user = await asyncio.to_thread(
        page.deps.store.upsert_sso_user, identity.username, roles=identity.roles,
        tenant=identity.tenant, display_name=identity.display_name,
    )
    if user.source != "oidc":
        await page.deps.audit(identity.username, "signin_failed",
                              {"method": "oidc", "reason": "name_of_a_local_account"})
        return _form(page, error=page.t("login.sso_failed"), status=401)
    if user.disabled:
        await page.deps.audit(identity.username, "signin_failed", {"method": "oidc", "reason": "disabled"})
        return _form(page, error=page.t("login.sso_failed"), status=401)
    return await start_session(page, user, identity.roles, "oidc", identity.next_path)


ROUTES = (
    Route("GET", "/login", login_form, None, "login"),
    Route("POST", "/login", login, None, "login.post"),
    Route("GET", "/login/oidc", oidc_start, None, "login.oidc"),
    Route("GET", "/oidc/callback", oidc_callback, None, "login.callback"),
    Route("POST", "/logout", logout, "account", "account.logout"),
    Route("POST", "/account/language", set_language, "account", "account.language"),
)
