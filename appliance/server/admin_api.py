"""The admin API: keys and applications, guarded by the admin key from the environment."""

from __future__ import annotations

import asyncio
import hmac
from typing import Any

from aiohttp import web

from appliance.errors import (
    AuthenticationFailed,
    InvalidRequest,
    NotFound,
    PermissionDenied,
)
from appliance.pii.special.categories import parse_basis
from appliance.risk.apps import register_application
from appliance.server.exchange import api_key_of, read_body
from appliance.server.services import SERVICES, Services
from appliance.server.validate import parse_json


def _guard(request: web.Request) -> Services:
    services = request.app[SERVICES]
    if not services.admin_key:
        raise PermissionDenied(
            f"The admin API is disabled: set {services.config.server.admin_key_env} at start-up."
        )
    given = api_key_of(request)
    if not given or not hmac.compare_digest(given.encode(), services.admin_key.encode()):
        raise AuthenticationFailed("Invalid admin key.")
    return services


def _str(body: dict[str, Any], name: str, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidRequest(f"'{name}' must be a non-empty string.", param=name)
    return value


async def list_keys(request: web.Request) -> web.Response:
    services = _guard(request)
    keys = await asyncio.to_thread(services.control.list_keys, request.query.get("tenant"))
    return web.json_response({"object": "list", "data": [k.public() for k in keys]})


async def create_key(request: web.Request) -> web.Response:
    services = _guard(request)
    body = parse_json(await read_body(request))
    roles = body.get("roles") or []
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise InvalidRequest("'roles' must be an array of strings.", param="roles")
    limits = body.get("limits") or {}
    if not isinstance(limits, dict):
        raise InvalidRequest("'limits' must be an object.", param="limits")
    expires_at = body.get("expires_at")
    if expires_at is not None and (isinstance(expires_at, bool)
                                   or not isinstance(expires_at, int | float)):
        raise InvalidRequest("'expires_at' must be a Unix time in seconds.", param="expires_at")
    try:
        key, record = await asyncio.to_thread(
            services.control.create_key,
            tenant=_str(body, "tenant") or "",
            user=_str(body, "user") or "",
            department=_str(body, "department", required=False),
            roles=tuple(roles),
            application=_str(body, "application", required=False),
            limits=limits,
            expires_at=expires_at,
        )
    except ValueError as e:
        raise InvalidRequest(str(e)) from None
    return web.json_response({"key": key, **record.public()}, status=201)


async def revoke_key(request: web.Request) -> web.Response:
    services = _guard(request)
    key_id = request.match_info["key_id"]
    if not await asyncio.to_thread(services.control.revoke_key, key_id):
        raise NotFound(f"No key with id {key_id!r}.")
    return web.json_response({"id": key_id, "revoked": True})


async def list_apps(request: web.Request) -> web.Response:
    services = _guard(request)
    apps = await asyncio.to_thread(services.control.list_apps, request.query.get("tenant"))
    return web.json_response({"object": "list", "data": apps})


async def register_app(request: web.Request) -> web.Response:
    services = _guard(request)
    body = parse_json(await read_body(request))
    try:
        app = await asyncio.to_thread(
            register_application,
            services.control,
            tenant=_str(body, "tenant") or "",
            name=_str(body, "name") or "",
            purpose=_str(body, "purpose") or "",
            annex_iii=_str(body, "annex_iii", required=False),
            classifier=services.classifier,
            art9_basis=_art9_basis(body),
        )
    except ValueError as e:
        raise InvalidRequest(str(e)) from None
    return web.json_response(app, status=201)


def _art9_basis(body: dict[str, Any]) -> dict[str, str] | None:
    """``art9_basis`` as ``{"HEALTH": "health_care", "*": "explicit_consent"}``; absent
    keeps the registered bases, ``{}`` clears them (the CLI's ``--art9-basis``)."""
    value = body.get("art9_basis")
    if value is None:
        return None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise InvalidRequest("'art9_basis' must be an object of CATEGORY: basis strings")
    return dict(parse_basis(f"{category}={basis}") for category, basis in value.items())


def add_routes(app: web.Application) -> None:
    app.router.add_get("/admin/keys", list_keys)
    app.router.add_post("/admin/keys", create_key)
    app.router.add_delete("/admin/keys/{key_id}", revoke_key)
    app.router.add_get("/admin/apps", list_apps)
    app.router.add_post("/admin/apps", register_app)
