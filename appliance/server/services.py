"""Everything the request handlers use, opened and closed by the app's cleanup context."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from appliance.config import Config, LocalProviderConfig, secret
from appliance.keys.store import ControlPlane, control_plane_path
from appliance.pipeline.authenticate import AuthenticateStage, Authenticator
from appliance.pipeline.pipeline import Pipeline, build_stages
from appliance.pipeline.router import Router
from appliance.providers.base import Provider
from appliance.providers.registry import create_provider

log = logging.getLogger(__name__)


@dataclass
class Services:
    config: Config
    control: ControlPlane
    authenticator: Authenticator
    pipeline: Pipeline
    http: aiohttp.ClientSession
    admin_key: str | None
    #: Optional components that other parts register (e.g. moderation, metrics).
    extras: dict[str, Any] = field(default_factory=dict)


SERVICES = web.AppKey("services", Services)


async def _start(obj: Any) -> None:
    start = getattr(obj, "start", None)
    if start is not None:
        await start()


async def _close(obj: Any) -> None:
    close = getattr(obj, "aclose", None)
    if close is not None:
        try:
            await close()
        except Exception as e:  # closing must go on for the other resources
            log.error("closing %s failed: %s", type(obj).__name__, type(e).__name__)


def open_providers(config: Config, http: aiohttp.ClientSession) -> dict[str, Provider]:
    """Create the providers that at least one model uses; unused ones cost nothing.

    Data paths in provider configs (a local provider's models_dir) resolve under the
    data directory here, so adapters never guess where the data lives.
    """
    used = {m.provider for m in config.models.values()}
    providers: dict[str, Provider] = {}
    for name, cfg in config.providers.items():
        if name not in used:
            continue
        if isinstance(cfg, LocalProviderConfig):
            cfg = cfg.model_copy(update={"models_dir": config.resolve(cfg.models_dir)})
        providers[name] = create_provider(name, cfg, http)
    return providers


def services_ctx(config: Config) -> Any:
    """The cleanup context that owns every resource of one server process."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        config.storage.data_dir.mkdir(parents=True, exist_ok=True)
        control = ControlPlane.open(control_plane_path(config.storage.data_dir))
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, keepalive_timeout=60)
        http = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=None)
        )
        started: list[Any] = []
        try:
            providers = open_providers(config, http)
            started.extend(providers.values())
            for p in providers.values():
                await _start(p)
            request_stages, response_stages, recorder = build_stages(config)
            for stage in (*request_stages, *response_stages, recorder):
                if stage is not None:
                    await _start(stage)
                    started.append(stage)
            authenticator = Authenticator(control)
            pipeline = Pipeline(
                authenticate=AuthenticateStage(authenticator),
                request_stages=tuple(request_stages),
                response_stages=tuple(response_stages),
                recorder=recorder,
                router=Router(config, providers),
            )
            app[SERVICES] = Services(
                config=config,
                control=control,
                authenticator=authenticator,
                pipeline=pipeline,
                http=http,
                admin_key=secret(config.server.admin_key_env),
            )
            yield
        finally:
            for obj in reversed(started):
                await _close(obj)
            await http.close()
            control.close()

    return ctx
