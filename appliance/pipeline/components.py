"""What one server process loads once and wires into its stages.

The Presidio worker pool serves pii_detect and pii_output; the risk classifier serves
classify, safety_output and ``/v1/moderations``; the metrics registry is read by
``/metrics`` and fed by the pipeline's observers; the application directory reads the
process's one control-plane connection. Each is loaded only when a switched-on stage
needs it, and closed by the exit stack it was opened on, in reverse order.
"""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING

from appliance.config import Config
from appliance.keys.store import ControlPlane
from appliance.metering.metrics import Metrics
from appliance.metering.tracing import Tracer
from appliance.pipeline.router import Router
from appliance.pipeline.stage import Observer
from appliance.risk.apps import AppDirectory

if TYPE_CHECKING:  # loaded only when a stage that needs them is on
    from appliance.pii.pool import AnalyzerPool
    from appliance.risk.classifier import RiskClassifier


@dataclass(frozen=True)
class Components:
    router: Router
    metrics: Metrics
    apps: AppDirectory
    #: The PII analyzer pool, when PII detection is on.
    analyzer: AnalyzerPool | None = None
    #: The risk classifier, when classify or the answer's safety screen is on.
    classifier: RiskClassifier | None = None
    #: Who watches finished requests (metrics; traces when configured).
    observers: tuple[Observer, ...] = ()


def needs_analyzer(config: Config) -> bool:
    return config.pipeline.redact and config.pii.enabled


def needs_classifier(config: Config) -> bool:
    return config.pipeline.classify or config.pipeline.screen_output


async def _analyzer(config: Config, stack: AsyncExitStack) -> AnalyzerPool | None:
    if not needs_analyzer(config):
        return None
    from appliance.pii.pool import AnalyzerPool

    analyzer = AnalyzerPool(config.pii)
    stack.push_async_callback(analyzer.aclose)
    await analyzer.start()
    return analyzer


async def _classifier(config: Config) -> RiskClassifier | None:
    if not needs_classifier(config):
        return None
    from appliance.risk.engine import build_classifier

    return await asyncio.to_thread(build_classifier, config)


async def open_components(
    config: Config, control: ControlPlane, router: Router, stack: AsyncExitStack
) -> Components:
    """Load what the switched-on stages share; everything opened is closed by ``stack``.

    The PII workers start while the risk model loads: both are CPU-bound, in other
    processes and threads.
    """
    analyzer, classifier = await asyncio.gather(_analyzer(config, stack), _classifier(config))
    metrics = Metrics()
    stack.enter_context(metrics.publishing())
    observers: list[Observer] = [metrics]
    if config.limits.otel_traces:
        tracer = Tracer.open()
        if tracer is not None:
            observers.append(tracer)
    return Components(
        router=router,
        metrics=metrics,
        apps=AppDirectory(control, config.risk.app_cache_s),
        analyzer=analyzer,
        classifier=classifier,
        observers=tuple(observers),
    )
