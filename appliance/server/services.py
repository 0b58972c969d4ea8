"""Everything the request handlers use, opened and closed by the app's cleanup context."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

from appliance.config import Config, LocalProviderConfig, secret
from appliance.keys.store import ControlPlane, control_plane_path
from appliance.pipeline.authenticate import AuthenticateStage, Authenticator
from appliance.pipeline.pipeline import Pipeline, build_stages, start_stages
from appliance.pipeline.router import Router
from appliance.providers.base import Provider
from appliance.providers.registry import create_provider
from appliance.risk.moderation import Moderator

log = logging.getLogger(__name__)


@dataclass
class Services:
    config: Config
    control: ControlPlane
    authenticator: Authenticator
    pipeline: Pipeline
    http: aiohttp.ClientSession
    admin_key: str | None
    #: Screens text for POST /v1/moderations (shares the classify stage's model).
    moderator: Moderator
    moderator_ready: bool
    #: The running stages by name (the metrics route reads the limits stage's registry).
    stages: dict[str, Any] = field(default_factory=dict)
    #: Optional components that other parts register.
    extras: dict[str, Any] = field(default_factory=dict)
    _moderator_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def ready_moderator(self) -> Moderator:
        """The moderator, loading its model on first use when no classify stage runs."""
        if not self.moderator_ready:
            async with self._moderator_lock:
                if not self.moderator_ready:
                    await self.moderator.start()
                    self.moderator_ready = True
        return self.moderator


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
        except Exception as e:  # noqa: BLE001 - closing must go on for the other resources
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
            stages = [s for s in (*request_stages, *response_stages, recorder) if s is not None]
            started.extend(stages)
            await start_stages(stages)
            moderator = Moderator(config)
            started.append(moderator)
            classify = next((s for s in stages if s.name == "classify"), None)
            if classify is not None:  # else it loads its own model on the first moderation
                await moderator.start(classify.classifier)
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
                moderator=moderator,
                moderator_ready=classify is not None,
                stages={s.name: s for s in stages},
            )
            yield
        finally:
            for obj in reversed(started):
                await _close(obj)
            await http.close()
            control.close()

    return ctx
