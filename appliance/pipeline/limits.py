"""Stage "limits": rate limits and budgets before the model call, metering after it.

Runs after the policy decision (a denied request costs nothing and counts against no
limit) and before redaction and the model call. The work is done by
:class:`appliance.metering.meter.Meter`; this class is its face towards the pipeline: a
request stage, a settler (real tokens and cost, once per request) and a lifecycle.
"""

from __future__ import annotations

from appliance.config import Config
from appliance.core.context import Context
from appliance.core.findings import Verdict
from appliance.core.readiness import Readiness
from appliance.metering.meter import Meter
from appliance.metering.metrics import Metrics


class LimitsStage:
    name = "limits"

    def __init__(self, config: Config, metrics: Metrics) -> None:
        self._meter = Meter(config, metrics)

    @property
    def meter(self) -> Meter:
        return self._meter

    async def start(self) -> None:
        await self._meter.start()

    async def aclose(self) -> None:
        await self._meter.aclose()

    async def run(self, ctx: Context) -> Verdict:
        """Admit the request against every limit that applies, or raise RateLimited (429)."""
        return await self._meter.admit(ctx)

    async def settle(self, ctx: Context) -> None:
        """Book real tokens and cost and notify budgets (every request, once)."""
        await self._meter.settle(ctx)

    async def readiness(self) -> Readiness:
        """The counter store: reachable, and what happens while it is not."""
        return await self._meter.readiness()

    async def settle_failure(self, ctx: Context) -> None:
        await self._meter.settle_failure(ctx)
