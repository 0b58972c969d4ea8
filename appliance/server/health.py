"""Liveness and readiness probes.

``/readyz`` answers 503 while the replica starts, drains after SIGTERM, or cannot serve
at all (no policy loaded); the load balancer then sends it nothing. A shared engine
that is down (PostgreSQL, Redis, the audit archive) is reported as ``degraded`` with
its details and the configured behaviour, while the replica stays ready: see
:class:`appliance.core.readiness.Readiness` for why.
"""

from __future__ import annotations

import asyncio
import functools
import json

from aiohttp import web

from appliance.core.readiness import Readiness
from appliance.server.lifecycle import DRAIN
from appliance.server.services import SERVICES, Services


def control_plane_readiness(services: Services) -> Readiness:
    backend = services.control.backend
    status = backend.status()
    down = backend.down_for()
    grace = services.config.state.outage_grace_s
    status["on_outage"] = (
        f"cached keys served for {grace:g} s, then fail closed" if grace else "fail closed"
    )
    return Readiness("control_plane", degraded=down > 0 or not backend.healthy(), detail=status)


async def readiness(services: Services) -> list[Readiness]:
    """Every component's readiness (each probe bounded: a hung engine is reported, not waited on)."""

    async def bounded(reporter: object) -> Readiness:
        name = type(reporter).__name__
        try:
            return await asyncio.wait_for(reporter.readiness(), 3.0)  # type: ignore[attr-defined]
        except Exception as e:  # noqa: BLE001 - a probe that fails is a finding, not a 500
            return Readiness(name, degraded=True, detail={"probe_failed": type(e).__name__})

    found = await asyncio.gather(*(bounded(r) for r in services.pipeline.reporters))
    return [control_plane_readiness(services), *found]


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    services = request.app.get(SERVICES)
    if services is None:
        return web.json_response({"status": "starting"}, status=503)
    drain = request.app.get(DRAIN)
    if drain is not None and drain.draining:
        return web.json_response({"status": "draining"}, status=503)
    checks = await readiness(services)
    ready = all(c.ready for c in checks)
    degraded = [c.name for c in checks if c.degraded]
    return web.json_response(
        {
            "status": "ready" if ready and not degraded else "degraded" if ready else "unready",
            "models": sorted(services.config.models),
            "degraded": degraded,
            "checks": {c.name: {"ready": c.ready, "degraded": c.degraded, **c.detail} for c in checks},
        },
        status=200 if ready else 503,
        dumps=functools.partial(json.dumps, default=str),
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
