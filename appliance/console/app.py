"""The console's web application: routes, the guard every route passes, rendering.

Every route is one :class:`Route` with the permission it needs (``None``: public, the
sign-in pages and static files). The guard loads the session from its cookie, checks the
permission on the server, checks the CSRF token of every form (and of the sign-in form,
by a double-submit cookie, before any session exists), and hands the handler a
:class:`Page`. Errors become an HTML page in the user's language, never a traceback.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import jinja2
from aiohttp import web
from aiohttp.typedefs import Handler
from multidict import MultiDictProxy

from appliance.console.deps import ConsoleDeps
from appliance.console.i18n import Translator, pick_language
from appliance.console.roles import allowed, scoped_to_tenant
from appliance.console.store import ConsoleUser, Session

log = logging.getLogger(__name__)

CONSOLE = web.AppKey("console", ConsoleDeps)
PREFIX = "/console"
SESSION_COOKIE = "appliance_console"
#: Double-submit token of the sign-in form (there is no session to hold it yet).
LOGIN_COOKIE = "appliance_console_login"
_SAFE_METHODS = frozenset({"GET", "HEAD"})

PageHandler = Callable[["Page"], Awaitable[web.StreamResponse]]


class ConsoleError(Exception):
    """An error shown to the user as a page: status and a catalogue key."""

    def __init__(self, status: int, key: str, **values: Any) -> None:
        super().__init__(key)
        self.status = status
        self.key = key
        self.values = values


@dataclass(frozen=True)
class Route:
    method: str
    #: Path below /console (aiohttp syntax: ``/audit/{segment}/{seq}``).
    path: str
    handler: PageHandler
    #: Permission of :mod:`appliance.console.roles` it needs; None: public.
    permission: str | None
    name: str


@dataclass
class Page:
    """What a handler gets: the request, the console's services, who asks, in what language."""

    request: web.Request
    deps: ConsoleDeps
    session: Session | None
    user: ConsoleUser | None
    t: Translator
    route: Route
    form: MultiDictProxy[str | bytes | Any] | None = None

    @property
    def username(self) -> str:
        return self.session.username if self.session else "anonymous"

    @property
    def roles(self) -> frozenset[str]:
        return self.session.roles if self.session else frozenset()

    def can(self, permission: str) -> bool:
        return allowed(self.roles, permission)

    @property
    def tenant_scope(self) -> str | None:
        """The one tenant a tenant_viewer may see (None: not narrowed)."""
        if self.session is None or not scoped_to_tenant(self.roles):
            return None
        return self.session.tenant or "\x00no-tenant"

    def field(self, name: str, default: str = "") -> str:
        value = self.form.get(name) if self.form is not None else None
        return value.strip() if isinstance(value, str) else default

    def render(self, template: str, status: int = 200, **context: Any) -> web.Response:
        html = environment().get_template(template).render(
            t=self.t,
            page=self,
            prefix=PREFIX,
            csrf=self.session.csrf if self.session else "",
            nav=_nav(self),
            **context,
        )
        return web.Response(text=html, status=status, content_type="text/html", charset="utf-8")

    async def audit(self, action: str, details: Mapping[str, Any] | None = None,
                    tenant: str | None = None, kind: str = "console") -> None:
        await self.deps.audit(self.username, action, details, tenant=tenant, kind=kind)


PAGE = web.RequestKey("console_page", Page)


def redirect(path: str) -> web.HTTPSeeOther:
    return web.HTTPSeeOther(location=PREFIX + path)


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("appliance.console", "templates"),
        autoescape=jinja2.select_autoescape(("html",)),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["urlq"] = lambda v: quote(str(v), safe="")
    env.filters["ts"] = lambda v: dt.datetime.fromtimestamp(v, dt.UTC) if v else None
    return env


#: (permission, route name, catalogue key) of the navigation, in order.
_NAV = (
    ("overview", "overview", "nav.overview"),
    ("audit.read", "audit", "nav.audit"),
    ("policy.read", "policies", "nav.policies"),
    ("apps.read", "applications", "nav.applications"),
    ("keys.read", "keys", "nav.keys"),
    ("reports", "reports", "nav.reports"),
    ("incidents", "incidents", "nav.incidents"),
    ("settings", "settings", "nav.settings"),
)

_NAV_PATHS = {
    "overview": "/", "audit": "/audit", "policies": "/policies", "applications": "/applications",
    "keys": "/keys", "reports": "/reports", "incidents": "/incidents", "settings": "/settings",
}


def _nav(page: Page) -> list[dict[str, Any]]:
    if page.session is None:
        return []
    current = page.route.name.split(".")[0]
    return [
        {"href": PREFIX + _NAV_PATHS[name], "label": page.t(key), "current": current == name}
        for perm, name, key in _NAV
        if page.can(perm)
    ]


def _secure(deps: ConsoleDeps) -> bool:
    return deps.config.console.secure_cookies


def set_session_cookie(response: web.StreamResponse, deps: ConsoleDeps, token: str) -> None:
    response.set_cookie(SESSION_COOKIE, token, path=PREFIX, httponly=True, secure=_secure(deps),
                        samesite="Lax")


