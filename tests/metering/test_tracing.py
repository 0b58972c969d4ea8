"""Optional OpenTelemetry spans: one per request, one child per stage."""

from __future__ import annotations

import pytest

from appliance.metering.tracing import emit_spans
from appliance.core.context import Context, Principal, Usage
from appliance.core.findings import Verdict

sdk = pytest.importorskip("opentelemetry.sdk.trace", reason="opentelemetry-sdk is not installed")


def test_one_span_per_stage() -> None:
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = sdk.TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    ctx = Context(
        request_id="req_1", route="chat.completions", body={"messages": [{"content": "secret prompt"}]},
        api_key="ak-abc-secret", principal=Principal("abcdef0123456789", "acme", "alice"),
        model="gpt-4o", provider="openai", usage=Usage(3, 4), started_at=1000.0, finished_at=1000.5,
        verdicts=[Verdict("authenticate", duration_s=0.001), Verdict("limits", duration_s=0.002)],
    )
    emit_spans(ctx, provider.get_tracer("test"))
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert set(spans) == {"appliance.request", "stage.authenticate", "stage.limits"}
    root = spans["appliance.request"]
    assert root.end_time is not None and root.start_time is not None and root.context is not None
    assert root.end_time - root.start_time == pytest.approx(0.5e9, rel=1e-6)
    for name in ("stage.authenticate", "stage.limits"):
        parent = spans[name].parent
        assert parent is not None and parent.span_id == root.context.span_id
    limits = spans["stage.limits"]
    assert limits.end_time is not None and limits.start_time is not None
    assert limits.end_time - limits.start_time == 2_000_000
    assert root.attributes is not None and root.attributes["appliance.tenant"] == "acme"
    flat = repr([dict(s.attributes or {}) for s in spans.values()])
    for secret in ("secret prompt", "ak-abc-secret", "alice", "abcdef0123456789"):
        assert secret not in flat
