"""Mounting the console: at /console on the API port, or on its own listener.

The console sits below the server in the layers; here the server hands it what it owns
(the control plane, the audit recorder, the policy engine's status, the classifier), so
every console action runs through the same services as the CLI and the admin API.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

import orjson
from aiohttp import web

from appliance.audit.admin_log import append_admin
from appliance.config import Config
from appliance.console.app import CONSOLE, PREFIX, console_app
from appliance.console.deps import AuditSink, ConsoleDeps, open_console, release_idle
from appliance.console.routes import all_routes
from appliance.pipeline.decide import DecideStage
from appliance.pipeline.stage import AdminRecorder
from appliance.server.services import SERVICES, Services


async def _to_console(request: web.Request) -> web.StreamResponse:
    raise web.HTTPFound(location=PREFIX + "/")


def add_console(app: web.Application, config: Config) -> None:
    """Mount the console (when enabled) and register what opens its services."""
    if not config.console.enabled:
        return
    if config.console.listen is None:
        app.router.add_get(PREFIX, _to_console)
        app.add_subapp(PREFIX, console_app(all_routes()))
    app.cleanup_ctx.append(_console_ctx(config))


def _sink(config: Config, services: Services) -> AuditSink:
    """Console acts go through this process's audit writer (group commit); with no
    recorder in the pipeline, through the admin segment, as CLI commands write."""
    recorder = services.pipeline.recorder
    if isinstance(recorder, AdminRecorder) and config.audit.enabled:
        return recorder.record_admin

    async def append(row: dict[str, Any]) -> None:
        details = orjson.loads(row["extra"]) if row.get("extra") else {}
        await asyncio.to_thread(append_admin, config, row["kind"], details, tenant=row.get("tenant"))

    return append


def _policy_status(services: Services) -> Callable[[], Mapping[str, Any]]:
    for stage in services.pipeline.request_stages:
        if isinstance(stage, DecideStage):
            return stage.status
    return lambda: {"revision": None}


def _console_ctx(config: Config) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        services = app[SERVICES]
        deps: ConsoleDeps = open_console(
            config, services.control, _sink(config, services), _policy_status(services), services.classifier
        )
        app[CONSOLE] = deps
        task = asyncio.create_task(release_idle(deps), name="console-housekeeping")
        deps.tasks.append(task)
        runner: web.AppRunner | None = None
        address = config.console.listen_address
        if address is not None:
            root = web.Application(client_max_size=config.server.max_body_bytes)
            root[CONSOLE] = deps
            root.router.add_get("/", _to_console)
            root.router.add_get(PREFIX, _to_console)
            root.add_subapp(PREFIX, console_app(all_routes()))
            runner = web.AppRunner(root, access_log=None)
            await runner.setup()
            site = web.TCPSite(runner, address[0], address[1], reuse_port=config.server.workers > 1)
            await site.start()
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            if runner is not None:
                await runner.cleanup()
            await asyncio.to_thread(deps.view.close)

    return ctx
