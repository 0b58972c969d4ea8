"""Everything the request handlers use, opened and closed by the app's cleanup context."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

from appliance.config import Config, LocalProviderConfig, secret
from appliance.keys.store import ControlPlane, open_control_plane
from appliance.metering.metrics import Metrics
from appliance.pipeline.authenticate import AuthenticateStage, Authenticator
from appliance.pipeline.components import Components, open_components
from appliance.pipeline.pipeline import Pipeline, build_pipeline
from appliance.pipeline.router import Router
from appliance.pipeline.stage import Lifecycle
from appliance.providers.base import Provider
from appliance.providers.registry import create_provider
from appliance.risk.classifier import RiskClassifier
from appliance.risk.moderation import Moderator

log = logging.getLogger(__name__)


@dataclass
class Services:
    config: Config
    #: The process's one control-plane connection (keys, applications).
    control: ControlPlane
    authenticator: Authenticator
    pipeline: Pipeline
    http: aiohttp.ClientSession
    admin_key: str | None
    metrics: Metrics
    #: The risk classifier, when a stage loaded it (application registration reads it).
    classifier: RiskClassifier | None
    #: Screens text for POST /v1/moderations (shares the classifier when one is loaded).
    moderator: Moderator
    moderator_ready: bool
    _moderator_lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    async def ready_moderator(self) -> Moderator:
        """The moderator, loading its model on first use when no stage loaded one."""
        if not self.moderator_ready:
            async with self._moderator_lock:
                if not self.moderator_ready:
                    await self.moderator.start()
                    self.moderator_ready = True
        return self.moderator


SERVICES = web.AppKey("services", Services)


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


async def _close_logged(name: str, close: Callable[[], object]) -> None:
    """Close one resource; a failure is logged and the others still close."""
    try:
        result = close()
        if asyncio.iscoroutine(result):
            await result
    except Exception as e:  # noqa: BLE001 - closing must go on for the other resources
        log.error("closing %s failed: %s", name, type(e).__name__)


async def open_services(config: Config, stack: AsyncExitStack) -> Services:
    """Open every resource of one server process on ``stack`` (closed in reverse order)."""
    config.storage.data_dir.mkdir(parents=True, exist_ok=True)
    control = await asyncio.to_thread(lambda: open_control_plane(config, listen=True))
    stack.push_async_callback(_close_logged, "control plane", control.close)
    connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=300, keepalive_timeout=60)
    http = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=None))
    stack.push_async_callback(_close_logged, "http session", http.close)
    providers = open_providers(config, http)
    for name, provider in providers.items():
        stack.push_async_callback(_close_logged, f"provider {name}", provider.aclose)
        if isinstance(provider, Lifecycle):  # a local provider loads its models
            await provider.start()
    parts: Components = await open_components(config, control, Router(config, providers), stack)
    authenticator = Authenticator(control, config.state.outage_grace_s)
    pipeline, owned = build_pipeline(config, parts, AuthenticateStage(authenticator))
    for resource in owned:
        stack.push_async_callback(_close_logged, type(resource).__name__, resource.aclose)
    # Side by side: the policy compiles while the audit log opens and the counters connect.
    await asyncio.gather(*(resource.start() for resource in owned))
    moderator = Moderator(config)
    stack.push_async_callback(_close_logged, "moderator", moderator.aclose)
    if parts.classifier is not None:  # else it loads its own model on the first moderation
        await moderator.start(parts.classifier)
    return Services(
        config=config,
        control=control,
        authenticator=authenticator,
        pipeline=pipeline,
        http=http,
        admin_key=secret(config.server.admin_key_env),
        metrics=parts.metrics,
        classifier=parts.classifier,
        moderator=moderator,
        moderator_ready=parts.classifier is not None,
    )


def services_ctx(config: Config) -> Callable[[web.Application], AsyncIterator[None]]:
    """The cleanup context that owns every resource of one server process."""

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            app[SERVICES] = await open_services(config, stack)
            yield

    return ctx
