"""``GET /metrics``: the process's Prometheus registry (every worker's, summed, when
several workers share the port; see :mod:`appliance.metering.metrics`)."""

from __future__ import annotations

import hmac

from aiohttp import web
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from appliance.errors import AuthenticationFailed
from appliance.server.exchange import api_key_of
from appliance.server.services import SERVICES


async def metrics_handler(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    if services.config.limits.metrics_require_admin_key:
        given = api_key_of(request) or ""
        if not services.admin_key or not hmac.compare_digest(given, services.admin_key):
            raise AuthenticationFailed("The admin key is required for /metrics.")
    for stage in services.pipeline.request_stages:
        if stage.name == "decide" and hasattr(stage, "status"):
            services.metrics.policy(stage.status())
    return web.Response(
        body=services.metrics.exposition(), headers={"Content-Type": CONTENT_TYPE_LATEST}
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/metrics", metrics_handler)
