"""Rolling upgrades lose nothing: SIGTERM first turns the replica unready, then drains.

On SIGTERM ``/readyz`` answers 503 at once while the replica keeps serving for
``[fleet] drain_unready_s`` (the load balancer's health check notices and sends no new
requests), then the listener closes and aiohttp waits up to ``drain_timeout_s`` for the
requests and streams in flight to finish; the cleanup context then closes everything,
the audit writer sealing its segment and shipping it to the archive. SIGINT (Ctrl-C)
skips the unready period.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass

from aiohttp import web
from aiohttp.web_runner import GracefulExit

from appliance.config import Config

log = logging.getLogger(__name__)


@dataclass
class Drain:
    draining: bool = False


DRAIN = web.AppKey("drain", Drain)


def _exit() -> None:
    raise GracefulExit()


def install_drain(app: web.Application, config: Config) -> None:
    """Handle SIGTERM/SIGINT as above (``web.run_app(handle_signals=False)``)."""
    drain = Drain()
    app[DRAIN] = drain

    async def on_startup(app: web.Application) -> None:
        loop = asyncio.get_running_loop()

        def terminate() -> None:
            if drain.draining:
                return
            drain.draining = True
            delay = config.fleet.drain_unready_s
            log.warning("SIGTERM: unready now, closing the listener in %.1f s, then draining", delay)
            loop.call_later(delay, _exit)

        loop.add_signal_handler(signal.SIGTERM, terminate)
        loop.add_signal_handler(signal.SIGINT, _exit)

    app.on_startup.append(on_startup)
