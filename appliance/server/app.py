"""The app factory: one frozen config in, one aiohttp application out."""

from __future__ import annotations

from aiohttp import web

from appliance.config import Config
from appliance.server import (
    admin_api,
    anthropic_api,
    batches_api,
    files_api,
    health,
    mcp_gateway,
    metrics,
    openai_api,
    openapi,
    realtime,
    responses_api,
)
from appliance.server.access_log import access_log
from appliance.server.console_mount import add_console
from appliance.server.middleware import error_boundary
from appliance.server.request_limits import request_limits
from appliance.server.services import services_ctx
from appliance.server.state import state_ctx

#: Route groups in the order they are matched; each module adds its own routes.
ROUTE_GROUPS = (
    health, openai_api, responses_api, files_api, batches_api, anthropic_api, realtime, mcp_gateway,
    admin_api, metrics, openapi,
)


def create_app(config: Config) -> web.Application:
    #: Outermost first: the access log sees the status the error boundary rendered.
    middlewares = [m for m in (access_log(config.server), error_boundary,
                               request_limits(config.server)) if m is not None]
    # aiohttp's parser bound is twice ours, so a head over our limit gets our 431 in
    # the caller's format; only one beyond twice it meets aiohttp's plain 400.
    head = 2 * config.server.max_header_bytes
    app = web.Application(
        middlewares=middlewares,
        client_max_size=config.server.max_body_bytes,
        handler_args={"max_field_size": head, "max_line_size": head},
    )
    app.cleanup_ctx.append(services_ctx(config))
    #: Caller state (stored responses, files, batches), sealed per tenant.
    app.cleanup_ctx.append(state_ctx(config))
    for group in ROUTE_GROUPS:
        group.add_routes(app)
    add_console(app, config)
    return app
