"""Optional OpenTelemetry traces: one span per request, one child span per stage.

Off unless ``[limits] otel_traces = true`` and ``opentelemetry-api`` is importable; the
operator configures the exporter (``opentelemetry-sdk``, OTLP, the usual ``OTEL_*``
environment). Spans are emitted when the request settles, from what the pipeline
measured: the request span covers the request from start to the recorded response, each
stage span has the stage's measured duration; stages are laid end to end from the
request's start, since the pipeline records durations, not start times. Attributes
carry no prompt, key or user id.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from appliance.core.context import Context

log = logging.getLogger(__name__)


def otel_tracer() -> Any | None:
    """The global OpenTelemetry tracer, or None when OpenTelemetry is not installed."""
    try:
        from opentelemetry import trace
    except ImportError:
        log.warning("otel_traces is on but opentelemetry-api is not installed; no traces")
        return None
    return trace.get_tracer("appliance")


def emit_spans(ctx: Context, tracer: Any) -> None:
    from opentelemetry import trace

    start = int(ctx.started_at * 1e9)
    end = int((ctx.finished_at or time.time()) * 1e9)
    attrs: dict[str, Any] = {
        "appliance.request_id": ctx.request_id,
        "appliance.route": ctx.route,
        "appliance.model": ctx.model,
        "appliance.provider": ctx.provider,
        "http.response.status_code": ctx.status,
        "appliance.tokens.prompt": ctx.usage.prompt_tokens,
        "appliance.tokens.completion": ctx.usage.completion_tokens,
        "appliance.cost_usd": ctx.cost_usd,
    }
    if ctx.principal is not None:
        attrs["appliance.tenant"] = ctx.principal.tenant
    if ctx.error:
        attrs["error.type"] = ctx.error
    root = tracer.start_span("appliance.request", start_time=start, attributes=attrs)
    parent = trace.set_span_in_context(root)
    t = start
    for v in ctx.verdicts:
        d = max(0, int(v.duration_s * 1e9))
        span = tracer.start_span(
            f"stage.{v.stage}", context=parent, start_time=t,
            attributes={"appliance.stage": v.stage, "appliance.outcome": v.outcome},
        )
        span.end(end_time=t + d)
        t += d
    root.end(end_time=max(end, t))


class Tracer:
    """The pipeline's observer that emits a request's spans once it is recorded."""

    name = "traces"

    def __init__(self, tracer: Any) -> None:
        self._tracer = tracer

    @classmethod
    def open(cls) -> Tracer | None:
        """A tracer on the global OpenTelemetry provider, or None without OpenTelemetry."""
        tracer = otel_tracer()
        return cls(tracer) if tracer is not None else None

    def observe(self, ctx: Context) -> None:
        emit_spans(ctx, self._tracer)