def clear_session_cookie(response: web.StreamResponse) -> None:
    response.del_cookie(SESSION_COOKIE, path=PREFIX)


def login_token(request: web.Request) -> tuple[str, bool]:
    """The sign-in form's double-submit token: the cookie's, or a new one (True: set it)."""
    token = request.cookies.get(LOGIN_COOKIE)
    if token and len(token) >= 20:
        return token, False
    return secrets.token_urlsafe(24), True


def set_login_cookie(response: web.StreamResponse, deps: ConsoleDeps, token: str) -> None:
    response.set_cookie(LOGIN_COOKIE, token, path=PREFIX, httponly=True, secure=_secure(deps),
                        samesite="Strict")


def _same_origin(request: web.Request) -> bool:
    """A form must come from the console's own origin (when the browser says where from)."""
    origin = request.headers.get("Origin")
    if origin is None or origin == "null":
        referer = request.headers.get("Referer")
        if referer is None:
            return origin is None
        origin = referer
    parts = urlsplit(origin)
    return parts.netloc == request.host


def _load(deps: ConsoleDeps, token: str | None) -> tuple[Session | None, ConsoleUser | None]:
    if not token:
        return None, None
    cfg = deps.config.console
    session = deps.store.session(token, cfg.idle_timeout_s, cfg.absolute_timeout_s)
    if session is None:
        return None, None
    return session, deps.store.get_user(session.username)


def guarded(route: Route) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        deps = request.config_dict[CONSOLE]
        session, user = await asyncio.to_thread(_load, deps, request.cookies.get(SESSION_COOKIE))
        language = pick_language(
            user.language if user else None,
            request.cookies.get("appliance_console_lang"),
            deps.config.console.default_language,
        )
        page = Page(request, deps, session, user, Translator(language), route)
        request[PAGE] = page
        if route.permission is not None:
            if session is None:
                if request.method in _SAFE_METHODS:
                    target = request.rel_url.path_qs
                    raise web.HTTPSeeOther(location=f"{PREFIX}/login?next={quote(target, safe='')}")
                raise ConsoleError(401, "error.signed_out")
            if not allowed(session.roles, route.permission):
                raise ConsoleError(403, "error.forbidden")
        if request.method not in _SAFE_METHODS:
            if not _same_origin(request):
                raise ConsoleError(403, "error.csrf")
            page.form = await request.post()
            sent = page.form.get("csrf_token") or request.headers.get("X-CSRF-Token") or ""
            expected = session.csrf if session is not None else request.cookies.get(LOGIN_COOKIE, "")
            if not isinstance(sent, str) or not expected or not hmac.compare_digest(sent, expected):
                raise ConsoleError(403, "error.csrf")
        return await route.handler(page)

    return handler


#: Content-Security-Policy: only the console's own files; no inline script or style.
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


@web.middleware
async def console_boundary(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Security headers on every answer; errors as pages in the user's language."""
    try:
        response = await handler(request)
    except ConsoleError as e:
        response = _error_page(request, e.status, e.key, e.values)
    except web.HTTPException as e:
        if e.status < 400:
            raise
        response = _error_page(request, e.status, "error.not_found" if e.status == 404 else "error.bad_request", {})
    except Exception as e:  # noqa: BLE001 - the console's error boundary: a page, no traceback
        log.error("console: unhandled %s on %s", type(e).__name__, request.path)
        log.debug("console: unhandled error", exc_info=True)
        response = _error_page(request, 500, "error.internal", {})
    if not response.prepared:
        _harden(response)
    return response


def _harden(response: web.StreamResponse) -> None:
    response.headers.setdefault("Content-Security-Policy", _CSP)
    response.headers.setdefault("X-Frame-Options", "DENY")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    if response.content_type == "text/html" or response.headers.get("Content-Disposition"):
        response.headers.setdefault("Cache-Control", "no-store")


def _error_page(request: web.Request, status: int, key: str, values: Mapping[str, Any]) -> web.Response:
    page: Page | None = request.get(PAGE)
    if page is None:
        deps = request.config_dict.get(CONSOLE)
        lang = deps.config.console.default_language if deps is not None else "en"
        page = Page(request, deps, None, None, Translator(lang),  # type: ignore[arg-type]
                    Route("GET", "", _not_found, None, "error"))
    try:
        return page.render("error.html", status=status, status_code=status, message=page.t(key, **values))
    except Exception as e:  # noqa: BLE001 - a broken template must still not leak a traceback
        log.error("console: error page failed: %s", type(e).__name__)
        return web.Response(text=f"Error {status}", status=status)


async def _not_found(page: Page) -> web.StreamResponse:
    raise ConsoleError(404, "error.not_found")


def static_dir() -> Path:
    return Path(str(resources.files("appliance.console") / "static"))


def console_app(routes: tuple[Route, ...]) -> web.Application:
    """The console as an aiohttp application, to mount at /console (or serve alone)."""
    app = web.Application(middlewares=[console_boundary])
    for route in routes:
        app.router.add_route(route.method, route.path, guarded(route), name=route.name)
    app.router.add_static("/static", static_dir(), name="static", append_version=False)
    app.router.add_route("*", "/{tail:.*}", guarded(Route("*", "", _not_found, None, "not_found")))
    return app
