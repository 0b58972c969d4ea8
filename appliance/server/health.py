"""Liveness and readiness probes."""

from __future__ import annotations

from aiohttp import web

from appliance.server.services import SERVICES


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    services = request.app.get(SERVICES)
    if services is None:
        return web.json_response({"status": "starting"}, status=503)
    reasons = [r for gate in services.pipeline.gates if (r := gate.unready()) is not None]
    if reasons:  # the audit log cannot take records: requests are refused (503)
        return web.json_response({"status": "unready", "reasons": reasons}, status=503)
    return web.json_response(
        {"status": "ready", "models": sorted(services.config.models)},
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
