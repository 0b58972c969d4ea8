"""The sealed store of caller state (responses, files, batches), owned by the app.

Opened on a thread on first use (it may create the tenant key store's file; a server
that never stores anything never opens it) and closed when the app stops; handlers call
it through :func:`in_store`, on a thread, since each call is one SQLite statement and
an AES-GCM pass.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any, TypeVar

from aiohttp import web

from appliance.audit.sealed_store import SealedStore
from appliance.config import Config
from appliance.core.context import Principal
from appliance.errors import StageFailed
from appliance.pipeline.authenticate import principal_of
from appliance.server.exchange import api_key_of
from appliance.server.services import SERVICES

log = logging.getLogger(__name__)
T = TypeVar("T")


class StateHolder:
    """Opens the store once, on first use, and closes it with the app."""

    def __init__(self, config: Config) -> None:
        self._config = config
        self._store: SealedStore | None = None
        self._lock = asyncio.Lock()

    async def store(self) -> SealedStore:
        if self._store is None:
            async with self._lock:
                if self._store is None:
                    self._store = await asyncio.to_thread(SealedStore.open, self._config)
        return self._store

    async def aclose(self) -> None:
        store, self._store = self._store, None
        if store is not None:
            await asyncio.to_thread(store.close)


STATE = web.AppKey("sealed_state", StateHolder)


def state_ctx(config: Config) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        holder = app[STATE] = StateHolder(config)
        try:
            yield
        finally:
            await holder.aclose()

    return ctx


async def in_store(app: web.Application, call: Callable[..., T], *args: Any) -> T:
    """``call(store, *args)`` on a thread; a failure of the store is a 503, never a traceback."""
    try:
        store = await app[STATE].store()
        return await asyncio.to_thread(call, store, *args)
    except Exception as e:  # noqa: BLE001 - translated at this boundary; no content in the message
        log.error("the state store failed: %s", type(e).__name__)
        raise StageFailed("The appliance's sealed state store failed.") from None


async def caller(request: web.Request) -> Principal:
    """The authenticated caller of a state route (files, batches, stored responses)."""
    record = await request.app[SERVICES].authenticator.verify(api_key_of(request))
    return principal_of(record)
