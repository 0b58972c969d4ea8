"""Token estimates, the subjects a request counts against, and the metrics it leaves."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from appliance.config.limits import LimitsConfig, LimitSpec
from appliance.metering.meter import format_reset
from appliance.metering.metrics import Metrics
from appliance.metering.plans import Plans
from appliance.metering.scopes import scopes_of
from appliance.core.tokens import estimate_prompt, requested_output
from appliance.core.context import Context, Principal, Usage
from appliance.core.decision import decision_of
from appliance.core.findings import (
    AreaFinding,
    PiiFindings,
    PolicyFindings,
    RiskFindings,
    Verdict,
)


@pytest.mark.parametrize(
    ("body", "low", "high"),
    [
        ({"messages": [{"role": "user", "content": "x" * 400}]}, 100, 120),
        ({"messages": [{"role": "user", "content": [{"type": "text", "text": "x" * 400}]}]}, 100, 120),
        ({"messages": [{"role": "assistant", "content": None, "tool_calls": [
            {"id": "1", "type": "function", "function": {"name": "f", "arguments": "y" * 400}}]}]}, 100, 120),
        ({"prompt": ["a" * 40, "b" * 40]}, 20, 20),
        ({"input": "z" * 8}, 2, 2),
        ({"input": [[1, 2, 3]]}, 3, 3),  # pre-tokenised
    ],
)
def test_prompt_estimate(body: dict[str, Any], low: int, high: int) -> None:
    assert low <= estimate_prompt(body) <= high


@pytest.mark.parametrize(
    ("body", "expected"),
    [({}, 0), ({"max_tokens": 50}, 50), ({"max_completion_tokens": 20, "n": 3}, 60)],
)
def test_requested_output(body: dict[str, Any], expected: int) -> None:
    assert requested_output(body) == expected


@pytest.mark.parametrize(("s", "text"), [(0.2, "1s"), (59.1, "1m0s"), (61, "1m1s"), (3725, "1h2m5s")])
def test_reset_format(s: float, text: str) -> None:
    assert format_reset(s) == text


def test_scopes_and_their_limits() -> None:
    config = LimitsConfig.model_validate({
        "default_plan": "starter",
        "tenants": {"acme": {"rpm": 7}},
        "departments": {"acme/finance": {"tpm": 99}},
        "applications": {"acme/bot": {"budget_usd_day": 3}},
        "users": {"acme/alice": {"rpm": 2}},
    })
    p = Principal("k" * 16, "acme", "alice", department="finance", application="bot")
    scopes = {s.kind: s for s in scopes_of(p, {"rpm": 5, "unknown": 1}, config, Plans.load(None, config))}
    assert list(scopes) == ["tenant", "department", "user", "application", "key"]
    # The tenant's own entry overrides the plan's rpm; the plan's budget stays.
    assert scopes["tenant"].limits.rpm == 7 and scopes["tenant"].limits.budget_usd_month == 100
    assert scopes["department"].limits.tpm == 99
    assert scopes["application"].limits.budget_usd_day == 3
    assert scopes["user"].limits.rpm == 2
    assert scopes["key"].limits == LimitSpec(rpm=5)
    assert scopes["key"].described() == "this API key" and "alice" not in scopes["user"].logged()


def test_department_keys_must_name_the_tenant() -> None:
    with pytest.raises(ValueError, match="<tenant>/<name>"):
        LimitsConfig.model_validate({"departments": {"finance": {"rpm": 1}}})


def _ctx(**kw: Any) -> Context:
    ctx = Context(request_id="r", route="chat.completions", body={}, api_key=None,
                  principal=Principal("abcdef0123456789", "acme", "alice@example.com"), model="gpt-4o",
                  provider="openai", finished_at=None)
    for k, v in kw.items():
        setattr(ctx, k, v)
    return ctx


@pytest.mark.parametrize(
    ("ctx", "expected", "absent"),
    [
        (
            _ctx(verdicts=[Verdict("pii_detect", findings=PiiFindings(True, {"PERSON": 2, "IBAN_CODE": 1}),
                                   duration_s=0.01)],
                 usage=Usage(3, 4), cost_usd=0.5),
            ['appliance_pii_findings_total{entity_type="PERSON"} 2.0',
             'appliance_pii_findings_total{entity_type="IBAN_CODE"} 1.0',
             'appliance_tokens_total{model="gpt-4o",tenant="acme",type="prompt"} 3.0',
             'appliance_cost_usd_total{model="gpt-4o",tenant="acme"} 0.5',
             'appliance_stage_duration_seconds_count{stage="pii_detect"} 1.0'],
            ["alice"],
        ),
        (
            _ctx(verdicts=[Verdict("decide", "deny", ("no personal data to us providers",),
                                   PolicyFindings(allow=False, rules=("pii.external",)))],
                 status=403),
            ['appliance_policy_denials_total{reason="pii.external"} 1.0',
             'decision="deny"'],
            ["no personal data"],
        ),
        (
            _ctx(verdicts=[Verdict("classify", findings=RiskFindings("high", "high"))]),
            ['appliance_risk_class_total{risk_class="high"} 1.0'],
            [],
        ),
        (
            _ctx(verdicts=[Verdict("classify", findings=RiskFindings(
                     "high", "high", areas=(AreaFinding("annex3_4", None, 0.9),)))],
                 obligations={"registration_needed": True}),
            ['appliance_registration_needed_total{area="annex3_4",tenant="acme"} 1.0'],
            [],
        ),
        (
            _ctx(verdicts=[Verdict("classify", findings=RiskFindings("high", "high"))],
                 obligations={"registration_needed": False}),
            ['appliance_risk_class_total{risk_class="high"} 1.0'],
            ["appliance_registration_needed_total{"],
        ),
        (
            _ctx(status=502, error="upstream_error"),
            ['appliance_upstream_errors_total{code="upstream_error",provider="openai"} 1.0',
             'decision="error"'],
            [],
        ),
    ],
)
def test_metrics_from_the_context(ctx: Context, expected: list[str], absent: list[str]) -> None:
    m = Metrics()
    m.observe(ctx)
    body = m.exposition().decode()
    for line in expected:
        assert line in body
    for text in absent:
        assert text not in body
    assert "abcdef0123456789" not in body


_BUCKET_EDGES = (0.0, 0.0001, 0.001, 0.0025, 0.005, 0.01, 0.5, 1.0, 5.0, 120.0, 121.0)


@given(st.lists(st.tuples(st.sampled_from(_BUCKET_EDGES) | st.floats(0, 200), st.sampled_from(("a", "b"))),
                max_size=30))
@settings(max_examples=60, deadline=None)
def test_counted_requests_publish_what_prometheus_would_have_counted(timings: list[tuple[float, str]]) -> None:
    """Requests are added up in plain dicts and handed to prometheus_client at the scrape:
    the exposition must be the one that observing each request directly gives, bucket
    bounds included (a value on a bound belongs to that bucket)."""
    batched = Metrics()
    direct = Metrics()
    for i, (seconds, stage) in enumerate(timings):
        ctx = _ctx(verdicts=[Verdict(stage, duration_s=seconds)], usage=Usage(i, 1), status=200 + i % 2)
        ctx.finished_at = ctx.started_at + seconds
        batched.observe(ctx)
        if i == len(timings) // 2:
            batched.publish()  # what is published twice adds up
        direct.requests.labels(ctx.route, "gpt-4o", str(ctx.status), decision_of(ctx)).inc()
        direct.latency.labels(ctx.route).observe(ctx.finished_at - ctx.started_at)
        direct.stage_latency.labels(stage).observe(seconds)
        if i:
            direct.tokens.labels("acme", "gpt-4o", "prompt").inc(i)
        direct.tokens.labels("acme", "gpt-4o", "completion").inc(1)

    def values(m: Metrics) -> list[tuple[str, object, float]]:
        return sorted((s.name, sorted(s.labels.items()), s.value)
                      for f in m.registry.collect() for s in f.samples if not s.name.endswith("_created"))

    batched.publish()
    got, want = values(batched), values(direct)
    assert [v[:2] for v in got] == [v[:2] for v in want]
    assert [v[2] for v in got] == pytest.approx([v[2] for v in want])  # sums added in another order
