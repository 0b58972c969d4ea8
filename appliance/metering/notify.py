"""Budget notifications: a log line, and a JSON POST to the operator's webhook.

The POST is fire-and-forget (a request never waits for it) but every task is kept until
it ends, and closing the notifier waits a moment for the ones still in flight.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp

log = logging.getLogger(__name__)


class Notifier:
    def __init__(self, webhook_url: str | None, timeout_s: float = 5.0) -> None:
        self._url = webhook_url
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._http: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        if self._url:
            self._http = aiohttp.ClientSession(timeout=self._timeout)

    async def aclose(self) -> None:
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=self._timeout.total)
        for task in list(self._tasks):
            task.cancel()
        http, self._http = self._http, None
        if http is not None:
            await http.close()

    def notify(self, event: dict[str, Any], summary: str) -> None:
        """Log ``summary`` (no PII) and post ``event`` to the webhook in the background."""
        log.warning("%s", summary)
        if self._http is None or not self._url:
            return
        task = asyncio.get_running_loop().create_task(self._post(event))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _post(self, event: dict[str, Any]) -> None:
        assert self._http is not None and self._url
        try:
            async with self._http.post(self._url, json=event) as resp:
                if resp.status >= 300:
                    log.error("budget webhook answered HTTP %d", resp.status)
        except (aiohttp.ClientError, TimeoutError) as e:
            log.error("budget webhook failed: %s", type(e).__name__)
